package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/dashboard"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

// TestEveryRouteDeclaresItsRoles: a route the router serves without "x-roles" (or
// "security": []) in the OpenAPI document is refused to everyone; this names it.
func TestEveryRouteDeclaresItsRoles(t *testing.T) {
	policy := routePolicy()
	for _, rt := range servedRoutes(t, testRouter(t)) {
		route, ok := policy.Lookup(rt.method, rt.template)
		switch {
		case !ok:
			t.Errorf("%s %s is served but declares no x-roles in internal/openapi/openapi.json", rt.method, rt.template)
		case route.Public && len(route.Roles) > 0:
			t.Errorf("%s %s is public and declares roles", rt.method, rt.template)
		case !route.Public && !slices.Contains(route.Roles, access.Admin):
			t.Errorf("%s %s: admin may do everything, but x-roles is %v", rt.method, rt.template, route.Roles)
		case route.Public && rt.template != "/healthz" && rt.template != "/readyz" && !dashboardPublic[rt.template]:
			t.Errorf("%s %s needs no token; only /healthz, /readyz and the dashboard's login and assets may", rt.method, rt.template)
		}
		for _, r := range route.Roles {
			if _, err := access.ParseRole(string(r)); err != nil {
				t.Errorf("%s %s: %v", rt.method, rt.template, err)
			}
		}
	}
}

// dashboardPublic are the dashboard's routes that need no token: the login form, login and
// logout (which check their own CSRF token), and the embedded assets the login page loads.
var dashboardPublic = map[string]bool{"/ui/login": true, "/ui/logout": true, "/ui/static/{file}": true}

type servedRoute struct{ method, template string }

func servedRoutes(t *testing.T, router *mux.Router) []servedRoute {
	t.Helper()
	var out []servedRoute
	err := router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil
		}
		template, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			out = append(out, servedRoute{m, template})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRouteRoleMatrix walks every route the server serves, with a token of every role, with
