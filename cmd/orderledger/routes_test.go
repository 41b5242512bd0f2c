package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/openapi"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// routeParam matches a path parameter in a mux template ({id}, {id:[0-9]+}) or an OpenAPI
// path ({id}); parameter names are the document's business, so they compare as {}.
var routeParam = regexp.MustCompile(`\{[^}]*\}`)

func routeKey(method, template string) string {
	return method + " " + routeParam.ReplaceAllString(template, "{}")
}

// TestEveryRouteIsDocumented walks the router serve builds and compares it with the OpenAPI
// document, both ways.
func TestEveryRouteIsDocumented(t *testing.T) {
	router := testRouter(t)
	registered := map[string]bool{}
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil // a subrouter's prefix: its routes are walked on their own
		}
		template, err := route.GetPathTemplate()
		if err != nil {
			t.Errorf("a route has no path template: %v", err)
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s answers every method; register it with .Methods(…) so it can be documented", template)
			return nil
		}
		for _, m := range methods {
			registered[routeKey(m, template)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range ops {
		documented[routeKey(op.Method, op.Path)] = true
	}

	for key := range registered {
		if !documented[key] {
			t.Errorf("%s is served but not in internal/openapi/openapi.json", key)
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("%s is in internal/openapi/openapi.json but not served", key)
		}
	}
	if len(registered) < 30 {
		t.Errorf("only %d routes found on the router: %v", len(registered), registered)
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	rec := httptest.NewRecorder()
	testRouter(t).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != string(openapi.Document()) {
		t.Fatalf("GET /v1/openapi.json: status %d, want 200 and the embedded document", rec.Code)
	}
}

// testRouter builds the router serve builds with every role, on a SQLite store of the test's own.
func testRouter(t *testing.T) *mux.Router {
	t.Helper()
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, allRoles, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s.router()
}

// TestReadAnswersMatchTheDocument calls every read route of a server with the read and
// project roles, over the scripted history (with a customer who never ordered and a SKU
// without a replenishment policy), and checks each answer, 200s and errors alike, against the
// schema the OpenAPI document gives for that route and status: every field of an answer is
// declared, with its type, and since read documents never leave a field out, every declared
// field is required. Nullable fields are seen both null and set (as_of gives the earlier
// documents), and next_cursor both ways. /readyz and /healthz are checked too.
func TestReadAnswersMatchTheDocument(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, []string{roleRead, roleProject}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	wait := s.runBackground(ctx)
	t.Cleanup(func() {
		cancel()
		wait()
	})
	records := append(projectionstest.ScriptedHistory(),
		historygen.Record{Stream: domain.CustomerStream("carol"), Event: domain.CustomerRegistered{CustomerID: "carol", Name: "Carol", Email: "carol@example.com", RegisteredAt: projectionstest.Day(5, 13, 0)}},
		historygen.Record{Stream: domain.StockStream("SKU-C"), Event: domain.StockReceived{SKU: "SKU-C", Quantity: 5, ReceivedAt: projectionstest.Day(5, 13, 1)}})
	after := "after=" + projectionstest.AppendAsRecorded(t, s.events, records).String()
	if _, err := s.tokens.Create(t.Context(), "till-3", "clerk", "cli:ops", projectionstest.Day(5, 14, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.tokens.Create(t.Context(), "left", "viewer", "cli:ops", projectionstest.Day(5, 14, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.tokens.Revoke(t.Context(), "left", "cli:ops", projectionstest.Day(5, 15, 0)); err != nil {
		t.Fatal(err)
	}

	router := s.router()
	var doc map[string]any
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, target := range []string{
		"/v1/orders?" + after, "/v1/orders?limit=1&" + after, "/v1/orders?status=cancelled&channel=store&customer_id=alice&" + after,
		"/v1/orders/order-1?" + after, "/v1/orders/order-3?" + after,
		"/v1/orders/order-1?as_of=2025-03-01T10:00:00Z", "/v1/orders/order-2?as_of=2025-03-02T11:00:00Z&" + after,
		"/v1/orders/order-1/history?" + after,
		"/v1/customers?" + after, "/v1/customers?sort=lifetime_value&limit=1&" + after,
		"/v1/customers/alice?" + after, "/v1/customers/carol?" + after,
		"/v1/customers/alice/personal-data?" + after, "/v1/customers/carol/personal-data?" + after, "/v1/customers/dave/personal-data",
		"/v1/inventory?" + after, "/v1/inventory?low_stock=true&" + after,
		"/v1/inventory/SKU-A?" + after, "/v1/inventory/SKU-C?" + after, "/v1/inventory/SKU-A?as_of=2025-03-01T09:10:00Z",
		"/v1/purchase-orders?" + after, "/v1/purchase-orders?sku=SKU-B&status=open&" + after,
		"/v1/sales/summary?" + after, "/v1/sales/summary?from=2025-03-03&to=2025-03-04T12:00:00Z&" + after,
		"/v1/sales/daily?" + after, "/v1/sales/daily?from=2025-03-04&" + after,
		"/v1/ledger/trial-balance?" + after, "/v1/ledger/trial-balance?currency=USD&to=2025-03-02&" + after,
		"/v1/ledger/currencies?" + after,
		"/v1/ledger/journal?currency=USD&" + after, "/v1/ledger/journal?format=csv&from=2025-03-01&to=2025-03-31&" + after,
		"/v1/ledger/journal?format=xml", "/v1/sales/summary?currency=usd", "/v1/ledger/trial-balance?to=tomorrow",
		"/v1/ledger/entries?" + after, "/v1/ledger/entries?limit=2&" + after, "/v1/ledger/entries?order_id=order-1&limit=500&" + after,
		"/v1/audit/verify", "/v1/audit/verify?stream=order-order-1",
		// Errors: 404s (also before a document existed) and 400s.
		"/v1/orders/order-9", "/v1/orders/order-1?as_of=2025-02-01T00:00:00Z", "/v1/orders/order-9/history",
		"/v1/customers/dave", "/v1/inventory/SKU-Z", "/v1/inventory/SKU-A?as_of=2025-03-01",
		"/v1/orders?limit=0", "/v1/ledger/entries?cursor=x", "/v1/sales/daily?from=soon", "/v1/audit/verify?stream=%20", "/v1/stream?types=Nope.v1", "/v1/webhooks", "/v1/webhooks/nope",
		"/v1/tokens", "/v1/tokens?x=1", "/readyz", "/healthz",
	} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req = req.WithContext(access.WithPrincipal(req.Context(), access.Principal{Name: "ops", Role: access.Admin}))
		var match mux.RouteMatch
		if !router.Match(req, &match) {
			t.Fatalf("no route for %s", target)
		}
		template, _ := match.Route.GetPathTemplate()
		seen[template] = true
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		contentType := rec.Header().Get("Content-Type")
		schema, found := lookupJSON(doc, "paths", template, "get", "responses", strconv.Itoa(rec.Code), "content", contentType, "schema")
		if !found {
			t.Errorf("GET %s answered %d %s, which the document does not give for GET %s: %s", target, rec.Code, contentType, template, rec.Body)
			continue
		}
		if strings.HasPrefix(contentType, "text/") {
			// The journal: its schema is a string, and the document gives its media type.
			if rec.Body.Len() == 0 {
				t.Errorf("GET %s answered an empty %s", target, contentType)
			}
			continue
		}
		var answer any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		for _, problem := range validate(doc, schema, answer, "answer") {
			t.Errorf("GET %s (%d): %s", target, rec.Code, problem)
		}
		if strings.HasPrefix(template, "/v1/") {
			for _, problem := range allRequired(doc, schema, "answer", map[string]bool{}) {
				t.Errorf("GET %s (%d): %s", target, rec.Code, problem)
			}
		}
	}
	for _, op := range mustOperations(t) {
		if op.Method == http.MethodGet && strings.HasPrefix(op.Path, "/v1/") && op.Path != "/v1/openapi.json" && !seen[op.Path] {
			t.Errorf("GET %s was not called", op.Path)
		}
	}
}

func mustOperations(t *testing.T) []openapi.Operation {
	t.Helper()
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

// lookupJSON follows keys through nested objects, resolving $refs on the way.
func lookupJSON(doc map[string]any, keys ...string) (any, bool) {
	var node any = doc
	for _, k := range keys {
		m, ok := resolveRef(doc, node).(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[k]; !ok {
			return nil, false
		}
	}
	return node, true
}

// resolveRef returns what a {"$ref": "#/…"} points to, or node itself.
func resolveRef(doc map[string]any, node any) any {
	for {
		m, ok := node.(map[string]any)
		if !ok {
			return node
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return node
		}
		var target any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			target = target.(map[string]any)[part]
		}
		node = target
	}
}

// validate checks value against a schema, in the part of JSON Schema the document uses, and
// returns what does not match. An object schema with a type and properties must declare every
// field of the value.
func validate(doc map[string]any, schemaNode, value any, path string) []string {
	schema, _ := resolveRef(doc, schemaNode).(map[string]any)
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, path+": "+fmt.Sprintf(format, args...)) }
	for _, sub := range asList(schema["allOf"]) {
		problems = append(problems, validate(doc, sub, value, path)...)
	}
	if alternatives := asList(schema["oneOf"]); len(alternatives) > 0 {
		matched := 0
		for _, sub := range alternatives {
			if len(validate(doc, sub, value, path)) == 0 {
				matched++
			}
		}
		if matched != 1 {
			fail("%v matches %d of the oneOf alternatives, not one", value, matched)
		}
	}
	if c, ok := schema["const"]; ok && !reflect.DeepEqual(c, value) {
		fail("%v is not %v", value, c)
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, value) }) {
		fail("%v is not one of %v", value, enum)
	}
	if typ, ok := schema["type"]; ok {
		types := asList(typ)
		if len(types) == 0 {
			types = []any{typ}
		}
		if !slices.ContainsFunc(types, func(t any) bool { return isJSONType(value, t.(string)) }) {
			fail("%v is not of type %v", value, typ)
			return problems
		}
	}
	switch v := value.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if _, typed := schema["type"]; !typed || props == nil {
			break
		}
		required := asList(schema["required"])
		for name, sub := range props {
			field, present := v[name]
			switch {
			case present:
				problems = append(problems, validate(doc, sub, field, path+"."+name)...)
			case slices.Contains(required, any(name)):
				fail("requires %s, which the answer lacks", name)
			}
		}
		for name := range v {
			if _, declared := props[name]; !declared {
				fail("the answer has %s, which the schema does not declare", name)
			}
		}
	case []any:
		if items, ok := schema["items"]; ok {
			for i, item := range v {
				problems = append(problems, validate(doc, items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case string:
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		switch schema["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				fail("%q is not a date-time", v)
			}
		case "date":
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				fail("%q is not a date", v)
			}
		}
	case float64:
		if m, ok := schema["minimum"].(float64); ok && v < m {
			fail("%v is below the minimum %v", v, m)
		}
		if m, ok := schema["maximum"].(float64); ok && v > m {
			fail("%v is above the maximum %v", v, m)
		}
	}
	return problems
}

// allRequired returns the properties of the object schemas a schema reaches that are not
// required.
func allRequired(doc map[string]any, schemaNode any, path string, seen map[string]bool) []string {
	if m, ok := schemaNode.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			if seen[ref] {
				return nil
			}
			seen[ref] = true
			path = ref
		}
	}
	schema, _ := resolveRef(doc, schemaNode).(map[string]any)
	var problems []string
	if props, ok := schema["properties"].(map[string]any); ok && schema["type"] == "object" {
		required := asList(schema["required"])
		for name, sub := range props {
			if !slices.Contains(required, any(name)) {
				problems = append(problems, fmt.Sprintf("%s: %s is always in the answer but not required", path, name))
			}
			problems = append(problems, allRequired(doc, sub, path+"."+name, seen)...)
		}
	}
	for _, key := range []string{"allOf", "oneOf"} {
		for _, sub := range asList(schema[key]) {
			problems = append(problems, allRequired(doc, sub, path, seen)...)
		}
	}
	if items, ok := schema["items"]; ok {
		problems = append(problems, allRequired(doc, items, path+"[]", seen)...)
	}
	return problems
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func isJSONType(v any, typ string) bool {
	switch typ {
	case "null":
		return v == nil
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	}
	return false
}
