package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/openapi"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// positions checks the position every successful write answers: a well-formed token that
// moves forward from one sequential write to the next.
type positions struct {
	last eventstore.Position
}

func (p *positions) next(t testing.TB, answer map[string]any) eventstore.Position {
	t.Helper()
	s, _ := answer["position"].(string)
	pos, err := eventstore.ParsePosition(s)
	if err != nil {
		t.Fatalf("answer %v: position: %v", answer, err)
	}
	if pos.Compare(p.last) <= 0 {
		t.Errorf("position %s does not follow the previous write's %s", pos, p.last)
	}
	p.last = pos
	return pos
}

// only returns the single event of type typ in stream, failing the test unless there is
// exactly one.
func only[T any](t testing.TB, store eventstore.Store, stream, typ string) (T, eventstore.Event) {
	t.Helper()
	events := readStream(t, store, stream)
	var found []eventstore.Event
	for _, e := range events {
		if e.Type == typ {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("stream %s has %d %s events, want 1", stream, len(found), typ)
	}
	return eventsOfType[T](t, found, typ)[0], found[0]
}

// TestWriteRoutes drives every write route that needs no automation through its happy path
// and checks the events each one stored, with the request's metadata.
func TestWriteRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		var pos positions

		// Customers: with and without a client-chosen ID, then a change of details.
		correlation := "happy-" + uuid.NewString()
		ans := srv.expect(t, http.StatusCreated, "POST", "/v1/customers",
			map[string]any{"customer_id": "C-1", "name": "Ann Lee", "email": "ann@example.com", "phone": "+1 555 0100", "payment_preference": "card"},
			"X-Correlation-ID", correlation, "X-Actor", "mallory")
		if ans["customer_id"] != "C-1" {
			t.Errorf("customer_id %v, want C-1", ans["customer_id"])
		}
		pos.next(t, ans)
		registered, ev := only[struct {
			Name, Email, Phone string
			PaymentPreference  string `json:"payment_preference"`
		}](t, store, "customer-C-1", "CustomerRegistered.v1")
		if registered.Name != "Ann Lee" || registered.Email != "ann@example.com" || registered.Phone != "+1 555 0100" || registered.PaymentPreference != "card" {
			t.Errorf("CustomerRegistered %+v does not hold what was sent", registered)
		}
		// The refusal checks of the other tests rely on requests' events carrying their
		// correlation ID. The actor is who the request authenticated as (open mode here),
		// never what a header claims.
		if ev.Metadata.CorrelationID != correlation || ev.Metadata.Actor != "anonymous" {
			t.Errorf("metadata %+v, want correlation %s and actor anonymous (X-Actor is not believed)", ev.Metadata, correlation)
		}

		ans = srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"name": "Bo", "email": "bo@example.com"})
		generated, _ := ans["customer_id"].(string)
		if !idPattern.MatchString(generated) {
			t.Errorf("generated customer_id %q is not a valid identifier", generated)
		}
		pos.next(t, ans)
		only[struct{}](t, store, "customer-"+generated, "CustomerRegistered.v1")

		pos.next(t, srv.expect(t, http.StatusOK, "PUT", "/v1/customers/C-1", map[string]any{"email": "ann.lee@example.com", "payment_preference": "invoice"}))
		changed, _ := only[struct {
			Email             *string `json:"email"`
			PaymentPreference *string `json:"payment_preference"`
			Name              *string `json:"name"`
		}](t, store, "customer-C-1", "CustomerDetailsChanged.v1")
		if changed.Email == nil || *changed.Email != "ann.lee@example.com" || changed.PaymentPreference == nil || *changed.PaymentPreference != "invoice" || changed.Name != nil {
			t.Errorf("CustomerDetailsChanged %+v, want the new email and preference only", changed)
		}

		// Inventory: the first receipt creates the SKU; adjust it; give it a policy.
		pos.next(t, srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 100, "reference": "DN-1"}))
		pos.next(t, srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 20}))
		receipts := eventsOfType[stockReceived](t, readStream(t, store, "stock-SKU-1"), "StockReceived.v1")
		if len(receipts) != 2 || receipts[0].Quantity != 100 || receipts[0].Reference != "DN-1" || receipts[1].Quantity != 20 {
			t.Errorf("StockReceived events %+v, want 100 (DN-1) then 20", receipts)
		}
		pos.next(t, srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/adjustments", map[string]any{"delta": -5, "reason": "damaged"}))
		adjusted, _ := only[struct{ Delta int64 }](t, store, "stock-SKU-1", "StockAdjusted.v1")
		if adjusted.Delta != -5 {
			t.Errorf("StockAdjusted delta %d, want -5", adjusted.Delta)
		}
		pos.next(t, srv.expect(t, http.StatusOK, "PUT", "/v1/inventory/SKU-1/replenishment", map[string]any{"reorder_point": 10, "reorder_quantity": 50, "supplier": "ACME"}))
		policy, _ := only[struct {
			ReorderPoint    int64 `json:"reorder_point"`
			ReorderQuantity int64 `json:"reorder_quantity"`
			Supplier        string
		}](t, store, "stock-SKU-1", "ReplenishmentPolicySet.v1")
		if policy.ReorderPoint != 10 || policy.ReorderQuantity != 50 || policy.Supplier != "ACME" {
			t.Errorf("ReplenishmentPolicySet %+v", policy)
		}

		// Orders: totals are computed in integers, tax rounded half up.
		order := map[string]any{
			"order_id": "O-1", "customer_id": "C-1", "channel": "web", "currency": "EUR",
			"lines":        []map[string]any{{"sku": "SKU-1", "quantity": 3, "unit_price": 1999}},
			"tax_rate_bps": 1950, "payment_method": "card", "shipping_address": "1 Main St",
		}
		ans = srv.expect(t, http.StatusCreated, "POST", "/v1/orders", order)
		if ans["order_id"] != "O-1" {
			t.Errorf("order_id %v, want O-1", ans["order_id"])
		}
		pos.next(t, ans)
		placed, ev := only[orderPlaced](t, store, "order-O-1", "OrderPlaced.v1")
		// 3 × 1999 = 5997; 5997 × 0.195 = 1169.415 → 1169.
		if ev.Version != 0 || placed.CustomerID != "C-1" || placed.Channel != "web" || placed.Currency != "EUR" ||
			placed.Subtotal != 5997 || placed.Tax != 1169 || placed.Total != 7166 || placed.TaxRateBps != 1950 ||
			len(placed.Lines) != 1 || placed.Lines[0] != (orderLine{"SKU-1", 3, 1999}) {
			t.Errorf("OrderPlaced %+v at version %d does not hold the order", placed, ev.Version)
		}
		ans = srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{
			"customer_id": generated, "channel": "phone", "currency": "USD",
			"lines": []map[string]any{{"sku": "SKU-1", "quantity": 1, "unit_price": 0}},
		})
		generatedOrder, _ := ans["order_id"].(string)
		if !idPattern.MatchString(generatedOrder) {
			t.Errorf("generated order_id %q is not a valid identifier", generatedOrder)
		}
		pos.next(t, ans)
		only[orderPlaced](t, store, "order-"+generatedOrder, "OrderPlaced.v1")

		// Payments and refunds on O-1.
		ans = srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/payments", map[string]any{"amount": 5000, "method": "card", "reference": "PSP-1"})
		pos.next(t, ans)
		paid, _ := only[paymentReceived](t, store, "order-O-1", "PaymentReceived.v1")
		if paid.PaymentID == "" || paid.PaymentID != ans["payment_id"] || paid.Amount != 5000 || paid.Reference != "PSP-1" {
			t.Errorf("PaymentReceived %+v, answer %v", paid, ans)
		}
		ans = srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/refunds", map[string]any{"amount": 1500, "reference": "RF-1"})
		pos.next(t, ans)
		refunded, _ := only[struct {
			RefundID string `json:"refund_id"`
			Amount   int64
		}](t, store, "order-O-1", "RefundIssued.v1")
		if refunded.RefundID == "" || refunded.RefundID != ans["refund_id"] || refunded.Amount != 1500 {
			t.Errorf("RefundIssued %+v, answer %v", refunded, ans)
		}
		// The rest of the balance can be paid exactly: 7166 − 5000 + 1500.
		pos.next(t, srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/payments", map[string]any{"amount": 3666, "method": "cash"}))

		// Cancellation of the other order, before shipment.
		pos.next(t, srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+generatedOrder+"/cancellation", map[string]any{"reason": "changed their mind"}))
		cancelled, _ := only[struct{ Reason string }](t, store, "order-"+generatedOrder, "OrderCancelled.v1")
		if cancelled.Reason != "changed their mind" {
			t.Errorf("OrderCancelled reason %q", cancelled.Reason)
		}

		checkLog(t, srv, store)
	})
}

