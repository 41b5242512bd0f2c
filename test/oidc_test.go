package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/oidctest"
)

// TestOIDCEndToEnd: `serve --oidc-issuer … --oidc-audience …` started as a user would, against an
// issuer on loopback. A JWT from it with a role claim works with that role's rights and its
// preferred_username becomes the events' actor; an expired one, one for another audience and
// one signed by another key are 401; a server that trusts an issuer is never in open mode.
func TestOIDCEndToEnd(t *testing.T) {
	iss := oidctest.Start(t)
	srv := startServerWith(t, "sqlite:"+t.TempDir()+"/oidc.db", "--oidc-issuer", iss.URL, "--oidc-audience", "orderledger")
	now := time.Now()
	claims := func(role string, change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": iss.URL, "aud": "orderledger", "sub": "u-7", "preferred_username": "grace",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "orderledger_role": role}
		if change != nil {
			change(c)
		}
		return c
	}
	if ready := srv.expect(t, http.StatusOK, "GET", "/readyz", nil); ready["auth"] == "open" {
		t.Fatalf("/readyz auth = open on a server that trusts an issuer")
	}
	srv.expect(t, http.StatusUnauthorized, "GET", "/v1/orders", nil)

	admin := iss.Token(t, iss.Key, claims("admin", nil))
	clerk := iss.Token(t, iss.Key, claims("clerk", func(c map[string]any) { c["preferred_username"] = "till-9" }))
	srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 5}, authorization(admin)...)
	srv.expect(t, http.StatusForbidden, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 5}, authorization(clerk)...)
	srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "C-1", "name": "Ann", "email": "ann@example.com"}, authorization(clerk)...)
	srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": "O-1", "customer_id": "C-1", "channel": "phone", "currency": "EUR",
		"lines": []any{map[string]any{"sku": "SKU-1", "quantity": 1, "unit_price": 700}}}, append(authorization(clerk), "X-Actor", "mallory")...)
	history := srv.expect(t, http.StatusOK, "GET", "/v1/orders/O-1/history", nil, authorization(admin)...)
	if first := history["events"].([]any)[0].(map[string]any); first["actor"] != "till-9" {
		t.Fatalf("the order's first event: %v; want the JWT's preferred_username till-9 as its actor", first)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{
		"expired":          iss.Token(t, iss.Key, claims("admin", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"another audience": iss.Token(t, iss.Key, claims("admin", func(c map[string]any) { c["aud"] = "someone-else" })),
		"another key":      iss.Token(t, other, claims("admin", nil)),
		"no role":          iss.Token(t, iss.Key, claims("admin", func(c map[string]any) { delete(c, "orderledger_role") })),
	} {
		resp := srv.do(t, "GET", "/v1/orders", nil, authorization(token)...)
		if resp.status != http.StatusUnauthorized || resp.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s JWT: %d %s; want 401 with WWW-Authenticate: Bearer", name, resp.status, resp.body)
		}
	}
}
