package access_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

func openStore(t *testing.T) eventstore.Store {
	t.Helper()
	store, err := stores.OpenEvents(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestParseAuthorization(t *testing.T) {
	cases := []struct {
		header, want string
		bad          bool
	}{
		{"", "", false},
		{"Bearer olt_abc-DEF_123", "olt_abc-DEF_123", false},
		{"bearer olt_x", "olt_x", false},
		{"BEARER a.b.c", "a.b.c", false},
		{"Bearer abc==", "abc==", false},
		{"Bearer a+b/c~", "a+b/c~", false},
		{"Basic dXNlcjpwYXNz", "", true},
		{"Bearer", "", true},
		{"Bearer ", "", true},
		{"Bearer  two-spaces", "", true},
		{"Bearer a b", "", true},
		{"Bearer =abc", "", true},
		{"Bearer ab=c", "", true},
		{"Bearer é", "", true},
		{"Bearer a\x00b", "", true},
		{"Bearer " + strings.Repeat("a", access.MaxCredentialLength+1), "", true},
		{"Token olt_x", "", true},
	}
	for _, c := range cases {
		got, err := access.ParseAuthorization(c.header)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %q, bad=%v", c.header, got, err, c.want, c.bad)
		}
	}
}

// FuzzParseAuthorization: any header either parses into a credential of the token68 alphabet
// that, put back behind "Bearer ", parses to itself, or is refused; it never panics.
func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{"", "Bearer olt_abc", "bearer a.b.c", "Bearer abc==", "Basic x", "Bearer  x", "Bearer a b", "Bearer \xff", "Bearer =", "Bearer a=b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		credential, err := access.ParseAuthorization(header)
		if err != nil {
			if credential != "" {
				t.Fatalf("refused %q but answered credential %q", header, credential)
			}
			return
		}
		if header == "" {
			if credential != "" {
				t.Fatalf("empty header gave %q", credential)
			}
			return
		}
		if credential == "" || len(credential) > access.MaxCredentialLength || !strings.HasSuffix(header, credential) {
			t.Fatalf("%q gave credential %q", header, credential)
		}
		for _, c := range []byte(credential) {
			if c <= ' ' || c >= 0x7f || c == '"' || c == ',' {
				t.Fatalf("%q gave credential %q holding byte %q", header, credential, c)
			}
		}
		again, err := access.ParseAuthorization("Bearer " + credential)
		if err != nil || again != credential {
			t.Fatalf("credential %q does not parse back: %q, %v", credential, again, err)
		}
	})
}

