package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// TestConcurrentOrders places 50 orders for one customer and one SKU at once: every one is
// accepted (their streams are distinct, so nothing may conflict), and each is stored once.
func TestConcurrentOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "K-C1", "name": "Ann", "email": "ann@example.com"})
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/K-S1/receipts", map[string]any{"quantity": 1000})

		const orders = 50
		answers := make([]response, orders)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range orders {
			wg.Go(func() {
				body := map[string]any{"customer_id": "K-C1", "channel": "web", "currency": "EUR",
					"lines": []any{map[string]any{"sku": "K-S1", "quantity": 1 + i%3, "unit_price": 100 * (i + 1)}}}
				if i%2 == 0 { // half choose their ID, half have one generated
					body["order_id"] = fmt.Sprintf("K-O%02d", i)
				}
				<-start
				resp, err := srv.send(t.Context(), "POST", "/v1/orders", body)
				if err != nil {
					t.Errorf("order %d: %v", i, err)
				}
				answers[i] = resp
			})
		}
		close(start)
		wg.Wait()

		var ids []string
		for i, a := range answers {
			if a.status != http.StatusCreated {
				t.Errorf("order %d: status %d, want 201: %s", i, a.status, a.body)
				continue
			}
			id, _ := a.object(t)["order_id"].(string)
			if i%2 == 0 && id != fmt.Sprintf("K-O%02d", i) {
				t.Errorf("order %d: order_id %q, want K-O%02d", i, id, i)
			}
			ids = append(ids, id)
			placed := eventsOfType[orderPlaced](t, readStream(t, store, "order-"+id), "OrderPlaced.v1")
			if len(placed) != 1 || placed[0].Subtotal != int64((1+i%3)*100*(i+1)) {
				t.Errorf("order %d (%s): OrderPlaced %+v, want one with subtotal %d", i, id, placed, (1+i%3)*100*(i+1))
			}
		}
		slices.Sort(ids)
		if len(slices.Compact(ids)) != orders {
			t.Errorf("%d distinct order IDs for %d orders", len(slices.Compact(ids)), orders)
		}
		checkLog(t, srv, store)
	})
}

// attempt is one request of the crash burst and what became of it.
type attempt struct {
	kind         string // order, payment or receipt
	method, path string
	body         []byte
	key          string
	orderID      string // order: the order placed; payment: the order paid
	sku          string // receipt
	reference    string // payment, receipt: unique, to find the event
	answered     bool   // a response came back before the process died
	status       int
	answer       []byte
}

// crashBurst describes the burst TestCrashMidBurst kills the server in.
const (
	crashWorkers = 8
	// crashAfter acknowledged writes the process is killed, with every worker still sending.
	crashAfter = 300
)

// TestCrashMidBurst kills the binary with SIGKILL in the middle of a burst of concurrent
// writes, then checks the store and the restarted service: every acknowledged write is
// there; nothing is half-written (every order stream begins with a whole OrderPlaced that is
// the request sent, every chain recomputes, no stream has a gap); and a retry of every
// request under its Idempotency-Key answers what was answered before or, for a request that
// got no answer, completes it without appending anything twice.
func TestCrashMidBurst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		for i := range 4 {
			srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": fmt.Sprintf("X-C%d", i), "name": "Ann", "email": "ann@example.com"})
			srv.expect(t, http.StatusOK, "POST", fmt.Sprintf("/v1/inventory/X-S%d/receipts", i), map[string]any{"quantity": 1_000_000})
		}

		var (
			mu       sync.Mutex
			attempts []*attempt
			acked    atomic.Int64
		)
		ctx, stopBurst := context.WithCancel(t.Context())
		defer stopBurst()
		var wg sync.WaitGroup
		for w := range crashWorkers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 42))
				lastOrder := ""
				for i := 0; ctx.Err() == nil; i++ {
					a := nextAttempt(rng, w, i, lastOrder)
					resp, err := srv.send(ctx, a.method, a.path, a.body, "Idempotency-Key", a.key)
					if err == nil {
						a.answered, a.status, a.answer = true, resp.status, resp.body
					}
					mu.Lock()
					attempts = append(attempts, a)
					mu.Unlock()
					if err != nil {
						return // the server is gone
					}
					if a.status/100 == 2 {
						acked.Add(1)
						if a.kind == "order" {
							lastOrder = a.orderID
						}
					}
				}
			})
		}
		if !waitFor(2*time.Minute, func() bool { return acked.Load() >= crashAfter }) {
			t.Fatalf("only %d writes acknowledged in 2 minutes", acked.Load())
		}
		srv.kill(t)
		wg.Wait()

		inFlight := 0
		for _, a := range attempts {
			switch {
			case !a.answered:
				inFlight++
			case a.status/100 != 2:
				t.Errorf("%s %s answered %d before the crash: %s", a.method, a.path, a.status, a.answer)
			}
		}
		t.Logf("killed after %d acknowledged writes; %d requests were in flight", acked.Load(), inFlight)

		srv = startServer(t, events)
		stored := checkBurst(t, checkLog(t, srv, store), attempts, false)
		t.Logf("%d of the requests in flight had been stored when the process died", stored)

		// Retry every request under its key, as a client that lost its connection would.
		for _, a := range attempts {
			resp := srv.do(t, a.method, a.path, a.body, "Idempotency-Key", a.key)
			switch {
			case a.answered && (resp.status != a.status || !bytes.Equal(resp.body, a.answer)):
				t.Errorf("retry of %s %s: %d %s, answered %d %s before the crash", a.method, a.path, resp.status, resp.body, a.status, a.answer)
			case !a.answered && resp.status/100 != 2:
				t.Errorf("retry of %s %s, in flight at the crash: %d %s", a.method, a.path, resp.status, resp.body)
			}
			a.answered, a.status, a.answer = true, resp.status, resp.body
		}
		checkBurst(t, checkLog(t, srv, store), attempts, true)
		if report := srv.expect(t, http.StatusOK, "GET", "/v1/audit/verify", nil); report["ok"] != true {
			t.Errorf("GET /v1/audit/verify after the crash: %v", report)
		}
	})
}

