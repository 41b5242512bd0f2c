package commands_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
)

// While the automation is further behind than the limit, POST /v1/orders answers 503
// unavailable with a Retry-After and appends nothing; at the limit and below, orders are taken,
// and the other write routes are never turned away.
func TestOrdersAreRefusedWhileTheAutomationIsTooFarBehind(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	h := commands.NewHandler(store)
	if _, err := h.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 5, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: "C1", Name: "Ann", Email: "ann@example.com", At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	lag := 3500 * time.Millisecond
	api := commands.NewAPI(h)
	api.LimitOrdersByLag(2*time.Second, func() time.Duration { return lag })
	router := mux.NewRouter()
	api.Register(router)
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		return rec
	}
	order := func(id string) string {
		return `{"order_id":"` + id + `","customer_id":"C1","channel":"web","currency":"EUR","lines":[{"sku":"S1","quantity":1,"unit_price":100}]}`
	}

	rec := post("/v1/orders", order("O1"))
	var problem struct{ Code string }
	_ = json.Unmarshal(rec.Body.Bytes(), &problem)
	if rec.Code != http.StatusServiceUnavailable || problem.Code != "unavailable" || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("lag 3.5 s over a limit of 2 s: %d %q, Retry-After %q; want 503 unavailable, Retry-After 2", rec.Code, problem.Code, rec.Header().Get("Retry-After"))
	}
	var placed bool
	if err := commands.Read(ctx, h, domain.OrderStream("O1"), domain.EvolveOrder, func(_ domain.Order, exists bool) error { placed = exists; return nil }); err != nil || placed {
		t.Fatalf("the refused order was placed (%v)", err)
	}
	if rec := post("/v1/inventory/S1/receipts", `{"quantity":1,"reference":"r"}`); rec.Code != http.StatusOK {
		t.Fatalf("a receipt while orders are refused: %d %s", rec.Code, rec.Body)
	}

	lag = 2100 * time.Millisecond
	if rec := post("/v1/orders", order("O1")); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("lag just over the limit: %d, Retry-After %q; want 503, Retry-After 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	lag = 2 * time.Second
	if rec := post("/v1/orders", order("O1")); rec.Code != http.StatusCreated {
		t.Fatalf("lag at the limit: %d %s; want 201", rec.Code, rec.Body)
	}
}