func TestTokensAreEventsAndSecretsOnlyHashes(t *testing.T) {
	store := openStore(t)
	tokens := access.NewTokens(store, nil)
	if err := tokens.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tokens.AnyCreated() {
		t.Fatal("an empty log has tokens")
	}
	secret, err := tokens.Create(t.Context(), "shop", access.Clerk, "cli:ops", now)
	if err != nil {
		t.Fatal(err)
	}
	raw := strings.TrimPrefix(secret, access.TokenPrefix)
	if !strings.HasPrefix(secret, access.TokenPrefix) || len(raw) < 22 { // 22 base64 chars = 128 bits
		t.Fatalf("secret %q: want %s and at least 128 bits", secret, access.TokenPrefix)
	}
	p, err := tokens.Authenticate(t.Context(), secret)
	if err != nil || p != (access.Principal{Name: "shop", Role: access.Clerk}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for _, wrong := range []string{"", "olt_", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret)} {
		if _, err := tokens.Authenticate(t.Context(), wrong); !errors.Is(err, access.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want unauthenticated", wrong, err)
		}
	}
	// The log holds the hash and who created it, never the secret.
	events, err := store.ReadStream(t.Context(), domain.TokenRegistryStream, 0, 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("token stream: %d events, %v", len(events), err)
	}
	sum := sha256.Sum256([]byte(secret))
	if strings.Contains(string(events[0].Data), raw) || !strings.Contains(string(events[0].Data), hex.EncodeToString(sum[:])) ||
		events[0].Type != "TokenCreated.v1" || events[0].Metadata.Actor != "cli:ops" {
		t.Fatalf("stored event %s %s actor %q", events[0].Type, events[0].Data, events[0].Metadata.Actor)
	}

	if _, err := tokens.Create(t.Context(), "shop", access.Viewer, "cli:ops", now); !errors.Is(err, access.ErrTokenExists) {
		t.Fatalf("second token named shop: %v", err)
	}
	for _, bad := range []string{"", ".x", "a b", strings.Repeat("a", 65)} {
		if _, err := tokens.Create(t.Context(), bad, access.Viewer, "cli:ops", now); err == nil {
			t.Errorf("token named %q was created", bad)
		}
	}
	if _, err := tokens.Create(t.Context(), "x", access.Role("root"), "cli:ops", now); err == nil {
		t.Error("a token of role root was created")
	}
	if err := tokens.Revoke(t.Context(), "shop", "boss", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Authenticate(t.Context(), secret); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("a revoked token authenticates: %v", err)
	}
	if err := tokens.Revoke(t.Context(), "shop", "boss", now); !errors.Is(err, access.ErrTokenRevoked) {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := tokens.Revoke(t.Context(), "nobody", "boss", now); !errors.Is(err, access.ErrTokenNotFound) {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	list := tokens.List()
	if len(list) != 1 || list[0].Name != "shop" || list[0].CreatedBy != "cli:ops" || list[0].RevokedAt == nil ||
		!list[0].RevokedAt.Equal(now.Add(time.Hour)) || !tokens.AnyCreated() {
		t.Fatalf("List = %+v", list)
	}
}

// Two registries on one log, as two servers: a token created or revoked through one is in
// force, or refused, on the other within 2 s.
func TestAnotherServerSeesATokenWithinTwoSeconds(t *testing.T) {
	store := openStore(t)
	writer := access.NewTokens(store, nil)
	follower := access.NewTokens(store, nil)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { follower.Follow(ctx, access.RefreshInterval); close(done) }()
	defer func() { stop(); <-done }()

	within := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen within 2 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	secret, err := writer.Create(t.Context(), "erp", access.Accountant, "cli:ops", now)
	if err != nil {
		t.Fatal(err)
	}
	within("creation", func() bool { _, err := follower.Authenticate(t.Context(), secret); return err == nil })
	if err := writer.Revoke(t.Context(), "erp", "cli:ops", now); err != nil {
		t.Fatal(err)
	}
	within("revocation", func() bool { _, err := follower.Authenticate(t.Context(), secret); return err != nil })
}

// Creates racing on two registries never both win a name.
func TestConcurrentCreatesOfOneNameOneWins(t *testing.T) {
	store := openStore(t)
	a, b := access.NewTokens(store, nil), access.NewTokens(store, nil)
	errs := make(chan error, 2)
	for _, r := range []*access.Tokens{a, b} {
		go func() { _, err := r.Create(t.Context(), "same", access.Viewer, "x", now); errs <- err }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || (!errors.Is(e1, access.ErrTokenExists) && !errors.Is(e2, access.ErrTokenExists)) {
		t.Fatalf("two creates of one name: %v, %v", e1, e2)
	}
}

func TestGuard(t *testing.T) {
	store := openStore(t)
	tokens := access.NewTokens(store, nil)
	clerk, err := tokens.Create(t.Context(), "desk", access.Clerk, "x", now)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := tokens.Create(t.Context(), "wall", access.Viewer, "x", now)
	if err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	seen := ""
	handler := func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		seen = p.Name
		w.WriteHeader(http.StatusNoContent)
	}
	router.HandleFunc("/v1/orders", handler).Methods(http.MethodPost)
	router.HandleFunc("/v1/orders/{id}", handler).Methods(http.MethodGet)
	router.HandleFunc("/healthz", handler).Methods(http.MethodGet)
	router.HandleFunc("/undeclared", handler).Methods(http.MethodGet)
	policy := access.NewPolicy([]access.Route{
		{Method: "POST", Path: "/v1/orders", Roles: []access.Role{access.Admin, access.Clerk}},
		{Method: "GET", Path: "/v1/orders/{order_id}", Roles: []access.Role{access.Admin, access.Clerk, access.Viewer}},
		{Method: "GET", Path: "/healthz", Public: true},
	})
	open := false
	guard := access.NewGuard(router, policy, tokens, func() bool { return open })
	cases := []struct {
		method, path, auth string
		status             int
		code, principal    string
		contentType        string
	}{
		{"POST", "/v1/orders", "", 401, "unauthenticated", "", ""},
		{"POST", "/v1/orders", "Bearer olt_nope", 401, "unauthenticated", "", ""},
		{"POST", "/v1/orders", "Basic " + clerk, 401, "unauthenticated", "", ""},
		{"POST", "/v1/orders", "Bearer " + clerk, 204, "", "desk", ""},
		{"POST", "/v1/orders", "Bearer " + viewer, 403, "forbidden", "", ""},
		{"GET", "/v1/orders/O1", "Bearer " + viewer, 204, "", "wall", ""},
		{"HEAD", "/v1/orders/O1", "Bearer " + viewer, 204, "", "wall", ""},
		{"GET", "/healthz", "", 204, "", "", ""},
		{"GET", "/undeclared", "Bearer " + clerk, 403, "forbidden", "", ""},
		{"GET", "/no/such/route", "", 401, "unauthenticated", "", ""},
		{"GET", "/no/such/route", "Bearer " + clerk, 404, "", "", ""},
		{"DELETE", "/v1/orders", "", 401, "unauthenticated", "", ""},
		// A write a browser could send across sites without asking is refused.
		{"POST", "/v1/orders", "Bearer " + clerk, 415, "unsupported_media_type", "", "text/plain"},
		{"POST", "/v1/orders", "Bearer " + clerk, 415, "unsupported_media_type", "", "application/x-www-form-urlencoded"},
		{"POST", "/v1/orders", "Bearer " + clerk, 415, "unsupported_media_type", "", "none"},
		{"POST", "/v1/orders", "Bearer " + clerk, 415, "unsupported_media_type", "", "application/jsonp"},
		{"POST", "/v1/orders", "Bearer " + clerk, 204, "", "desk", "Application/JSON; charset=utf-8"},
	}
	for _, c := range cases {
		seen = ""
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.method == "HEAD" {
			req.Method = "GET" // as httpx.Instrument hands a HEAD to the router
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		switch c.contentType {
		case "":
			req.Header.Set("Content-Type", "application/json")
		case "none":
		default:
			req.Header.Set("Content-Type", c.contentType)
		}
		rec := httptest.NewRecorder()
		guard.ServeHTTP(rec, req)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.code) || seen != c.principal {
			t.Errorf("%s %s %q: %d %s (principal %q); want %d %s (principal %q)", c.method, c.path, c.auth, rec.Code, rec.Body, seen, c.status, c.code, c.principal)
		}
		if (rec.Code == 401) != (rec.Header().Get("WWW-Authenticate") == "Bearer") {
			t.Errorf("%s %s: status %d with WWW-Authenticate %q", c.method, c.path, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	open = true
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/orders", nil)
	req.Header.Set("Content-Type", "application/json")
	guard.ServeHTTP(rec, req)
	if rec.Code != 204 || seen != access.OpenPrincipal.Name {
		t.Fatalf("open mode: %d, principal %q", rec.Code, seen)
	}
	// The forged write of a page elsewhere, to a server on loopback in open mode.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/v1/orders", strings.NewReader(`{"order_id":"x"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "http://evil.example")
	guard.ServeHTTP(rec, req)
	if rec.Code != 415 {
		t.Fatalf("open mode, text/plain write: %d, want 415", rec.Code)
	}
	rec = httptest.NewRecorder()
	guard.ServeHTTP(rec, httptest.NewRequest("GET", "/undeclared", nil))
	if rec.Code != 403 {
		t.Fatalf("open mode, a route that declares no roles: %d, want 403", rec.Code)
	}
}

// cookieSessions is a session store of one cookie value for a principal.
type cookieSessions struct{ value string }

func (s cookieSessions) SessionPrincipal(r *http.Request) (access.Principal, bool) {
	c, err := r.Cookie("s")
	if err != nil || c.Value != s.value {
		return access.Principal{}, false
	}
	return access.Principal{Name: "desk", Role: access.Clerk}, true
}

// TestGuardSessions: a session admits reads only, never a write (so another site's page
// cannot make a browser write with it); a page without a credential is a 303 to the login
// page, an API route a 401.
func TestGuardSessions(t *testing.T) {
	tokens := access.NewTokens(openStore(t), nil)
	router := mux.NewRouter()
	seen := ""
	handler := func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		seen = p.Name
		w.WriteHeader(http.StatusNoContent)
	}
	router.HandleFunc("/v1/orders", handler).Methods(http.MethodPost, http.MethodGet)
	router.HandleFunc("/ui/orders", handler).Methods(http.MethodGet)
	policy := access.NewPolicy([]access.Route{
		{Method: "POST", Path: "/v1/orders", Roles: []access.Role{access.Admin, access.Clerk}},
		{Method: "GET", Path: "/v1/orders", Roles: []access.Role{access.Admin, access.Clerk}},
		{Method: "GET", Path: "/ui/orders", Roles: []access.Role{access.Admin, access.Clerk}},
	})
	guard := access.NewGuard(router, policy, tokens, func() bool { return false }).
		WithSessions(cookieSessions{"good"}, func(template string) bool { return strings.HasPrefix(template, "/ui/") }, "/ui/login")
	for _, c := range []struct {
		method, path, cookie string
		status               int
		principal, location  string
	}{
		{"GET", "/ui/orders", "good", 204, "desk", ""},
		{"GET", "/v1/orders", "good", 204, "desk", ""},
		{"POST", "/v1/orders", "good", 401, "", ""},
		{"GET", "/ui/orders", "bad", 303, "", "/ui/login"},
		{"GET", "/ui/orders", "", 303, "", "/ui/login"},
		{"GET", "/v1/orders", "", 401, "", ""},
	} {
		seen = ""
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.cookie != "" {
			req.AddCookie(&http.Cookie{Name: "s", Value: c.cookie})
		}
		rec := httptest.NewRecorder()
		guard.ServeHTTP(rec, req)
		if rec.Code != c.status || seen != c.principal || rec.Header().Get("Location") != c.location {
			t.Errorf("%s %s with cookie %q: %d (principal %q, Location %q); want %d (%q, %q)",
				c.method, c.path, c.cookie, rec.Code, seen, rec.Header().Get("Location"), c.status, c.principal, c.location)
		}
	}
}

// newEchoRouter answers GET /v1/ledger/journal with 200 and the principal's name.
func newEchoRouter() *mux.Router {
	r := mux.NewRouter()
	r.HandleFunc("/v1/ledger/journal", func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte(p.Name))
	}).Methods(http.MethodGet)
	return r
}
