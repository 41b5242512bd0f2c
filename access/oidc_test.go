package access_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/orderledger/orderledger/access"
)

// testIssuer is an OpenID Connect issuer on loopback: its discovery document and its JWKS,
// and a key to sign with.
type testIssuer struct {
	url string
	key *rsa.PrivateKey
}

func startIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.url, "jwks_uri": iss.url + "/keys", "authorization_endpoint": iss.url + "/auth",
			"token_endpoint": iss.url + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})
	srv := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	return iss
}

func (iss *testIssuer) sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestOIDCTokens(t *testing.T) {
	iss := startIssuer(t)
	auth, err := access.NewOIDC(t.Context(), iss.url, "orderledger", "orderledger_role", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(change map[string]any) map[string]any {
		c := map[string]any{"iss": iss.url, "aud": "orderledger", "sub": "u-42", "preferred_username": "ann",
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
		{"valid", iss.sign(t, iss.key, claims(nil)), access.Principal{Name: "ann", Role: access.Accountant}},
		{"name from sub", iss.sign(t, iss.key, claims(map[string]any{"preferred_username": nil})), access.Principal{Name: "u-42", Role: access.Accountant}},
		{"roles as a list", iss.sign(t, iss.key, claims(map[string]any{"orderledger_role": []string{"staff", "viewer"}})), access.Principal{Name: "ann", Role: access.Viewer}},
		{"expired", iss.sign(t, iss.key, claims(map[string]any{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), access.Principal{}},
		{"wrong audience", iss.sign(t, iss.key, claims(map[string]any{"aud": "another-app"})), access.Principal{}},
		{"wrong issuer", iss.sign(t, iss.key, claims(map[string]any{"iss": "https://evil.example"})), access.Principal{}},
		{"wrong signature", iss.sign(t, other, claims(nil)), access.Principal{}},
		{"no role", iss.sign(t, iss.key, claims(map[string]any{"orderledger_role": nil})), access.Principal{}},
		{"unknown role", iss.sign(t, iss.key, claims(map[string]any{"orderledger_role": "root"})), access.Principal{}},
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
