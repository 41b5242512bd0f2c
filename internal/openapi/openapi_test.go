package openapi

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// moduleRoot is where go.mod is, seen from this package's directory (go test's working dir).
const moduleRoot = "../.."

func parseDocument(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(Document(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

// lookup follows a JSON pointer such as #/components/schemas/Money.
func lookup(doc map[string]any, pointer string) (any, bool) {
	if !strings.HasPrefix(pointer, "#/") {
		return nil, false
	}
	var node any = doc
	for _, part := range strings.Split(pointer[2:], "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[part]; !ok {
			return nil, false
		}
	}
	return node, true
}

// resolve returns the object a {"$ref": …} names, or node itself.
func resolve(t *testing.T, doc map[string]any, node any) map[string]any {
	t.Helper()
	m, _ := node.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		target, found := lookup(doc, r)
		if !found {
			t.Fatalf("$ref %s does not resolve", r)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

func TestDocumentIsOpenAPI31(t *testing.T) {
	doc := parseDocument(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] != "orderledger" || info["version"] == "" || info["version"] == nil {
		t.Errorf("info = %v, want title orderledger and a version", info)
	}
	ops, err := Operations()
	if err != nil {
		t.Fatal(err)
	}
	// 14 write routes (the erasure of personal data among them), 15 read routes (the
	// ledger's currencies and journal, and a customer's personal data among them), the audit
	// route, health, readiness, metrics, this document, the event stream, the five webhook
	// routes, the three token routes, and the dashboard's nine pages, its two audit fragments,
	// its static files, its login form, login and logout.
	if len(ops) != 58 {
		t.Errorf("%d operations documented, want 58: %v", len(ops), ops)
	}
}

func TestEveryRefResolves(t *testing.T) {
	doc := parseDocument(t)
	var walk func(path string, node any)
	walk = func(path string, node any) {
		switch n := node.(type) {
		case map[string]any:
			if r, ok := n["$ref"].(string); ok {
				if _, found := lookup(doc, r); !found {
					t.Errorf("%s: $ref %s does not resolve", path, r)
				}
			}
			for k, v := range n {
				walk(path+"/"+k, v)
			}
		case []any:
			for i, v := range n {
				walk(path+"/"+strconv.Itoa(i), v)
			}
		}
	}
	walk("#", doc)
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOperationsAreComplete checks what a client generator needs of every operation: a unique
// operationId, a tag, responses, and a declaration of every {parameter} of its path.
func TestOperationsAreComplete(t *testing.T) {
	doc := parseDocument(t)
	paths, _ := doc["paths"].(map[string]any)
	ids := map[string]string{}
	for path, rawItem := range paths {
		item, _ := rawItem.(map[string]any)
		var want []string
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		sort.Strings(want)
		for method, rawOp := range item {
			if !slices.Contains(operationMethods, method) {
				continue
			}
			op, _ := rawOp.(map[string]any)
			where := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %s is also %s's", where, id, other)
			}
			ids[id] = where
			if tags, _ := op["tags"].([]any); len(tags) == 0 {
				t.Errorf("%s: no tag", where)
			}
			if responses, _ := op["responses"].(map[string]any); len(responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			var got []string
			for _, list := range []any{item["parameters"], op["parameters"]} {
				params, _ := list.([]any)
				for _, p := range params {
					param := resolve(t, doc, p)
					if param["in"] == "path" {
						if param["required"] != true {
							t.Errorf("%s: path parameter %v is not required", where, param["name"])
						}
						got = append(got, param["name"].(string))
					}
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: path parameters declared %v, the path has %v", where, got, want)
			}
		}
	}
}

// TestWriteOperationsDocumentTheirErrors: every POST and PUT takes the idempotency and
// tracing headers and documents 400, 413 and 422, which any write can answer.
func TestWriteOperationsDocumentTheirErrors(t *testing.T) {
	doc := parseDocument(t)
	paths, _ := doc["paths"].(map[string]any)
	for path, rawItem := range paths {
		item, _ := rawItem.(map[string]any)
		for _, method := range []string{"post", "put"} {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			if where == "POST /v1/tokens" {
				// It answers a secret shown once and kept only as a hash, so no retry could
				// answer it again: it takes no Idempotency-Key, and its actor is its caller.
				continue
			}
			if strings.HasPrefix(path, "/ui/") {
				// The dashboard's login and logout forms are a browser's, not the API's
				// JSON writes: they append no event.
				continue
			}
			var headers []string
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				if param := resolve(t, doc, p); param["in"] == "header" {
					headers = append(headers, param["name"].(string))
				}
			}
			for _, h := range []string{"Idempotency-Key", "X-Correlation-ID"} {
				if !slices.Contains(headers, h) {
					t.Errorf("%s: header %s not documented", where, h)
				}
			}
			responses, _ := op["responses"].(map[string]any)
			for _, status := range []string{"400", "413", "422"} {
				if _, ok := responses[status]; !ok {
					t.Errorf("%s: no %s response", where, status)
				}
			}
			// A receipt creates the SKU it names, so it alone answers no 404.
			if strings.Contains(path, "{") && where != "POST /v1/inventory/{sku}/receipts" {
				if _, ok := responses["404"]; !ok {
					t.Errorf("%s: the path names a resource but no 404 is documented", where)
				}
			}
		}
	}
}

// TestErrorCodesMatchTheCode compares the codes of the Problem schema with the codes the
// module's sources produce: every code a handler can answer is documented, and every
// documented code is still produced somewhere.
func TestErrorCodesMatchTheCode(t *testing.T) {
	doc := parseDocument(t)
	code, found := lookup(doc, "#/components/schemas/Problem/properties/code/enum")
	if !found {
		t.Fatal("the Problem schema has no code enum")
	}
	documented := map[string]bool{}
	for _, c := range code.([]any) {
		documented[c.(string)] = true
	}

	produced := producedErrorCodes(t)
	if len(produced) < 20 {
		t.Fatalf("found only %d error codes in the sources (%v): the scan is broken", len(produced), produced)
	}
	for c, where := range produced {
		if automationOnlyCodes[c] {
			if documented[c] {
				t.Errorf("error code %q is the automation's own and never answered; the Problem schema should not list it", c)
			}
			continue
		}
		if !documented[c] {
			t.Errorf("error code %q (%s) is not in the Problem schema's code enum", c, where)
		}
	}
	for c := range documented {
		if _, ok := produced[c]; !ok {
			t.Errorf("error code %q is documented but no source produces it", c)
		}
	}

	// Every code an operation's response names must be one of them too.
	var walk func(path string, node any)
	walk = func(path string, node any) {
		switch n := node.(type) {
		case map[string]any:
			if props, ok := n["properties"].(map[string]any); ok && path != "#/components/schemas/Problem" {
				if c, ok := props["code"].(map[string]any); ok {
					for _, v := range c["enum"].([]any) {
						if !documented[v.(string)] {
							t.Errorf("%s names code %q, which the Problem schema lacks", path, v)
						}
					}
				}
			}
			for k, v := range n {
				walk(path+"/"+k, v)
			}
		case []any:
			for i, v := range n {
				walk(path+"/"+strconv.Itoa(i), v)
			}
		}
	}
	walk("#", doc)
}

// automationOnlyCodes are refusals only the order-to-cash automation meets (shipping stock an
// order has not reserved, a document number recorded differently): no route sends the commands
// that give them, so no answer carries them. The Problem schema's description names them.
var automationOnlyCodes = map[string]bool{"not_reserved": true, "document_mismatch": true}

// TestEveryOperationDeclaresWhatAnyRouteCanAnswer: a wrong method (405 with Allow), a fault of
// the server (500) and a path that just misses the route (a trailing "/", a path parameter
// that is empty or holds a "/": 404 route_not_found) can happen on every route; and every code of the Problem schema is declared by at least one
// operation, so a generated client expects each code it can get.
func TestEveryOperationDeclaresWhatAnyRouteCanAnswer(t *testing.T) {
	doc := parseDocument(t)
	paths, _ := doc["paths"].(map[string]any)
	declared := map[string]bool{}
	for path, rawItem := range paths {
		item, _ := rawItem.(map[string]any)
		for method, rawOp := range item {
			if !slices.Contains(operationMethods, method) {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			responses, _ := rawOp.(map[string]any)["responses"].(map[string]any)
			for _, status := range []string{"405", "500"} {
				if _, ok := responses[status]; !ok {
					t.Errorf("%s: no %s response", where, status)
				}
			}
			if res := resolve(t, doc, responses["405"]); res != nil {
				headers, _ := res["headers"].(map[string]any)
				if _, ok := headers["Allow"]; !ok {
					t.Errorf("%s: the 405 response declares no Allow header", where)
				}
			}
			for _, rawRes := range responses {
				for _, c := range responseCodes(t, doc, resolve(t, doc, rawRes)) {
					declared[c] = true
				}
			}
			if !slices.Contains(responseCodes(t, doc, resolve(t, doc, responses["404"])), "route_not_found") {
				t.Errorf("%s: its 404 does not declare route_not_found", where)
			}
		}
	}
	enum, _ := lookup(doc, "#/components/schemas/Problem/properties/code/enum")
	for _, c := range enum.([]any) {
		if !declared[c.(string)] {
			t.Errorf("code %q is in the Problem schema but no operation declares it", c)
		}
	}
}

// responseCodes lists the problem codes a response declares.
func responseCodes(t *testing.T, doc map[string]any, res map[string]any) []string {
	t.Helper()
	content, _ := res["content"].(map[string]any)
	media, _ := content["application/problem+json"].(map[string]any)
	schema, _ := media["schema"].(map[string]any)
	allOf, _ := schema["allOf"].([]any)
	var codes []string
	for _, part := range allOf {
		// The $ref part is the Problem schema, whose enum lists every code there is.
		props, _ := part.(map[string]any)["properties"].(map[string]any)
		c, _ := props["code"].(map[string]any)
		for _, v := range asSlice(c["enum"]) {
			codes = append(codes, v.(string))
		}
	}
	return codes
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// producedErrorCodes scans the module's non-test Go sources for the literal codes passed to
// domain's newError, httpx.Errorf and httpx.WriteProblem, and returned by httpx.Classify.
func producedErrorCodes(t *testing.T) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	record := func(arg ast.Expr) {
		lit, ok := arg.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		if c, err := strconv.Unquote(lit.Value); err == nil {
			codes[c] = fset.Position(lit.Pos()).String()
		}
	}
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "vendor", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("parse %s: %v", path, err)
			return nil
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				switch callee(n.Fun) {
				case "newError":
					if len(n.Args) > 1 {
						record(n.Args[1])
					}
				case "httpx.Errorf":
					if len(n.Args) > 1 {
						record(n.Args[1])
					}
				case "httpx.WriteProblem":
					if len(n.Args) > 3 {
						record(n.Args[3])
					}
				}
			case *ast.FuncDecl:
				if n.Name.Name == "Classify" && file.Name.Name == "httpx" && n.Body != nil {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if ret, ok := m.(*ast.ReturnStmt); ok && len(ret.Results) == 2 {
							record(ret.Results[1])
						}
						return true
					})
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// callee names a called function as "newError", "httpx.Errorf"…; calls inside package httpx
// are unqualified, so Errorf and WriteProblem count as httpx's (fmt.Errorf is qualified).
func callee(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		switch f.Name {
		case "Errorf", "WriteProblem":
			return "httpx." + f.Name
		}
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
	}
	return ""
}

// TestRequestSchemasMatchTheHandlers compares each write request schema with the struct the
// handlers decode it into (package commands, type fooRequest ↔ schema FooRequest): the same
// JSON fields, no more, no less, and unknown fields refused.
func TestRequestSchemasMatchTheHandlers(t *testing.T) {
	doc := parseDocument(t)
	structs := requestStructs(t, filepath.Join(moduleRoot, "commands"))
	if len(structs) < 10 {
		t.Fatalf("found only %d request structs in commands/: the scan is broken", len(structs))
	}
	schemas, _ := lookup(doc, "#/components/schemas")
	for name, fields := range structs {
		schemaName := string(unicode.ToUpper(rune(name[0]))) + name[1:]
		raw, ok := schemas.(map[string]any)[schemaName]
		if !ok {
			t.Errorf("commands.%s has no schema %s", name, schemaName)
			continue
		}
		schema := raw.(map[string]any)
		if schema["additionalProperties"] != false {
			t.Errorf("schema %s does not refuse unknown fields (additionalProperties: false)", schemaName)
		}
		var documented []string
		props, _ := schema["properties"].(map[string]any)
		for p := range props {
			documented = append(documented, p)
		}
		sort.Strings(documented)
		if !slices.Equal(documented, fields) {
			t.Errorf("schema %s has fields %v, commands.%s decodes %v", schemaName, documented, name, fields)
		}
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if !slices.Contains(fields, r.(string)) {
				t.Errorf("schema %s requires %v, which commands.%s does not have", schemaName, r, name)
			}
		}
	}
}

// requestStructs returns the JSON field names of every struct type named *Request in dir.
func requestStructs(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", e.Name(), err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok || !strings.HasSuffix(spec.Name.Name, "Request") {
				return true
			}
			st, ok := spec.Type.(*ast.StructType)
			if !ok {
				return true
			}
			var fields []string
			for _, f := range st.Fields.List {
				if f.Tag == nil {
					continue
				}
				tag, _ := strconv.Unquote(f.Tag.Value)
				name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
				if name != "" && name != "-" {
					fields = append(fields, name)
				}
			}
			sort.Strings(fields)
			out[spec.Name.Name] = fields
			return true
		})
	}
	return out
}

func TestHandlerServesTheDocument(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.Body.String() != string(Document()) {
		t.Error("the body is not the embedded document")
	}
}

// TestReferenceKeepsInStepWithTheDocument holds docs/api.md, the reference for people, to
// this document: every operation is named there as `METHOD /path` and every error code as
// `code`, and the page names no operation the document lacks.
func TestReferenceKeepsInStepWithTheDocument(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	ops, err := Operations()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.String()] = true
		if !strings.Contains(page, "`"+op.String()+"`") {
			t.Errorf("docs/api.md does not name `%s`", op)
		}
	}
	for _, m := range regexp.MustCompile("`((?:GET|HEAD|POST|PUT|PATCH|DELETE) /[^` ?]*)`").FindAllStringSubmatch(page, -1) {
		if !documented[m[1]] {
			t.Errorf("docs/api.md names `%s`, which internal/openapi/openapi.json does not document", m[1])
		}
	}
	doc := parseDocument(t)
	enum, _ := lookup(doc, "#/components/schemas/Problem/properties/code/enum")
	for _, c := range enum.([]any) {
		if !strings.Contains(page, "`"+c.(string)+"`") {
			t.Errorf("docs/api.md does not name the error code `%s`", c)
		}
	}
}
