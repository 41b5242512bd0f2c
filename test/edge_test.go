package e2e

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestHTTPEdges checks what every route shares, from outside: HEAD answers as GET without a
// body, a 405 lists the methods in Allow, every answer carries the security headers, and
// /readyz, which anyone may call, names neither the host nor the process.
func TestHTTPEdges(t *testing.T) {
	srv := startServer(t, backends[0].newEvents(t))
	srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "EDGE-C1", "name": "Ann", "email": "ann@example.com"})

	get := srv.do(t, "GET", "/v1/openapi.json", nil)
	head := srv.do(t, "HEAD", "/v1/openapi.json", nil)
	if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("Content-Type") != get.header.Get("Content-Type") {
		t.Errorf("HEAD /v1/openapi.json: %d, %d bytes, Content-Type %q; GET: %d, Content-Type %q",
			head.status, len(head.body), head.header.Get("Content-Type"), get.status, get.header.Get("Content-Type"))
	}
	if head := srv.do(t, "HEAD", "/v1/orders/NOPE", nil); head.status != http.StatusNotFound || len(head.body) != 0 {
		t.Errorf("HEAD of an unknown order: %d, %d bytes; want GET's 404 without a body", head.status, len(head.body))
	}

	for path, allow := range map[string]string{
		"/v1/customers":              "GET, HEAD, POST",
		"/v1/customers/EDGE-C1":      "GET, HEAD, PUT",
		"/v1/orders/EDGE-O1/refunds": "POST",
	} {
		resp := srv.do(t, "DELETE", path, nil)
		if resp.status != http.StatusMethodNotAllowed || resp.header.Get("Allow") != allow {
			t.Errorf("DELETE %s: %d, Allow %q; want 405, Allow %q", path, resp.status, resp.header.Get("Allow"), allow)
		}
	}

	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/customers/EDGE-C1"}, {"GET", "/v1/customers/NOPE"}, {"GET", "/nothing"},
		{"POST", "/v1/customers"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"},
	} {
		resp := srv.do(t, c.method, c.path, `{}`)
		checkSecurityHeaders(t, c.method, c.path, resp.header)
		if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", c.method, c.path, cc)
		}
	}

	ready := string(srv.do(t, "GET", "/readyz", nil).body)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(srv.cmd.Process.Pid)
	if strings.Contains(ready, host) || strings.Contains(ready, ":"+pid+":") || strings.Contains(ready, "holder") {
		t.Errorf("/readyz names the host %q or the process %s: %s", host, pid, ready)
	}
}

// checkSecurityHeaders fails unless an answer carries the headers every answer should.
func checkSecurityHeaders(t testing.TB, method, path string, h http.Header) {
	t.Helper()
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s %s: X-Content-Type-Options %q", method, path, h.Get("X-Content-Type-Options"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("%s %s: Content-Security-Policy %q", method, path, csp)
	}
}