// TestOrderLineBounds places orders at the bounds of docs/api.md: one line, and 500 lines of 500
// distinct SKUs.
func TestOrderLineBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "C-1", "name": "Ann", "email": "ann@example.com"})
		lines := make([]map[string]any, 500)
		for i := range lines {
			sku := fmt.Sprintf("B-%03d", i)
			srv.expect(t, http.StatusOK, "POST", "/v1/inventory/"+sku+"/receipts", map[string]any{"quantity": 1})
			lines[i] = map[string]any{"sku": sku, "quantity": 1, "unit_price": i}
		}
		srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": "O-500", "customer_id": "C-1", "channel": "store", "currency": "EUR", "lines": lines})
		placed, _ := only[orderPlaced](t, store, "order-O-500", "OrderPlaced.v1")
		if len(placed.Lines) != 500 || placed.Subtotal != 499*500/2 {
			t.Errorf("OrderPlaced has %d lines and subtotal %d, want 500 and %d", len(placed.Lines), placed.Subtotal, 499*500/2)
		}
		srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": "O-1", "customer_id": "C-1", "channel": "web", "currency": "EUR", "lines": lines[:1]})
	})
}

// automationDeadline is how long a test waits for the order-to-cash automation (allocation,
// replenishment, invoicing) to act before it concludes the automation is stuck. It is long
// because the machine running the tests may be loaded; waiting ends as soon as it acted.
const automationDeadline = 60 * time.Second

