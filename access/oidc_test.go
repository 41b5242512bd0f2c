package access_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/internal/oidctest"
)

func TestOIDCTokens(t *testing.T) {
	iss := oidctest.Start(t)
	auth, err := access.NewOIDC(t.Context(), iss.URL, "orderledger", "orderledger_role", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(change map[string]any) map[string]any {
		c := map[string]any{"iss": iss.URL, "aud": "orderledger", "sub": "u-42", "preferred_username": "ann",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "orderledger_role": "accountant"}
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name  string
		token string
		want  access.Principal
	}{
		{"valid", iss.Token(t, iss.Key, claims(nil)), access.Principal{Name: "ann", Role: access.Accountant}},
		{"name from sub", iss.Token(t, iss.Key, claims(map[string]any{"preferred_username": nil})), access.Principal{Name: "u-42", Role: access.Accountant}},
		{"roles as a list", iss.Token(t, iss.Key, claims(map[string]any{"orderledger_role": []string{"staff", "viewer"}})), access.Principal{Name: "ann", Role: access.Viewer}},
		{"expired", iss.Token(t, iss.Key, claims(map[string]any{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), access.Principal{}},
		{"wrong audience", iss.Token(t, iss.Key, claims(map[string]any{"aud": "another-app"})), access.Principal{}},
		{"wrong issuer", iss.Token(t, iss.Key, claims(map[string]any{"iss": "https://evil.example"})), access.Principal{}},
		{"wrong signature", iss.Token(t, other, claims(nil)), access.Principal{}},
		{"no role", iss.Token(t, iss.Key, claims(map[string]any{"orderledger_role": nil})), access.Principal{}},
		{"unknown role", iss.Token(t, iss.Key, claims(map[string]any{"orderledger_role": "root"})), access.Principal{}},
		{"not a JWT", "olt_abc", access.Principal{}},
		{"garbage", "a.b.c", access.Principal{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := auth.Authenticate(t.Context(), c.token)
			if c.want == (access.Principal{}) {
				if !errors.Is(err, access.ErrUnauthenticated) {
					t.Fatalf("got %+v, %v; want unauthenticated", p, err)
				}
				return
			}
			if err != nil || p != c.want {
				t.Fatalf("got %+v, %v; want %+v", p, err, c.want)
			}
		})
	}

	// Through the guard, a bad JWT is a 401 like any unknown token.
	tokens := access.NewTokens(openStore(t), nil)
	router := newEchoRouter()
	guard := access.NewGuard(router, access.NewPolicy([]access.Route{{Method: "GET", Path: "/v1/ledger/journal", Roles: []access.Role{access.Admin, access.Accountant}}}),
		access.Authenticators{tokens, auth}, func() bool { return false })
	for token, want := range map[string]int{cases[0].token: 200, cases[3].token: 401, cases[4].token: 401, cases[6].token: 401, cases[2].token: 403} {
		req := httptest.NewRequest("GET", "/v1/ledger/journal", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		guard.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("journal with a JWT: %d %s, want %d", rec.Code, rec.Body, want)
		}
	}
}
