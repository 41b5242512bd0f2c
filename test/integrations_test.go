package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// receiver is a webhook receiver as a user would write one, here in the test: it checks every
// request's signature with its own HMAC, fails the first requests it gets, and can be told to
// hold a request until released (so the server can be killed with a delivery in flight).
type receiver struct {
	secret string

	mu        sync.Mutex
	failFirst int      // answer 503 to this many requests
	requests  int      // every request
	badSigs   []string // requests whose signature did not verify
	got       []delivery
	hold      chan struct{} // when set, the next request waits for it to close
	holding   chan struct{} // closed when a request is held
}

// delivery is one request the receiver processed (answered 2xx, or held until released).
type delivery struct {
	eventID, position, typ string
	body                   map[string]any
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	if err := rc.verify(r.Header.Get("Orderledger-Signature"), body); err != nil {
		rc.badSigs = append(rc.badSigs, err.Error())
	}
	if rc.failFirst > 0 {
		rc.failFirst--
		rc.mu.Unlock()
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	var msg map[string]any
	_ = json.Unmarshal(body, &msg)
	d := delivery{eventID: r.Header.Get("Orderledger-Event-Id"), position: r.Header.Get("Orderledger-Position"), typ: fmt.Sprint(msg["type"]), body: msg}
	hold, holding := rc.hold, rc.holding
	rc.hold = nil
	// A held delivery counts as processed: the receiver acted on it, but its answer never
	// reaches the server, which dies meanwhile and must deliver it again.
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	if hold != nil {
		close(holding)
		<-hold
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks Orderledger-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
func (rc *receiver) verify(header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature %q: no timestamp", header)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature %q: timestamp %s away", header, d)
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("signature %q does not verify", header)
	}
	return nil
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

var webhookTypes = []string{"OrderPlaced.v1", "OrderInvoiced.v1", "OrderShipped.v1", "OrderCompleted.v1"}

// TestWebhooksAcrossACrash: a receiver on loopback gets every order's placed, invoiced, shipped
// and completed event, signed, in log order, at least once, though its first answers are
// failures and the server is killed with a delivery in flight and restarted.
func TestWebhooksAcrossACrash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		rc := &receiver{failFirst: 3}
		hook := httptest.NewServer(rc)
		defer hook.Close()
		srv := startServer(t, events)
		store := openStore(t, events)

		created := srv.expect(t, http.StatusCreated, "POST", "/v1/webhooks", map[string]any{"url": hook.URL + "/orderledger", "types": webhookTypes})
		id, _ := created["webhook_id"].(string)
		rc.mu.Lock()
		rc.secret, _ = created["secret"].(string)
		rc.mu.Unlock()
		if id == "" || !strings.HasPrefix(rc.secret, "whsec_") {
			t.Fatalf("POST /v1/webhooks answered %v", created)
		}
		if got := srv.expect(t, http.StatusOK, "GET", "/v1/webhooks/"+id, nil); got["secret"] != nil || got["status"] != "active" {
			t.Errorf("GET /v1/webhooks/%s = %v: want it active, without the secret", id, got)
		}

		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "W-C1", "name": "Ann", "email": "ann@example.com"})
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/W-S1/receipts", map[string]any{"quantity": 100})
		place := func(srv *server, n int) string {
			order := fmt.Sprintf("W-O%d", n)
			srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": order, "customer_id": "W-C1", "channel": "web", "currency": "EUR",
				"lines": []any{map[string]any{"sku": "W-S1", "quantity": 1, "unit_price": 1250}}})
			return order
		}
		complete := func(srv *server, order string) {
			eventually(t, order+" confirmed", func() []string {
				resp := srv.do(t, "GET", "/v1/orders/"+order, nil)
				if resp.status != http.StatusOK {
					return []string{fmt.Sprintf("GET /v1/orders/%s: %d", order, resp.status)}
				}
				if doc := resp.object(t); doc["status"] != "confirmed" || doc["invoice_number"] == nil {
					return []string{fmt.Sprintf("status %v, invoice %v", doc["status"], doc["invoice_number"])}
				}
				return nil
			})
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+order+"/shipments", map[string]any{"carrier": "DHL", "tracking_number": "T-" + order})
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+order+"/deliveries", map[string]any{})
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+order+"/payments", map[string]any{"amount": 1250, "method": "card"})
		}
		for n := 1; n <= 3; n++ {
			complete(srv, place(srv, n))
		}
		// Wait for the first orders' events, then hold the next delivery and kill the server
		// while it waits for the answer.
		eventually(t, "the first orders' events delivered", func() []string {
			if n := len(rc.deliveries()); n < 12 {
				return []string{fmt.Sprintf("%d of 12 delivered", n)}
			}
			return nil
		})
		release := make(chan struct{})
		rc.mu.Lock()
		rc.hold, rc.holding = release, make(chan struct{})
		holding := rc.holding
		rc.mu.Unlock()
		fourth := place(srv, 4)
		select {
		case <-holding:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery of the fourth order within 30 s")
		}
		srv.kill(t)
		close(release)
		inFlight := rc.deliveries()[len(rc.deliveries())-1]

		srv = startServer(t, events)
		complete(srv, fourth)
		for n := 5; n <= 6; n++ {
			complete(srv, place(srv, n))
		}

		// Every matching event of the log, in log order.
		var want []eventstore.Event
		eventually(t, "every order's events delivered", func() []string {
			want = want[:0]
			for _, e := range readAllAfter(t, store, eventstore.Position{}) {
				if slices.Contains(webhookTypes, e.Type) {
					want = append(want, e)
				}
			}
			got := map[string]bool{}
			for _, d := range rc.deliveries() {
				got[d.eventID] = true
			}
			var missing []string
			for _, e := range want {
				if !got[e.ID.String()] {
					missing = append(missing, fmt.Sprintf("%s %s/%d at %s", e.Type, e.Stream, e.Version, e.Position))
				}
			}
			if len(want) != 24 {
				missing = append(missing, fmt.Sprintf("the log holds %d matching events, want 24", len(want)))
			}
			return missing
		})
		got := rc.deliveries()
		byID := map[string]eventstore.Event{}
		for _, e := range want {
			byID[e.ID.String()] = e
		}
		var last eventstore.Position
		repeats := 0
		for i, d := range got {
			e, ok := byID[d.eventID]
			if !ok {
				t.Errorf("delivery %d: event %s is not a matching event of the log", i, d.eventID)
				continue
			}
			if d.position != e.Position.String() || d.typ != e.Type || d.body["stream"] != e.Stream || d.body["position"] != e.Position.String() {
				t.Errorf("delivery %d: headers and body (%s %s %v) do not describe event %s %s at %s", i, d.position, d.typ, d.body["stream"], e.Stream, e.Type, e.Position)
			}
			switch c := e.Position.Compare(last); {
			case c > 0:
				last = e.Position
			case c == 0 && d.eventID == inFlight.eventID:
				repeats++ // the delivery in flight at the crash, delivered again
			default:
				t.Errorf("delivery %d: %s at %s after %s: out of log order, or repeated though it was acknowledged", i, d.typ, e.Position, last)
			}
		}
		if repeats > 1 {
			t.Errorf("the delivery in flight at the crash came %d more times", repeats)
		}
		rc.mu.Lock()
		if len(rc.badSigs) > 0 {
			t.Errorf("%d of %d requests had a bad signature: %v", len(rc.badSigs), rc.requests, rc.badSigs[0])
		}
		t.Logf("%d requests, %d processed deliveries of %d events (%d repeated after the crash)", rc.requests, len(got), len(want), repeats)
		rc.mu.Unlock()

		hookDoc := srv.expect(t, http.StatusOK, "GET", "/v1/webhooks/"+id, nil)
		if hookDoc["status"] != "active" || hookDoc["last_error"] != "answered 503" || hookDoc["attempts"] != 0.0 {
			t.Errorf("GET /v1/webhooks/%s = %v: want active, 0 attempts pending, last error answered 503", id, hookDoc)
		}
		if p, err := eventstore.ParsePosition(fmt.Sprint(hookDoc["position"])); err != nil || p.Compare(want[len(want)-1].Position) < 0 {
			t.Errorf("GET /v1/webhooks/%s: position %v, want at least %s", id, hookDoc["position"], want[len(want)-1].Position)
		}

		// The stream resumes exactly after a Last-Event-ID, from the real binary.
		all := readAllAfter(t, store, eventstore.Position{})
		from := all[len(all)/2]
		checkStreamResumes(t, srv, from.Position, all[len(all)/2+1:])

		srv.expect(t, http.StatusOK, "DELETE", "/v1/webhooks/"+id, nil)
		srv.expect(t, http.StatusNotFound, "GET", "/v1/webhooks/"+id, nil)
		if list := srv.expect(t, http.StatusOK, "GET", "/v1/webhooks", nil); len(list["items"].([]any)) != 0 {
			t.Errorf("GET /v1/webhooks after the delete: %v", list)
		}
	})
}

// checkStreamResumes reads GET /v1/stream with Last-Event-ID from and checks it sends exactly
// the events of want, in order, first.
func checkStreamResumes(t *testing.T, srv *server, from eventstore.Position, want []eventstore.Event) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.base+"/v1/stream", nil)
	req.Header.Set("Last-Event-ID", from.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	timer := time.AfterFunc(30*time.Second, func() { resp.Body.Close() })
	defer timer.Stop()
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	i := 0
	var id, event string
	for i < len(want) && scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			var msg map[string]any
			if err := json.Unmarshal([]byte(line[6:]), &msg); err != nil {
				t.Fatalf("stream data %q: %v", line, err)
			}
			e := want[i]
			if id != e.Position.String() || event != e.Type || msg["position"] != id || msg["stream"] != e.Stream || msg["version"] != float64(e.Version) {
				t.Fatalf("stream message %d after %s: id %s event %s data %v, want %s %s %s/%d", i, from, id, event, msg, e.Position, e.Type, e.Stream, e.Version)
			}
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("the stream sent %d of the %d events after %s", i, len(want), from)
	}
}
