package e2e

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// keyed is a request made under an Idempotency-Key and the answer it first got.
type keyed struct {
	method, path string
	body         any
	key          string
	first        response
}

// replay sends k again (with a correlation ID of its own) and fails the test unless the
// answer is the first one, byte for byte, marked as replayed, and nothing was appended.
func (k keyed) replay(t *testing.T, srv *server, store eventstore.Store) {
	t.Helper()
	correlation := "replay-" + uuid.NewString()
	from := head(t, store)
	got := srv.do(t, k.method, k.path, k.body, "Idempotency-Key", k.key, "X-Correlation-ID", correlation)
	if got.status != k.first.status || !bytes.Equal(got.body, k.first.body) {
		t.Errorf("replay of %s %s (key %s): %d %s, first answer %d %s", k.method, k.path, k.key, got.status, got.body, k.first.status, k.first.body)
	}
	if got.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of %s %s (key %s) is not marked Idempotent-Replayed: true", k.method, k.path, k.key)
	}
	if ct := got.header.Get("Content-Type"); ct != k.first.header.Get("Content-Type") {
		t.Errorf("replay of %s %s: Content-Type %q, first %q", k.method, k.path, ct, k.first.header.Get("Content-Type"))
	}
	assertNothingAppended(t, srv, store, from, correlation)
}

// send makes k's request for the first time and keeps the answer, which must have status.
func (k *keyed) send(t *testing.T, srv *server, status int) {
	t.Helper()
	k.first = srv.do(t, k.method, k.path, k.body, "Idempotency-Key", k.key)
	if k.first.status != status {
		t.Fatalf("%s %s (key %s): status %d, want %d: %s", k.method, k.path, k.key, k.first.status, status, k.first.body)
	}
}

// TestIdempotencyKeys checks docs/api.md's promise: the same key and body give the same status and
// body and append nothing, also after a restart; the same key with another request is a 422.
func TestIdempotencyKeys(t *testing.T) {
	doc := loadOpenAPI(t)
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "I-C1", "name": "Ann", "email": "ann@example.com"})
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/I-S1/receipts", map[string]any{"quantity": 100})
		order := func(id string) map[string]any {
			o := map[string]any{"customer_id": "I-C1", "channel": "web", "currency": "EUR",
				"lines": []any{map[string]any{"sku": "I-S1", "quantity": 1, "unit_price": 1000}}}
			if id != "" {
				o["order_id"] = id
			}
			return o
		}

		// A created order, its payment, and two refusals by business rules (kept, as a 409
		// is a final answer).
		placed := keyed{method: "POST", path: "/v1/orders", body: order(""), key: "order-" + uuid.NewString()}
		placed.send(t, srv, http.StatusCreated)
		orderID, _ := placed.first.object(t)["order_id"].(string)
		paid := keyed{method: "POST", path: "/v1/orders/" + orderID + "/payments", body: map[string]any{"amount": 400, "method": "card"}, key: "pay-" + uuid.NewString()}
		paid.send(t, srv, http.StatusOK)
		exists := keyed{method: "POST", path: "/v1/orders", body: order(orderID), key: "dup-" + uuid.NewString()}
		exists.send(t, srv, http.StatusConflict)
		overpaid := keyed{method: "POST", path: "/v1/orders/" + orderID + "/payments", body: map[string]any{"amount": 601, "method": "card"}, key: "over-" + uuid.NewString()}
		overpaid.send(t, srv, http.StatusConflict)
		all := []keyed{placed, paid, exists, overpaid}

		for _, k := range all {
			k.replay(t, srv, store)
		}
		placedEvents := eventsOfType[orderPlaced](t, readStream(t, store, "order-"+orderID), "OrderPlaced.v1")
		payments := eventsOfType[paymentReceived](t, readStream(t, store, "order-"+orderID), "PaymentReceived.v1")
		if len(placedEvents) != 1 || len(payments) != 1 || payments[0].PaymentID != paid.first.object(t)["payment_id"] {
			t.Errorf("after replays order %s has %d OrderPlaced and payments %+v, want one of each", orderID, len(placedEvents), payments)
		}

		// The same body written differently is the same request.
		reordered := `{ "lines": [{"unit_price": 1000, "quantity": 1, "sku": "I-S1"}],
			"currency": "EUR", "channel": "web", "customer_id": "I-C1" }`
		keyed{method: "POST", path: "/v1/orders", body: reordered, key: placed.key, first: placed.first}.replay(t, srv, store)

		// The same key with another body, or on another route, is a 422 and changes nothing.
		reuse := func(method, path string, body any, key string) {
			t.Helper()
			correlation := "reuse-" + uuid.NewString()
			from := head(t, store)
			resp := srv.do(t, method, path, body, "Idempotency-Key", key, "X-Correlation-ID", correlation)
			if resp.status != http.StatusUnprocessableEntity {
				t.Fatalf("%s %s reusing key %s: status %d, want 422: %s", method, path, key, resp.status, resp.body)
			}
			checkProblem(t, resp, http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key")
			doc.checkDocumented(t, method, path, http.StatusUnprocessableEntity, "idempotency_key_reused")
			assertNothingAppended(t, srv, store, from, correlation)
		}
		reuse("POST", "/v1/orders", order("I-O-other"), placed.key)
		reuse("POST", paid.path, map[string]any{"amount": 401, "method": "card"}, paid.key)
		reuse("POST", "/v1/orders/"+orderID+"/refunds", map[string]any{"amount": 400}, paid.key)

		// A 400 decided nothing, so its key stays free for the corrected request.
		fixKey := "fix-" + uuid.NewString()
		bad := order("")
		bad["channel"] = "fax"
		srv.expect(t, http.StatusBadRequest, "POST", "/v1/orders", bad, "Idempotency-Key", fixKey)
		srv.expect(t, http.StatusCreated, "POST", "/v1/orders", order(""), "Idempotency-Key", fixKey)

		// Concurrent requests under one key: one order, one answer for all.
		concurrent := keyed{method: "POST", path: "/v1/orders", body: order(""), key: "race-" + uuid.NewString()}
		correlation := "race-" + uuid.NewString()
		answers := make([]response, 10)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				resp, err := srv.send(t.Context(), concurrent.method, concurrent.path, concurrent.body, "Idempotency-Key", concurrent.key, "X-Correlation-ID", correlation)
				if err != nil {
					t.Errorf("concurrent request %d: %v", i, err)
				}
				answers[i] = resp
			})
		}
		wg.Wait()
		for i, a := range answers {
			if a.status != http.StatusCreated || !bytes.Equal(a.body, answers[0].body) {
				t.Errorf("concurrent request %d under one key: %d %s, request 0 got %d %s", i, a.status, a.body, answers[0].status, answers[0].body)
			}
		}
		settle(t, srv, store)
		placedByRace := 0
		for _, e := range readAllAfter(t, store, eventstore.Position{}) {
			if e.Metadata.CorrelationID == correlation && e.Type == "OrderPlaced.v1" {
				placedByRace++
			}
		}
		if placedByRace != 1 {
			t.Errorf("10 concurrent requests under one key placed %d orders, want 1", placedByRace)
		}
		concurrent.first = answers[0]
		all = append(all, concurrent)

		// After a restart every answer is still there, byte for byte.
		srv.stop(t)
		srv = startServer(t, events)
		for _, k := range all {
			k.replay(t, srv, store)
		}
		reuse("POST", "/v1/orders", order("I-O-other"), placed.key)
		checkLog(t, srv, store)
	})
}
