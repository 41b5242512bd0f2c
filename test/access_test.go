package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// orderledger runs the binary's CLI on a store and answers its stdout.
func orderledger(t *testing.T, events string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--events", events)...)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("orderledger %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// newToken creates a token with the CLI and answers its secret, the last line of stdout.
func newToken(t *testing.T, events, name, role string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(orderledger(t, events, "tokens", "create", "--name", name, "--role", role)), "\n")
	return lines[len(lines)-1]
}

func authorization(token string) []string { return []string{"Authorization", "Bearer " + token} }

// within polls ok every 20 ms until it holds, and fails the test if that takes over limit.
func within(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestTokensEndToEnd: a server in open mode leaves it within 2 s of the CLI creating the first
// token; tokens the CLI created work over HTTP with their roles; the events name the token as
// their actor whatever X-Actor says; a viewer gets personal data as null; a token revoked by
// the CLI is refused within 2 s.
func TestTokensEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		if ready := srv.expect(t, http.StatusOK, "GET", "/readyz", nil); ready["auth"] != "open" {
			t.Fatalf("/readyz auth = %v before any token, want open", ready["auth"])
		}
		srv.expect(t, http.StatusOK, "GET", "/v1/orders", nil)

		admin := newToken(t, events, "ops", "admin")
		clerk := newToken(t, events, "till-3", "clerk")
		viewer := newToken(t, events, "wallboard", "viewer")
		if !strings.HasPrefix(admin, "olt_") || len(admin) < 4+22 {
			t.Fatalf("secret %q", admin)
		}
		took := within(t, 2*time.Second, "open mode ends", func() bool {
			return srv.do(t, "GET", "/v1/orders", nil).status == http.StatusUnauthorized
		})
		t.Logf("open mode ended %s after the CLI created the tokens", took.Round(time.Millisecond))
		// The registry applies the token stream in order: the last token in force means all are.
		took = within(t, 2*time.Second, "the tokens take effect", func() bool {
			return srv.do(t, "GET", "/v1/orders", nil, authorization(viewer)...).status == http.StatusOK
		})
		t.Logf("the CLI's tokens were in force %s after it created them", took.Round(time.Millisecond))
		resp := srv.do(t, "GET", "/v1/orders", nil)
		if resp.header.Get("WWW-Authenticate") != "Bearer" || !strings.Contains(string(resp.body), `"code":"unauthenticated"`) {
			t.Fatalf("no token: %d %v %s", resp.status, resp.header, resp.body)
		}
		if ready := srv.expect(t, http.StatusOK, "GET", "/readyz", nil); ready["auth"] != "tokens" {
			t.Fatalf("/readyz auth = %v with tokens, want tokens", ready["auth"])
		}
		srv.expect(t, http.StatusOK, "GET", "/healthz", nil)

		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 10}, authorization(admin)...)
		srv.expect(t, http.StatusForbidden, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 10}, authorization(clerk)...)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers",
			map[string]any{"customer_id": "C-1", "name": "Ann Lee", "email": "ann@example.com", "phone": "+1 555 0100"},
			append(authorization(clerk), "X-Actor", "mallory")...)
		placed := srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": "O-1", "customer_id": "C-1",
			"channel": "web", "currency": "EUR", "shipping_address": "1 Main St", "lines": []any{map[string]any{"sku": "SKU-1", "quantity": 1, "unit_price": 500}}},
			append(authorization(clerk), "X-Actor", "mallory")...)
		srv.expect(t, http.StatusForbidden, "POST", "/v1/customers", map[string]any{"name": "X", "email": "x@example.com"}, authorization(viewer)...)

		history := srv.expect(t, http.StatusOK, "GET", "/v1/orders/O-1/history", nil, authorization(clerk)...)
		events0 := history["events"].([]any)[0].(map[string]any)
		if events0["type"] != "OrderPlaced.v1" || events0["actor"] != "till-3" {
			t.Fatalf("the order's first event: %v, want OrderPlaced.v1 by till-3", events0)
		}
		store := openStore(t, events)
		registered, err := store.ReadStream(t.Context(), "customer-C-1", 0, 1)
		if err != nil || len(registered) != 1 || registered[0].Metadata.Actor != "till-3" {
			t.Fatalf("customer-C-1: %+v, %v; want its event by till-3", registered, err)
		}

		after := "?after=" + placed["position"].(string)
		for _, path := range []string{"/v1/customers" + after, "/v1/customers/C-1" + after} {
			seen := string(srv.do(t, "GET", path, nil, authorization(viewer)...).body)
			full := string(srv.do(t, "GET", path, nil, authorization(admin)...).body)
			if strings.Contains(seen, "Ann Lee") || strings.Contains(seen, "ann@example.com") || strings.Contains(seen, "555") ||
				!strings.Contains(seen, `"name":null`) || !strings.Contains(full, "Ann Lee") {
				t.Errorf("GET %s: the viewer sees %s; the admin %s", path, seen, full)
			}
		}

		orderledger(t, events, "tokens", "revoke", "--name", "till-3")
		took = within(t, 2*time.Second, "revocation", func() bool {
			return srv.do(t, "GET", "/v1/orders/O-1", nil, authorization(clerk)...).status == http.StatusUnauthorized
		})
		t.Logf("a token revoked by the CLI was refused %s later", took.Round(time.Millisecond))
		list := orderledger(t, events, "tokens", "list")
		if !strings.Contains(list, "till-3") || !strings.Contains(list, "cli:") {
			t.Errorf("tokens list:\n%s", list)
		}
		tokens := srv.expect(t, http.StatusOK, "GET", "/v1/tokens", nil, authorization(admin)...)["items"].([]any)
		for _, item := range tokens {
			tok := item.(map[string]any)
			if (tok["name"] == "till-3") == (tok["revoked_at"] == nil) {
				t.Errorf("GET /v1/tokens: %v", tok)
			}
		}
	})
}