// none, with an unknown one and with a revoked one, through the handler serve serves, and
// checks the status against the route's x-roles: 401 without a live token, 403 for a role
// the route does not admit, and for an admitted role anything but 401, 403 or a 5xx (a
// request with placeholder ids and an empty body is refused by the handler, not the guard).
func TestRouteRoleMatrix(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, allRoles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	s.openAllowed = true // as on loopback: the tokens below end open mode
	secrets := map[string]string{}
	for _, role := range access.Roles {
		if secrets[string(role)], err = s.tokens.Create(t.Context(), "t-"+string(role), role, "test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if secrets["revoked"], err = s.tokens.Create(t.Context(), "gone", access.Admin, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.tokens.Revoke(t.Context(), "gone", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	secrets["none"] = ""
	secrets["unknown"] = "olt_" + strings.Repeat("A", 43)
	secrets["malformed"] = "not a token"

	handler := s.httpHandler(slog.New(slog.DiscardHandler))
	policy := routePolicy()
	routes := servedRoutes(t, s.router())
	if len(routes) < 35 {
		t.Fatalf("only %d routes served", len(routes))
	}
	callers := []string{"none", "unknown", "malformed", "revoked"}
	for _, r := range access.Roles {
		callers = append(callers, string(r))
	}
	var matrix strings.Builder
	matrix.WriteString("route\t" + strings.Join(callers, "\t") + "\n")
	for _, rt := range routes {
		route, _ := policy.Lookup(rt.method, rt.template)
		path := routeParam.ReplaceAllString(rt.template, "X1")
		matrix.WriteString(rt.method + " " + rt.template)
		for _, caller := range callers {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond) // ends GET /v1/stream
			var body *strings.Reader
			if rt.method == http.MethodPost || rt.method == http.MethodPut {
				body = strings.NewReader("{}")
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(rt.method, path, body).WithContext(ctx)
			if body.Len() > 0 {
				req.Header.Set("Content-Type", "application/json")
			}
			switch caller {
			case "none":
			case "malformed":
				req.Header.Set("Authorization", secrets[caller])
			default:
				req.Header.Set("Authorization", "Bearer "+secrets[caller])
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			cancel()
			got := rec.Code
			matrix.WriteString("\t" + http.StatusText(got)[:min(9, len(http.StatusText(got)))])
			admitted := slices.Contains(route.Roles, access.Role(caller))
			switch {
			case route.Public:
				if got == 401 || got == 403 {
					t.Errorf("%s %s as %s: %d; it needs no token", rt.method, rt.template, caller, got)
				}
			case caller == "none" && dashboard.IsPage(rt.template):
				// A person without a session is sent to the login page.
				if got != 303 || rec.Header().Get("Location") != dashboard.LoginPath {
					t.Errorf("%s %s as %s: %d to %q; want 303 to %s", rt.method, rt.template, caller, got, rec.Header().Get("Location"), dashboard.LoginPath)
				}
			case caller == "none" || caller == "unknown" || caller == "malformed" || caller == "revoked":
				if got != 401 || rec.Header().Get("WWW-Authenticate") != "Bearer" || !strings.Contains(rec.Body.String(), `"code":"unauthenticated"`) {
					t.Errorf("%s %s as %s: %d %s; want 401 unauthenticated with WWW-Authenticate: Bearer", rt.method, rt.template, caller, got, rec.Body)
				}
			case !admitted:
				if got != 403 || !strings.Contains(rec.Body.String(), `"code":"forbidden"`) {
					t.Errorf("%s %s as %s: %d %s; want 403 forbidden", rt.method, rt.template, caller, got, rec.Body)
				}
			default:
				if got == 401 || got == 403 || got >= 500 {
					t.Errorf("%s %s as %s (admitted): %d %s", rt.method, rt.template, caller, got, rec.Body)
				}
			}
		}
		matrix.WriteString("\n")
	}
	t.Logf("route × caller statuses:\n%s", matrix.String())
}

// TestActorIsTheTokensName: the events a request causes name its token as their actor,
// whatever X-Actor claims, and the order's history shows it.
func TestActorIsTheTokensName(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, allRoles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	clerk, err := s.tokens.Create(t.Context(), "till-7", access.Clerk, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.tokens.Create(t.Context(), "ops", access.Admin, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	handler := s.httpHandler(slog.New(slog.DiscardHandler))
	do := func(token, method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Actor", "mallory")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	for _, w := range []struct{ token, method, path, body string }{
		{admin, "POST", "/v1/inventory/SKU-1/receipts", `{"quantity":5}`},
		{clerk, "POST", "/v1/customers", `{"customer_id":"C1","name":"Ann","email":"ann@example.com"}`},
		{clerk, "POST", "/v1/orders", `{"order_id":"O1","customer_id":"C1","channel":"web","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unit_price":100}]}`},
		{admin, "POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/hook"}`},
	} {
		if rec := do(w.token, w.method, w.path, w.body); rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", w.method, w.path, rec.Code, rec.Body)
		}
	}
	want := map[string]string{"stock": "ops", "customer": "till-7", "order": "till-7", "webhook": "ops"}
	events, err := s.events.ReadAll(t.Context(), eventstore.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		category, _, _ := strings.Cut(ev.Stream, "-")
		if w, ok := want[category]; ok && ev.Metadata.Actor != w {
			t.Errorf("%s %s: actor %q, want %q", ev.Stream, ev.Type, ev.Metadata.Actor, w)
		}
		delete(want, category)
	}
	if len(want) > 0 {
		t.Errorf("no events in %v", want)
	}
	rec := do(clerk, "GET", "/v1/orders/O1/history", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"actor":"till-7"`) || strings.Contains(rec.Body.String(), "mallory") {
		t.Fatalf("history: %d %s", rec.Code, rec.Body)
	}
}

// TestViewersGetPersonalDataAsNull: a viewer reads customers and the live feed with name,
// email, phone and shipping_address null; a clerk and an auditor see them.
func TestViewersGetPersonalDataAsNull(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, allRoles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	wait := s.runBackground(ctx)
	t.Cleanup(func() { stop(); wait() })
	secrets := map[access.Role]string{}
	for _, role := range []access.Role{access.Admin, access.Clerk, access.Auditor, access.Viewer} {
		if secrets[role], err = s.tokens.Create(t.Context(), "t-"+string(role), role, "test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	handler := s.httpHandler(slog.New(slog.DiscardHandler))
	do := func(ctx context.Context, role access.Role, method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+secrets[role])
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	var position string
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/v1/inventory/SKU-1/receipts", `{"quantity":5}`},
		{"POST", "/v1/customers", `{"customer_id":"C1","name":"Ann Lee","email":"ann@example.com","phone":"+1 555 0100"}`},
		{"POST", "/v1/orders", `{"order_id":"O1","customer_id":"C1","channel":"web","currency":"EUR","shipping_address":"1 Main St","lines":[{"sku":"SKU-1","quantity":1,"unit_price":100}]}`},
	} {
		rec := do(t.Context(), access.Admin, w.method, w.path, w.body)
		if rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", w.method, w.path, rec.Code, rec.Body)
		}
		var ans struct{ Position string }
		_ = json.Unmarshal(rec.Body.Bytes(), &ans)
		position = ans.Position
	}
	personal := []string{"Ann Lee", "ann@example.com", "+1 555 0100", "1 Main St"}
	for _, c := range []struct {
		path string
		role access.Role
		sees []string // the personal data the answer must hold; none: it must hold none
	}{
		{"/v1/customers?after=" + position, access.Viewer, nil},
		{"/v1/customers/C1?after=" + position, access.Viewer, nil},
		{"/v1/customers?after=" + position, access.Clerk, personal[:3]},
		{"/v1/customers/C1?after=" + position, access.Auditor, personal[:3]},
		{"/v1/orders/O1/history", access.Auditor, personal[3:]},
		{"/v1/stream?after=0-0", access.Viewer, nil},
		{"/v1/stream?after=0-0", access.Auditor, personal},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond) // ends the stream
		rec := do(ctx, c.role, "GET", c.path, "")
		cancel()
		body := rec.Body.String()
		if rec.Code != 200 {
			t.Fatalf("GET %s as %s: %d %s", c.path, c.role, rec.Code, body)
		}
		if c.sees == nil {
			for _, p := range personal {
				if strings.Contains(body, p) {
					t.Errorf("GET %s as %s shows %q: %s", c.path, c.role, p, body)
				}
			}
			if !strings.Contains(body, `"name":null`) || !strings.Contains(body, `"email":null`) {
				t.Errorf("GET %s as %s: want name and email null: %s", c.path, c.role, body)
			}
		}
		for _, p := range c.sees {
			if !strings.Contains(body, p) {
				t.Errorf("GET %s as %s lacks %q: %s", c.path, c.role, p, body)
			}
		}
	}
	if rec := do(t.Context(), access.Viewer, "GET", "/v1/orders/O1/history", ""); rec.Code != 403 {
		t.Errorf("a viewer reads the history: %d", rec.Code)
	}
}

// TestBrowserSafety: a write a page elsewhere could forge (text/plain, a form) is a 415 even
// in open mode; no answer carries CORS headers unless --cors-origin lists the origin, whose
// preflight is then answered without a token.
func TestBrowserSafety(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	s, err := openService(t.Context(), cfg, allRoles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	s.openAllowed = true
	do := func(h http.Handler, method, path, contentType, origin string, extra ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(`{"customer_id":"C1","name":"Ann","email":"a@example.com"}`))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	plain := s.httpHandler(slog.New(slog.DiscardHandler))
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		rec := do(plain, "POST", "/v1/customers", ct, "http://evil.example")
		if rec.Code != 415 || !strings.Contains(rec.Body.String(), `"code":"unsupported_media_type"`) || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("forged write with Content-Type %q: %d %s %v", ct, rec.Code, rec.Body, rec.Header())
		}
	}
	if rec := do(plain, "OPTIONS", "/v1/customers", "", "http://evil.example", "Access-Control-Request-Method", "POST"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight without --cors-origin: %d %v", rec.Code, rec.Header())
	}

	s.corsOrigins = []string{"https://shop.example.com"}
	s.reg = prometheus.NewRegistry() // the handler registers its metrics again
	withCORS := s.httpHandler(slog.New(slog.DiscardHandler))
	rec := do(withCORS, "OPTIONS", "/v1/customers", "", "https://shop.example.com", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if rec.Code >= 300 || rec.Header().Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Errorf("preflight of a listed origin: %d %v", rec.Code, rec.Header())
	}
	if rec := do(withCORS, "OPTIONS", "/v1/customers", "", "http://evil.example", "Access-Control-Request-Method", "POST"); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of an unlisted origin: %v", rec.Header())
	}
	if rec := do(withCORS, "POST", "/v1/customers", "application/json", "https://shop.example.com"); rec.Code != 201 || rec.Header().Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Errorf("write from a listed origin: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	for _, bad := range []string{"*", "https://shop.example.com/", "shop.example.com", "ftp://x", "https://a@b"} {
		if checkOrigin(bad) == nil {
			t.Errorf("--cors-origin %q accepted", bad)
		}
	}
}

// TestServeRefusesAnOpenNonLoopbackAddress: on a non-loopback address with no token serve
// exits 2 naming "orderledger tokens create", unless --insecure-no-auth; with a token ever
// created it serves.
func TestServeRefusesAnOpenNonLoopbackAddress(t *testing.T) {
	cfg := &config{events: "sqlite:" + filepath.Join(t.TempDir(), "events.db")}
	opts := func(insecure bool) *serveOptions {
		return &serveOptions{addr: "0.0.0.0:0", roles: []string{roleWrite, roleRead}, baseCurrency: "EUR",
			shutdownTimeout: time.Second, cacheBytes: 1 << 20, insecureNoAuth: insecure}
	}
	err := serve(t.Context(), cfg, opts(false))
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(err.Error(), "orderledger tokens create") {
		t.Fatalf("serve on 0.0.0.0 without tokens: %v; want exit 2 naming orderledger tokens create", err)
	}
	servesUntilStopped := func(what string, o *serveOptions) {
		t.Helper()
		ctx, stop := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer stop()
		if err := serve(ctx, cfg, o); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	servesUntilStopped("--insecure-no-auth", opts(true))

	events, err := stores.OpenEvents(t.Context(), cfg.events)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := access.NewTokens(events, nil).Create(t.Context(), "ops", access.Admin, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = events.Close()
	servesUntilStopped("with a token", opts(false))
}

// TestFirstStartWritesAnAdminToken: --admin-token-file creates the token admin on stores that
// never had one and writes its secret, mode 0600; a second start leaves everything alone.
func TestFirstStartWritesAnAdminToken(t *testing.T) {
	events, err := stores.OpenEvents(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.Close() })
	tokens := access.NewTokens(events, nil)
	path := filepath.Join(t.TempDir(), "admin-token")
	if err := createFirstAdminToken(t.Context(), tokens, path, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, mode %v", err, info.Mode())
	}
	secret, _ := os.ReadFile(path)
	p, err := tokens.Authenticate(t.Context(), strings.TrimSpace(string(secret)))
	if err != nil || p != (access.Principal{Name: "admin", Role: access.Admin}) {
		t.Fatalf("the written secret authenticates as %+v, %v", p, err)
	}
	if err := createFirstAdminToken(t.Context(), tokens, path, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(secret) || len(tokens.List()) != 1 {
		t.Fatalf("second start changed the token: %d tokens", len(tokens.List()))
	}
}

// BenchmarkReadCustomer measures GET /v1/customers/{id} through the handler serve serves:
// with a bearer token (the guard authenticates and authorizes it), in open mode, and through
// the bare router, so that the cost of access control per request can be read off.
func BenchmarkReadCustomer(b *testing.B) {
	cfg := &config{events: "sqlite:" + filepath.Join(b.TempDir(), "events.db")}
	s, err := openService(b.Context(), cfg, allRoles, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.close)
	ctx, stop := context.WithCancel(context.WithoutCancel(b.Context()))
	wait := s.runBackground(ctx)
	b.Cleanup(func() { stop(); wait() })
	s.openAllowed = true
	open := s.httpHandler(slog.New(slog.DiscardHandler))
	req := httptest.NewRequest("POST", "/v1/customers", strings.NewReader(`{"customer_id":"C1","name":"Ann","email":"ann@example.com"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	var ans struct{ Position string }
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	rec = httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/customers/C1?after="+ans.Position, nil))
	if rec.Code != 200 {
		b.Fatalf("%d %s", rec.Code, rec.Body)
	}
	router := s.router()
	run := func(b *testing.B, h http.Handler, token string) {
		for b.Loop() {
			req := httptest.NewRequest("GET", "/v1/customers/C1", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			} else if h == http.Handler(router) {
				req = req.WithContext(access.WithPrincipal(req.Context(), access.Principal{Name: "x", Role: access.Clerk}))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("router", func(b *testing.B) { run(b, router, "") })
	b.Run("open", func(b *testing.B) { run(b, open, "") })
	token, err := s.tokens.Create(b.Context(), "desk", access.Clerk, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	s.reg = prometheus.NewRegistry()
	guarded := s.httpHandler(slog.New(slog.DiscardHandler))
	b.Run("token", func(b *testing.B) { run(b, guarded, token) })
}
