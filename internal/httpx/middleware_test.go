package httpx

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	r := mux.NewRouter()
	r.HandleFunc("/v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"id": "x"})
	}).Methods(http.MethodGet)
	r.HandleFunc("/v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{})
	}).Methods(http.MethodPut)
	r.HandleFunc("/v1/things/{id}/moves", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{})
	}).Methods(http.MethodPost)
	srv := httptest.NewServer(Instrument(prometheus.NewRegistry(), r, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestMethodNotAllowedListsTheMethodsInAllow(t *testing.T) {
	srv := testServer(t)
	for path, want := range map[string]string{
		"/v1/things/a":       "GET, HEAD, PUT",
		"/v1/things/a/moves": "POST",
	} {
		resp, body := call(t, srv, http.MethodDelete, path)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("DELETE %s: status %d", path, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != want {
			t.Errorf("DELETE %s: Allow %q, want %q", path, got, want)
		}
		if !strings.Contains(string(body), `"code":"method_not_allowed"`) {
			t.Errorf("DELETE %s: body %s", path, body)
		}
	}
}

func TestHeadAnswersAsGetWithoutABody(t *testing.T) {
	srv := testServer(t)
	get, getBody := call(t, srv, http.MethodGet, "/v1/things/a")
	head, headBody := call(t, srv, http.MethodHead, "/v1/things/a")
	if head.StatusCode != http.StatusOK || get.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %d, GET %d; want 200 both", head.StatusCode, get.StatusCode)
	}
	if len(headBody) != 0 || len(getBody) == 0 {
		t.Errorf("HEAD body %q, GET body %q", headBody, getBody)
	}
	if head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
		t.Errorf("HEAD Content-Type %q, GET %q", head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
	}
	// A path that takes no GET takes no HEAD either.
	resp, _ := call(t, srv, http.MethodHead, "/v1/things/a/moves")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("HEAD on a POST route: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	srv := testServer(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/things/a"},        // JSON
		{http.MethodGet, "/nothing"},            // 404 problem
		{http.MethodDelete, "/v1/things/a"},     // 405 problem
		{http.MethodPost, "/v1/things/a/moves"}, // write
	} {
		resp, _ := call(t, srv, c.method, c.path)
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s %s: %s %q, want %q", c.method, c.path, name, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, csp)
		}
	}
}

func TestAProblemEchoesAHugePathOnlyClipped(t *testing.T) {
	srv := testServer(t)
	long := "/" + strings.Repeat("é", 100_000)
	resp, body := call(t, srv, http.MethodGet, long)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(body) > 2*MaxEcho*4+1000 {
		t.Errorf("a 404 for a %d-byte path is %d bytes", len(long), len(body))
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(p.Instance)); n != MaxEcho+1 || !strings.HasSuffix(p.Instance, "…") {
		t.Errorf("instance has %d characters (%q…), want %d and a trailing …", n, p.Instance[:20], MaxEcho+1)
	}
}

func TestClip(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		strings.Repeat("a", MaxEcho):   strings.Repeat("a", MaxEcho),
		strings.Repeat("a", MaxEcho+1): strings.Repeat("a", MaxEcho) + "…",
		strings.Repeat("é", MaxEcho):   strings.Repeat("é", MaxEcho),
		strings.Repeat("é", MaxEcho+5): strings.Repeat("é", MaxEcho) + "…",
	} {
		if got := Clip(in); got != want {
			t.Errorf("Clip(%d bytes) = %d bytes, want %d", len(in), len(got), len(want))
		}
	}
}

// Made-up methods count as one "other": 500 requests with 500 methods add a handful of
// series, not 500, and no label holds a value the client chose.
func TestMetricsLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := mux.NewRouter()
	r.HandleFunc("/v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) {}).Methods(http.MethodGet)
	h := Instrument(reg, r, slog.New(slog.DiscardHandler))
	for i := range 500 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("M"+strings.Repeat("X", i%40)+string(rune('A'+i%26)), "/v1/things/"+strings.Repeat("y", i), nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/things/a", nil))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					if l.GetValue() != "other" && l.GetValue() != "GET" {
						t.Errorf("%s has method %q", f.GetName(), l.GetValue())
					}
				case "route":
					if l.GetValue() != "unmatched" && l.GetValue() != "/v1/things/{id}" {
						t.Errorf("%s has route %q", f.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	if series > 6 {
		t.Errorf("%d series after 500 made-up methods", series)
	}
}
