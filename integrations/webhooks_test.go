package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/follow"
)

// jumpClock is a Clock whose Sleep returns at once, moving Now on by the wait: a test crosses
// 24 h of retries in moments. It records every wait.
type jumpClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	time.Sleep(time.Millisecond)
	return ctx.Err()
}

func (c *jumpClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// webhookFixture is an event store, the webhooks' API on a test server, and a running
// deliverer.
type webhookFixture struct {
	events    eventstore.Store
	api       *httptest.Server
	deliverer *Deliverer
}

func newWebhookFixture(t *testing.T, clock Clock) *webhookFixture {
	t.Helper()
	dir := t.TempDir()
	events, err := sqlite.Open(t.Context(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	leases, err := follow.Open(t.Context(), "sqlite:"+filepath.Join(dir, "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leases.Close() })
	w, err := OpenWebhooks(t.Context(), events, leases, false)
	if err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	w.RegisterReads(router)
	w.RegisterWrites(router)
	api := httptest.NewServer(router)
	t.Cleanup(api.Close)
	d := NewDeliverer(events, w, WithClock(clock), WithPoll(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &webhookFixture{events: events, api: api, deliverer: d}
}

func (f *webhookFixture) call(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		reader = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.api.URL+path, reader)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *webhookFixture) place(t *testing.T, id string) eventstore.Position {
	t.Helper()
	typ, data, _ := domain.EncodeEvent(domain.OrderPlaced{OrderID: id, CustomerID: "C1", Channel: "web", Currency: "EUR", PlacedAt: time.Now().UTC()})
	res, err := f.events.Append(t.Context(), domain.OrderStream(id), eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

func (f *webhookFixture) waitHook(t *testing.T, id, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	// Generous: crossing 24 h takes some 300 attempts, each a request and a synced write.
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, doc := f.call(t, "GET", "/v1/webhooks/"+id, nil)
		if cond(doc) {
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s: %s did not happen within 90 s: %v", id, what, doc)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhookFailsAfter24HoursThenResumes: an event that keeps failing is retried after 1 s,
// doubling up to 5 min, the next event waits behind it, and after 24 h the webhook is failing
// and stops; resumed, it delivers both, in order.
func TestWebhookFailsAfter24HoursThenResumes(t *testing.T) {
	clock := &jumpClock{now: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)}
	f := newWebhookFixture(t, clock)
	var (
		mu        sync.Mutex
		up        bool
		attempted []string
		delivered []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempted = append(attempted, r.Header.Get("Orderledger-Position"))
		if !up {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered = append(delivered, r.Header.Get("Orderledger-Position"))
	}))
	defer receiver.Close()

	status, hook := f.call(t, "POST", "/v1/webhooks", map[string]any{"url": receiver.URL, "types": []string{"OrderPlaced.v1"}})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks: %d %v", status, hook)
	}
	id := hook["webhook_id"].(string)
	first, second := f.place(t, "O1"), f.place(t, "O2")

	doc := f.waitHook(t, id, "failing", func(d map[string]any) bool { return d["status"] == StatusFailing })
	waits := clock.recorded()
	var total time.Duration
	for i, w := range waits {
		want := min(time.Second<<i, RetryMax)
		if i >= 10 {
			want = RetryMax
		}
		if w != want {
			t.Fatalf("wait %d after a failure is %s, want %s (waits %v)", i+1, w, want, waits[:i+1])
		}
		total += w
	}
	// The attempt after the wait that crosses 24 h is the last.
	if total < GiveUpAfter || total >= GiveUpAfter+RetryMax {
		t.Errorf("the webhook failed after %s of waits, want 24 h and at most one more wait", total)
	}
	if doc["last_error"] != "answered 500" || doc["position"] != hook["position"] || doc["failing_since"] != "2026-01-05T10:00:00Z" {
		t.Errorf("the failing webhook: %v", doc)
	}
	mu.Lock()
	for _, p := range attempted {
		if p != first.String() {
			t.Errorf("an attempt at %s while %s was failing", p, first)
		}
	}
	n := len(attempted)
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(attempted) != n {
		t.Errorf("%d more attempts after the webhook was failing", len(attempted)-n)
	}
	up = true
	mu.Unlock()

	if status, _ := f.call(t, "POST", "/v1/webhooks/"+id+"/resume", nil); status != http.StatusOK {
		t.Fatalf("resume: %d", status)
	}
	f.waitHook(t, id, "both events delivered", func(d map[string]any) bool {
		p, err := eventstore.ParsePosition(fmt.Sprint(d["position"]))
		return err == nil && p.Compare(second) >= 0
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(delivered) != fmt.Sprint([]string{first.String(), second.String()}) {
		t.Errorf("delivered %v, want %s then %s", delivered, first, second)
	}
}

func TestWebhookDefinitionsAreChecked(t *testing.T) {
	f := newWebhookFixture(t, realClock{})
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"url": "ftp://example.com/x"}, "url"},
		{map[string]any{"url": "javascript:alert(1)"}, "url"},
		{map[string]any{"url": "file:///etc/passwd"}, "url"},
		{map[string]any{"url": "http://"}, "url"},
		{map[string]any{"url": ""}, "url"},
		{map[string]any{"url": "https://example.com/a b"}, "url"},
		{map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2048)}, "url"},
		{map[string]any{"types": []string{"OrderPlaced.v1"}}, "url"},
		{map[string]any{"url": "https://example.com", "types": []string{"Nope.v1"}}, "types[0]"},
		{map[string]any{"url": "https://example.com", "types": []string{}}, "types"},
		{map[string]any{"url": "https://example.com", "types": []string{"OrderPlaced.v1", "OrderPlaced.v1"}}, "types[1]"},
		{map[string]any{"url": "https://example.com", "secret": "mine"}, "secret"},
	} {
		status, problem := f.call(t, "POST", "/v1/webhooks", c.body)
		if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(problem["detail"]), c.field) {
			t.Errorf("POST %v: %d %v, want 400 naming %s", c.body, status, problem["detail"], c.field)
		}
	}
	if status, list := f.call(t, "GET", "/v1/webhooks", nil); status != http.StatusOK || len(list["items"].([]any)) != 0 {
		t.Errorf("refused definitions left webhooks behind: %d %v", status, list)
	}

	// An Idempotency-Key retry answers the same webhook and secret; another body under it is a 422.
	body := map[string]any{"url": "https://example.com/hook"}
	_, a := f.call(t, "POST", "/v1/webhooks", body, "Idempotency-Key", "k1")
	status, b := f.call(t, "POST", "/v1/webhooks", body, "Idempotency-Key", "k1")
	if status != http.StatusCreated || a["webhook_id"] != b["webhook_id"] || a["secret"] != b["secret"] || a["position"] != b["position"] {
		t.Errorf("retry under the same key: %d %v, first %v", status, b, a)
	}
	if status, _ := f.call(t, "POST", "/v1/webhooks", map[string]any{"url": "https://example.com/other"}, "Idempotency-Key", "k1"); status != http.StatusUnprocessableEntity {
		t.Errorf("another body under the same key: %d, want 422", status)
	}
	_, c := f.call(t, "POST", "/v1/webhooks", body)
	if c["secret"] == a["secret"] || c["webhook_id"] == a["webhook_id"] {
		t.Errorf("two webhooks share an id or a secret: %v %v", a, c)
	}
	for _, path := range []string{"/v1/webhooks/nope", "/v1/webhooks/" + uuid.NewString()} {
		if status, _ := f.call(t, "GET", path, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
		if status, _ := f.call(t, "DELETE", path, nil); status != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", path, status)
		}
		if status, _ := f.call(t, "POST", path+"/resume", nil); status != http.StatusNotFound {
			t.Errorf("POST %s/resume: %d, want 404", path, status)
		}
	}
	id := a["webhook_id"].(string)
	if status, _ := f.call(t, "DELETE", "/v1/webhooks/"+id, nil); status != http.StatusOK {
		t.Errorf("DELETE: %d", status)
	}
	if status, _ := f.call(t, "DELETE", "/v1/webhooks/"+id, nil); status != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", status)
	}
}

// TestWebhookReceiverLimits: a redirect is not followed (it is a failure), an endless answer
// is read only in part, and a receiver that does not answer in time is a failure.
func TestWebhookReceiverLimits(t *testing.T) {
	f := newWebhookFixture(t, &jumpClock{now: time.Now()})
	f.deliverer.client.Timeout = 300 * time.Millisecond // the 10 s of the contract, shortened
	var mu sync.Mutex
	followed, sent := false, 0
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		followed = true
		mu.Unlock()
	}))
	defer elsewhere.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
		case "/endless":
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for range 1000 { // 32 MB, unless the deliverer hangs up first
				if _, err := w.Write(chunk); err != nil {
					break
				}
				mu.Lock()
				sent += len(chunk)
				mu.Unlock()
			}
		case "/slow":
			time.Sleep(3 * time.Second)
		}
	}))
	defer receiver.Close()
	hooks := map[string]string{}
	for _, path := range []string{"/redirect", "/endless", "/slow"} {
		_, h := f.call(t, "POST", "/v1/webhooks", map[string]any{"url": receiver.URL + path})
		hooks[path] = h["webhook_id"].(string)
	}
	placed := f.place(t, "O1")
	f.waitHook(t, hooks["/redirect"], "a failed attempt", func(d map[string]any) bool {
		return strings.Contains(fmt.Sprint(d["last_error"]), "answered 307; redirects are not followed")
	})
	f.waitHook(t, hooks["/endless"], "delivery", func(d map[string]any) bool { return d["position"] == placed.String() })
	f.waitHook(t, hooks["/slow"], "a timeout", func(d map[string]any) bool {
		return strings.Contains(fmt.Sprint(d["last_error"]), "Timeout") && d["position"] != placed.String()
	})
	mu.Lock()
	defer mu.Unlock()
	if followed {
		t.Error("the deliverer followed a redirect")
	}
	if sent >= 32<<20 {
		t.Errorf("the deliverer read the whole 32 MB answer")
	}
}