// nextAttempt is worker w's i-th request: mostly orders, then payments of 1 cent on the
// worker's last acknowledged order and stock receipts, each under its own key.
func nextAttempt(rng *rand.Rand, w, i int, lastOrder string) *attempt {
	id := fmt.Sprintf("X-w%d-%d", w, i)
	switch {
	case i%4 == 3:
		sku := fmt.Sprintf("X-S%d", rng.IntN(4))
		a := &attempt{kind: "receipt", method: "POST", path: "/v1/inventory/" + sku + "/receipts", key: "crash-" + id, sku: sku, reference: "R-" + id}
		a.body, _ = json.Marshal(map[string]any{"quantity": 1 + rng.IntN(5), "reference": a.reference})
		return a
	case i%4 == 2 && lastOrder != "":
		a := &attempt{kind: "payment", method: "POST", path: "/v1/orders/" + lastOrder + "/payments", key: "crash-" + id, orderID: lastOrder, reference: "P-" + id}
		a.body, _ = json.Marshal(map[string]any{"amount": 1, "method": "card", "reference": a.reference})
		return a
	}
	var lines []orderLine
	for _, s := range rng.Perm(4)[:1+rng.IntN(3)] {
		lines = append(lines, orderLine{SKU: fmt.Sprintf("X-S%d", s), Quantity: int64(1 + rng.IntN(3)), UnitPrice: int64(100 + rng.IntN(10000))})
	}
	a := &attempt{kind: "order", method: "POST", path: "/v1/orders", key: "crash-" + id, orderID: id}
	a.body, _ = json.Marshal(map[string]any{
		"order_id": id, "customer_id": fmt.Sprintf("X-C%d", w%4), "channel": []string{"web", "store", "phone"}[rng.IntN(3)],
		"currency": "EUR", "lines": lines, "tax_rate_bps": rng.IntN(2500),
	})
	return a
}

// checkBurst checks the burst's requests against the log: a write that was acknowledged is
// stored exactly once; one whose outcome is unknown at most once; an order is stored whole,
// as sent; no order exists that was not asked for. complete says every request has been
// acknowledged by now. It returns how many requests without an answer are stored.
func checkBurst(t *testing.T, streams map[string][]eventstore.Event, attempts []*attempt, complete bool) (storedUnanswered int) {
	t.Helper()
	asked := map[string]bool{}
	for _, a := range attempts {
		acked := a.answered && a.status/100 == 2
		if complete && !acked {
			t.Errorf("%s %s (key %s) is still not acknowledged", a.method, a.path, a.key)
		}
		var found int
		switch a.kind {
		case "order":
			asked["order-"+a.orderID] = true
			stream := streams["order-"+a.orderID]
			placed := eventsOfType[orderPlaced](t, stream, "OrderPlaced.v1")
			found = len(placed)
			if found == 0 {
				break
			}
			if stream[0].Type != "OrderPlaced.v1" {
				t.Errorf("order-%s begins with %s, not OrderPlaced.v1", a.orderID, stream[0].Type)
			}
			var sent orderPlaced
			if err := json.Unmarshal(a.body, &sent); err != nil {
				t.Fatal(err)
			}
			got := placed[0]
			if got.OrderID != sent.OrderID || got.CustomerID != sent.CustomerID || got.Channel != sent.Channel ||
				got.Currency != sent.Currency || got.TaxRateBps != sent.TaxRateBps || !slices.Equal(got.Lines, sent.Lines) {
				t.Errorf("order-%s holds %+v, the request sent %+v", a.orderID, got, sent)
			}
			if stream[0].Metadata.IdempotencyKey != a.key {
				t.Errorf("order-%s was placed under key %q, sent under %q", a.orderID, stream[0].Metadata.IdempotencyKey, a.key)
			}
		case "payment":
			var paymentID string
			for _, p := range eventsOfType[paymentReceived](t, streams["order-"+a.orderID], "PaymentReceived.v1") {
				if p.Reference == a.reference {
					found++
					paymentID = p.PaymentID
				}
			}
			if acked && found == 1 {
				var answer struct {
					PaymentID string `json:"payment_id"`
				}
				if err := json.Unmarshal(a.answer, &answer); err != nil || answer.PaymentID != paymentID {
					t.Errorf("payment %s: answered %s, stored payment_id %s", a.reference, a.answer, paymentID)
				}
			}
		case "receipt":
			for _, r := range eventsOfType[stockReceived](t, streams["stock-"+a.sku], "StockReceived.v1") {
				if r.Reference == a.reference {
					found++
				}
			}
		}
		if !a.answered && found == 1 {
			storedUnanswered++
		}
		switch {
		case acked && found != 1:
			t.Errorf("%s %s (key %s) was acknowledged and is stored %d times", a.method, a.path, a.key, found)
		case found > 1:
			t.Errorf("%s %s (key %s) is stored %d times", a.method, a.path, a.key, found)
		}
	}
	for name := range streams {
		if strings.HasPrefix(name, "order-X-") && !asked[name] {
			t.Errorf("stream %s exists but no such order was asked for", name)
		}
	}
	return storedUnanswered
}
