package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/internal/openapi"
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
