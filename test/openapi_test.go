package e2e

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/internal/openapi"
)

// apiDoc is the OpenAPI document the binary serves, used to check that what the server
// answers is what the document promises.
type apiDoc struct {
	doc   map[string]any
	paths []documentedPath
}

type documentedPath struct {
	template string
	match    *regexp.Regexp
}

var templateParam = regexp.MustCompile(`\\\{[^}]*\\\}`)

func loadOpenAPI(t *testing.T) *apiDoc {
	t.Helper()
	d := &apiDoc{}
	if err := json.Unmarshal(openapi.Document(), &d.doc); err != nil {
		t.Fatal(err)
	}
	for template := range d.doc["paths"].(map[string]any) {
		pattern := templateParam.ReplaceAllString(regexp.QuoteMeta(template), `[^/]+`)
		d.paths = append(d.paths, documentedPath{template, regexp.MustCompile("^" + pattern + "$")})
	}
	return d
}

func (d *apiDoc) get(pointer string) any {
	var node any = d.doc
	for _, part := range strings.Split(strings.TrimPrefix(pointer, "#/"), "/") {
		m, _ := node.(map[string]any)
		node = m[strings.ReplaceAll(part, "~1", "/")]
	}
	return node
}

func (d *apiDoc) deref(node any) map[string]any {
	m, _ := node.(map[string]any)
	if r, ok := m["$ref"].(string); ok {
		m, _ = d.get(r).(map[string]any)
	}
	return m
}

// checkDocumented fails the test unless the operation the request addressed documents the
// status with the code. Unknown routes and methods have no operation; their codes need only
// be known to the Problem schema.
func (d *apiDoc) checkDocumented(t testing.TB, method, rawPath string, status int, code string) {
	t.Helper()
	u, err := url.Parse(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	allCodes, _ := d.get("#/components/schemas/Problem/properties/code/enum").([]any)
	if !slices.Contains(allCodes, any(code)) {
		t.Errorf("code %s is not in the OpenAPI Problem schema", code)
	}
	var op map[string]any
	for _, p := range d.paths {
		if p.match.MatchString(u.Path) {
			item, _ := d.get("#/paths/" + strings.ReplaceAll(p.template, "/", "~1")).(map[string]any)
			op, _ = item[strings.ToLower(method)].(map[string]any)
		}
	}
	if op == nil {
		if code != "route_not_found" && code != "method_not_allowed" {
			t.Errorf("no operation documents %s %s", method, u.Path)
		}
		return
	}
	responses, _ := op["responses"].(map[string]any)
	res := d.deref(responses[strconv.Itoa(status)])
	if res == nil {
		t.Errorf("%s %s: status %d is not documented", method, u.Path, status)
		return
	}
	content, _ := res["content"].(map[string]any)
	media, _ := content["application/problem+json"].(map[string]any)
	schema, _ := media["schema"].(map[string]any)
	allOf, _ := schema["allOf"].([]any)
	for _, part := range allOf {
		props, _ := part.(map[string]any)["properties"].(map[string]any)
		if c, ok := props["code"].(map[string]any); ok && !slices.Contains(c["enum"].([]any), any(code)) {
			t.Errorf("%s %s: status %d documents codes %v, the server answered %s", method, u.Path, status, c["enum"], code)
		}
	}
}