// TestFulfilmentWithAutomation drives the routes that need the automation to have acted first:
// shipment of a confirmed order, delivery, a return and a refund, and the receipt of a
// purchase order that replenishment raised (twice: 409).
func TestFulfilmentWithAutomation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "C-1", "name": "Ann", "email": "ann@example.com"})
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-1/receipts", map[string]any{"quantity": 10})
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/SKU-P/receipts", map[string]any{"quantity": 2})
		srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{
			"order_id": "O-1", "customer_id": "C-1", "channel": "web", "currency": "EUR", "tax_rate_bps": 1000,
			"lines": []map[string]any{{"sku": "SKU-1", "quantity": 2, "unit_price": 1000}},
		})
		// SKU-P is below its new reorder point at once: the SKU stream requests a purchase
		// order, which the replenishment automation raises.
		srv.expect(t, http.StatusOK, "PUT", "/v1/inventory/SKU-P/replenishment", map[string]any{"reorder_point": 5, "reorder_quantity": 20, "supplier": "ACME"})
		requested := eventsOfType[struct {
			PurchaseOrderID string `json:"purchase_order_id"`
			Quantity        int64
		}](t, readStream(t, store, "stock-SKU-P"), "ReplenishmentRequested.v1")
		if len(requested) != 1 || requested[0].Quantity != 20 {
			t.Fatalf("ReplenishmentRequested %+v, want one for 20 units", requested)
		}
		poID := requested[0].PurchaseOrderID

		hasType := func(stream, typ string) func() bool {
			return func() bool {
				for _, e := range readStream(t, store, stream) {
					if e.Type == typ {
						return true
					}
				}
				return false
			}
		}
		if !waitFor(automationDeadline, hasType("order-O-1", "OrderConfirmed.v1")) {
			t.Fatalf("order O-1 was not confirmed within %s", automationDeadline)
		}
		srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/shipments", map[string]any{"carrier": "DHL", "tracking_number": "JD1"})
		srv.expect(t, http.StatusConflict, "POST", "/v1/orders/O-1/shipments", map[string]any{"carrier": "DHL", "tracking_number": "JD1"})
		srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/deliveries", map[string]any{})
		srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/payments", map[string]any{"amount": 2200, "method": "card"})
		ans := srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/returns", map[string]any{"lines": []map[string]any{{"sku": "SKU-1", "quantity": 1}}, "reason": "too big"})
		returned, _ := only[struct {
			ReturnID        string `json:"return_id"`
			Net, Tax, Total int64
		}](t, store, "order-O-1", "OrderReturned.v1")
		if returned.ReturnID != ans["return_id"] || returned.Net != 1000 || returned.Tax != 100 || returned.Total != 1100 {
			t.Errorf("OrderReturned %+v, answer %v; want net 1000, tax 100, total 1100", returned, ans)
		}
		srv.expect(t, http.StatusConflict, "POST", "/v1/orders/O-1/returns", map[string]any{"lines": []map[string]any{{"sku": "SKU-1", "quantity": 2}}, "reason": "more than shipped"})
		srv.expect(t, http.StatusOK, "POST", "/v1/orders/O-1/refunds", map[string]any{"amount": 1100})
		srv.expect(t, http.StatusConflict, "POST", "/v1/orders/O-1/refunds", map[string]any{"amount": 1101})

		if !waitFor(automationDeadline, hasType("purchase_order-"+poID, "PurchaseOrderRaised.v1")) {
			t.Fatalf("purchase order %s was not raised within %s", poID, automationDeadline)
		}
		srv.expect(t, http.StatusOK, "POST", "/v1/purchase-orders/"+poID+"/receipt", nil)
		srv.expect(t, http.StatusConflict, "POST", "/v1/purchase-orders/"+poID+"/receipt", map[string]any{})
		checkLog(t, srv, store)
	})
}

