package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Sizes of TestReadAfterWrite's load.
const (
	afterClients = 6
	afterRounds  = 25
)

// TestReadAfterWrite has several clients write at once — orders, payments, stock receipts,
// changes of customer details — and after every single write read the route that shows it
// with ?after=<the position the write answered>: the answer must include that write. A
// position no write has reached yet must answer 504 once the wait times out.
func TestReadAfterWrite(t *testing.T) {
	doc := loadOpenAPI(t)
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		for c := range afterClients {
			srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": fmt.Sprintf("A-C%d", c), "name": "Ann", "email": "ann@example.com"})
			srv.expect(t, http.StatusOK, "POST", fmt.Sprintf("/v1/inventory/A-S%d/receipts", c), map[string]any{"quantity": 1000})
		}
		var (
			wg     sync.WaitGroup
			checks atomic.Int64
		)
		// One read that waits for a position far ahead, while the load runs: the only such
		// check, as each one takes the whole timeout.
		wg.Go(func() {
			const path = "/v1/ledger/trial-balance?after=999999999999-999999999999"
			resp, err := srv.send(t.Context(), "GET", path, nil)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				return
			}
			if resp.status != http.StatusGatewayTimeout {
				t.Errorf("GET %s: status %d, want 504: %s", path, resp.status, resp.body)
				return
			}
			checkProblem(t, resp, http.StatusGatewayTimeout, "timeout", "999999999999-999999999999")
			doc.checkDocumented(t, "GET", path, http.StatusGatewayTimeout, "timeout")
		})
		for c := range afterClients {
			wg.Go(func() { afterClient(t, srv, c, &checks) })
		}
		wg.Wait()
		if want := int64(afterClients * afterRounds * 6); checks.Load() < want {
			t.Errorf("%d reads after writes checked, want at least %d", checks.Load(), want)
		}
		t.Logf("%d reads with ?after= checked, each showed its write", checks.Load())
	})
}

// afterClient is client c of TestReadAfterWrite. It owns customer A-C<c> and SKU A-S<c>, so
// it knows exactly what the documents it reads must say.
func afterClient(t *testing.T, srv *server, c int, checks *atomic.Int64) {
	customer, sku := fmt.Sprintf("A-C%d", c), fmt.Sprintf("A-S%d", c)
	onHand := int64(1000)
	// write sends a request that must answer status and returns the answer and its position.
	write := func(status int, method, path string, body any) (map[string]any, string, bool) {
		resp, err := srv.send(t.Context(), method, path, body)
		if err != nil || resp.status != status {
			t.Errorf("%s %s: %v status %d, want %d: %s", method, path, err, resp.status, status, resp.body)
			return nil, "", false
		}
		var answer map[string]any
		if err := json.Unmarshal(resp.body, &answer); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return nil, "", false
		}
		pos, _ := answer["position"].(string)
		return answer, pos, true
	}
	// read makes a GET with ?after= that must answer 200 and checks the document with check,
	// which says what is missing from it.
	read := func(path, pos string, doc any, check func() string) {
		url := path + "?after=" + pos
		if strings.Contains(path, "?") {
			url = path + "&after=" + pos
		}
		resp, err := srv.send(t.Context(), "GET", url, nil)
		if err != nil || resp.status != http.StatusOK {
			t.Errorf("GET %s: %v status %d, want 200: %s", url, err, resp.status, resp.body)
			return
		}
		if err := json.Unmarshal(resp.body, doc); err != nil {
			t.Errorf("GET %s: %v: %s", url, err, resp.body)
			return
		}
		if missing := check(); missing != "" {
			t.Errorf("GET %s does not show the write it waited for: %s: %s", url, missing, resp.body)
		}
		checks.Add(1)
	}
	for i := range afterRounds {
		id := fmt.Sprintf("A-O%d-%d", c, i)
		quantity, price := int64(1+i%3), int64(100+i)
		total := quantity*price + roundHalfUp(quantity*price, 1000)
		_, pos, ok := write(http.StatusCreated, "POST", "/v1/orders", map[string]any{
			"order_id": id, "customer_id": customer, "channel": []string{"web", "store", "phone"}[i%3], "currency": "EUR", "tax_rate_bps": 1000,
			"lines": []any{map[string]any{"sku": sku, "quantity": quantity, "unit_price": price}},
		})
		if !ok {
			return
		}
		var order struct {
			OrderID     string `json:"order_id"`
			Total, Paid int64
		}
		read("/v1/orders/"+id, pos, &order, func() string {
			if order.OrderID != id || order.Total != total {
				return fmt.Sprintf("order %s with total %d", id, total)
			}
			return ""
		})
		var profile struct {
			OrderCount int64 `json:"order_count"`
			Email      string
		}
		read("/v1/customers/"+customer, pos, &profile, func() string {
			if profile.OrderCount != int64(i+1) {
				return fmt.Sprintf("order_count %d", i+1)
			}
			return ""
		})
		// Other clients' orders count too, so this client's are a lower bound.
		var summary struct{ Orders int64 }
		read("/v1/sales/summary", pos, &summary, func() string {
			if summary.Orders < int64(i+1) {
				return fmt.Sprintf("at least %d orders", i+1)
			}
			return ""
		})

		answer, pos, ok := write(http.StatusOK, "POST", "/v1/orders/"+id+"/payments", map[string]any{"amount": 50, "method": "card"})
		if !ok {
			return
		}
		paymentID, _ := answer["payment_id"].(string)
		read("/v1/orders/"+id, pos, &order, func() string {
			if order.Paid != 50 {
				return "paid 50"
			}
			return ""
		})
		// The history reads the event store itself: the write is there once answered.
		var history struct {
			Events []struct {
				Type string
				Data struct {
					PaymentID string `json:"payment_id"`
				}
			}
		}
		read("/v1/orders/"+id+"/history", pos, &history, func() string {
			for _, e := range history.Events {
				if e.Type == "PaymentReceived.v1" && e.Data.PaymentID == paymentID {
					return ""
				}
			}
			return "the payment " + paymentID
		})
		var entries struct {
			Items []struct{ Kind, Document string }
		}
		read("/v1/ledger/entries?order_id="+id, pos, &entries, func() string {
			for _, e := range entries.Items {
				if e.Kind == "payment" && e.Document == paymentID {
					return ""
				}
			}
			return "the payment's ledger entry " + paymentID
		})

		if i%3 == 0 {
			_, pos, ok := write(http.StatusOK, "POST", "/v1/inventory/"+sku+"/receipts", map[string]any{"quantity": 5})
			if !ok {
				return
			}
			onHand += 5
			var level struct {
				OnHand int64 `json:"on_hand"`
			}
			// Nothing ships, so on hand is exactly what was received.
			read("/v1/inventory/"+sku, pos, &level, func() string {
				if level.OnHand != onHand {
					return fmt.Sprintf("on_hand %d", onHand)
				}
				return ""
			})
		}
		if i%5 == 0 {
			email := fmt.Sprintf("c%d-%d@example.com", c, i)
			_, pos, ok := write(http.StatusOK, "PUT", "/v1/customers/"+customer, map[string]any{"email": email})
			if !ok {
				return
			}
			read("/v1/customers/"+customer, pos, &profile, func() string {
				if profile.Email != email {
					return "email " + email
				}
				return ""
			})
		}
	}
}