// TestOperationsRoutes checks what operators and tools read: health, readiness, metrics that
// count the requests made, the OpenAPI document of this very build, and the audit report.
func TestOperationsRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		if got := srv.expect(t, http.StatusOK, "GET", "/healthz", nil); got["status"] != "ok" {
			t.Errorf("/healthz answered %v", got)
		}
		if got := srv.expect(t, http.StatusOK, "GET", "/readyz", nil); got["status"] != "ready" || got["events"] != "ok" {
			t.Errorf("/readyz answered %v", got)
		}
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"name": "Ann", "email": "ann@example.com"})
		metrics := srv.do(t, "GET", "/metrics", nil)
		if metrics.status != http.StatusOK || !strings.Contains(string(metrics.body), `orderledger_http_requests_total{method="POST",route="/v1/customers",status="201"} 1`) {
			t.Errorf("/metrics: status %d, no count of the POST /v1/customers made:\n%s", metrics.status, tail(string(metrics.body), 20))
		}
		document := srv.do(t, "GET", "/v1/openapi.json", nil)
		if document.status != http.StatusOK || !bytes.Equal(document.body, openapi.Document()) {
			t.Errorf("/v1/openapi.json: status %d, not the document of this build", document.status)
		}
		// The report covers the log up to its head, which on PostgreSQL may lag a write.
		settle(t, srv, openStore(t, events))
		report := srv.expect(t, http.StatusOK, "GET", "/v1/audit/verify", nil)
		if n, _ := report["events"].(float64); report["ok"] != true || report["first_failure"] != nil || n < 2 {
			t.Errorf("/v1/audit/verify answered %v, want ok over the registration and the settle receipt", report)
		}
	})
}
