package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// script sends requests one at a time, keeps the model up to date with each, and waits after
// each until the read models show what the model says, so that the automation has finished
// one step before the next begins.
type script struct {
	srv   *server
	store eventstore.Store
	m     *model
}

func newScript(t *testing.T, events string) *script {
	return &script{srv: startServer(t, events), store: openStore(t, events), m: newModel()}
}

func (sc *script) customer(t *testing.T, c *mCustomer) {
	t.Helper()
	body := map[string]any{"customer_id": c.id, "name": c.name, "email": c.email}
	if c.phone != "" {
		body["phone"] = c.phone
	}
	if c.preference != "" {
		body["payment_preference"] = c.preference
	}
	sc.srv.expect(t, http.StatusCreated, "POST", "/v1/customers", body)
	sc.m.register(c)
}

func (sc *script) receive(t *testing.T, sku string, quantity int64) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "POST", "/v1/inventory/"+sku+"/receipts", map[string]any{"quantity": quantity, "reference": "DN-" + sku})
	sc.m.receive(sku, quantity)
	sc.settle(t)
}

func (sc *script) policy(t *testing.T, sku string, p mPolicy) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "PUT", "/v1/inventory/"+sku+"/replenishment", map[string]any{"reorder_point": p.point, "reorder_quantity": p.quantity, "supplier": p.supplier})
	sc.m.setPolicy(sku, p)
	sc.settle(t)
}

// line is an order line as a script writes it.
func line(sku string, quantity, unitPrice int64) *mLine {
	return &mLine{sku: sku, quantity: quantity, unitPrice: unitPrice}
}

func (sc *script) place(t *testing.T, id, customer, channel string, taxRateBps int64, lines ...*mLine) *mOrder {
	t.Helper()
	o := &mOrder{id: id, customer: customer, channel: channel, currency: "EUR", taxRateBps: taxRateBps, lines: lines}
	var body []map[string]any
	for _, l := range lines {
		body = append(body, map[string]any{"sku": l.sku, "quantity": l.quantity, "unit_price": l.unitPrice})
	}
	sc.srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{
		"order_id": id, "customer_id": customer, "channel": channel, "currency": "EUR", "tax_rate_bps": taxRateBps, "lines": body,
	})
	sc.m.place(o)
	sc.settle(t)
	return o
}

func (sc *script) pay(t *testing.T, o *mOrder, amount int64) {
	t.Helper()
	answer := sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/payments", map[string]any{"amount": amount, "method": "card", "reference": fmt.Sprintf("PSP-%s-%d", o.id, len(o.payments))})
	id, _ := answer["payment_id"].(string)
	sc.m.pay(o, mDocument{id, amount})
	sc.settle(t)
}

func (sc *script) refund(t *testing.T, o *mOrder, amount int64) {
	t.Helper()
	answer := sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/refunds", map[string]any{"amount": amount})
	id, _ := answer["refund_id"].(string)
	sc.m.refund(o, mDocument{id, amount})
	sc.settle(t)
}

func (sc *script) ship(t *testing.T, o *mOrder) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/shipments", map[string]any{"carrier": "DHL", "tracking_number": "JD-" + o.id})
	sc.m.ship(o, "DHL", "JD-"+o.id)
	sc.settle(t)
}

func (sc *script) deliver(t *testing.T, o *mOrder) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/deliveries", map[string]any{})
	sc.m.deliver(o)
	sc.settle(t)
}

func (sc *script) cancel(t *testing.T, o *mOrder) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/cancellation", map[string]any{"reason": "customer asked"})
	sc.m.cancel(o)
	sc.settle(t)
}

func (sc *script) returnItems(t *testing.T, o *mOrder, quantities map[string]int64) {
	t.Helper()
	var lines []map[string]any
	for _, l := range o.lines {
		if q := quantities[l.sku]; q > 0 {
			lines = append(lines, map[string]any{"sku": l.sku, "quantity": q})
		}
	}
	answer := sc.srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+o.id+"/returns", map[string]any{"lines": lines, "reason": "does not fit"})
	id, _ := answer["return_id"].(string)
	if id == "" {
		t.Fatalf("the return of %s answered no return_id: %v", o.id, answer)
	}
	sc.m.returnItems(o, id, quantities)
	sc.settle(t)
}

func (sc *script) receivePO(t *testing.T, po *mPO) {
	t.Helper()
	sc.srv.expect(t, http.StatusOK, "POST", "/v1/purchase-orders/"+po.id+"/receipt", map[string]any{})
	sc.m.receivePO(po)
	sc.settle(t)
}

// settle waits until every order, SKU and purchase order reads as the model says, times
// aside, so the automation has done all the step asked of it.
func (sc *script) settle(t *testing.T) {
	t.Helper()
	eventually(t, "the read models after the last request", func() []string {
		var diffs []string
		compare := func(path string, want any) {
			resp := sc.srv.do(t, "GET", path, nil)
			if resp.status != http.StatusOK {
				diffs = append(diffs, fmt.Sprintf("GET %s: status %d: %s", path, resp.status, resp.body))
				return
			}
			diffs = append(diffs, prefixed("GET "+path, compareDoc(t, resp.body, want, true))...)
		}
		for _, o := range sc.m.placed {
			compare("/v1/orders/"+o.id, sc.m.orderDoc(o, nil))
		}
		for _, s := range sc.m.stock {
			compare("/v1/inventory/"+s.sku, sc.m.stockDoc(s))
		}
		return append(diffs, sc.purchaseOrderDiffs(t, nil, "/v1/purchase-orders")...)
	})
}

func prefixed(what string, diffs []string) []string {
	for i := range diffs {
		diffs[i] = what + ": " + diffs[i]
	}
	return diffs
}

// purchaseOrderDiffs compares GET /v1/purchase-orders with the model's purchase orders,
// sorted by ID (docs/api.md fixes no order), with their times when store is set. The IDs are the
// server's to choose: a purchase order the model expects takes the ID of the oldest one the
// server lists for its SKU that no other has taken.
func (sc *script) purchaseOrderDiffs(t *testing.T, store eventstore.Store, path string) []string {
	t.Helper()
	var page struct {
		Items []purchaseOrderDoc `json:"items"`
	}
	list, query, _ := strings.Cut(path, "?")
	raw := walkList(t, sc.srv, list, query, "purchase_order_id", 500)
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatalf("GET /v1/purchase-orders: %v: %s", err, raw)
	}
	taken := map[string]bool{}
	for _, po := range sc.m.pos {
		taken[po.id] = true
	}
	slices.SortFunc(page.Items, func(a, b purchaseOrderDoc) int {
		return cmp.Or(a.RaisedAt.Compare(b.RaisedAt), cmp.Compare(a.PurchaseOrderID, b.PurchaseOrderID))
	})
	for _, po := range sc.m.pos {
		for _, listed := range page.Items {
			if po.id == "" && listed.SKU == po.sku && !taken[listed.PurchaseOrderID] {
				po.id = listed.PurchaseOrderID
				taken[po.id] = true
			}
		}
	}
	want := []purchaseOrderDoc{}
	for _, po := range sc.m.pos {
		want = append(want, sc.m.poDoc(t, store, po))
	}
	return prefixed("purchase orders", compareDoc(t, sortedItems(t, raw, "purchase_order_id"), sortedBy(want, func(d purchaseOrderDoc) string { return d.PurchaseOrderID }), store == nil))
}

// sortedItems returns the items of a list answer sorted by a key field, as JSON.
func sortedItems(t testing.TB, raw []byte, key string) []byte {
	t.Helper()
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(raw, &page); err != nil || page.Items == nil {
		t.Fatalf("not a list answer (%v): %s", err, raw)
	}
	slices.SortFunc(page.Items, func(a, b map[string]any) int { return cmp.Compare(fmt.Sprint(a[key]), fmt.Sprint(b[key])) })
	out, err := json.Marshal(page.Items)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedBy[T any](items []T, key func(T) string) []T {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return out
}

// caughtUp waits as settle does, then returns a function that adds ?after= with the head of
// the log to a read path: read models other than those settle watches may lag behind, and a
// read with it answers only once they hold everything the automation has done.
func (sc *script) caughtUp(t *testing.T) func(path string) string {
	t.Helper()
	sc.settle(t)
	pos := head(t, sc.store).String()
	return func(path string) string {
		switch {
		case strings.HasSuffix(path, "?"):
			return path + "after=" + pos
		case strings.Contains(path, "?"):
			return path + "&after=" + pos
		}
		return path + "?after=" + pos
	}
}

// facts reads what the server chose about every order of the model from the event store.
func (sc *script) facts(t *testing.T) facts {
	t.Helper()
	fs := facts{}
	for _, o := range sc.m.placed {
		fs[o.id] = readOrderFacts(t, sc.store, o.id)
	}
	return fs
}

// check compares, whole and with their times, the documents of the orders given, the stock
// of their SKUs, their ledger entries, every purchase order and the trial balance; and the
// event types each order's stream holds.
func (sc *script) check(t *testing.T, orders ...*mOrder) {
	t.Helper()
	at := sc.caughtUp(t)
	fs := sc.facts(t)
	skus := map[string]bool{}
	for _, o := range orders {
		sc.srv.assertDoc(t, at("/v1/orders/"+o.id), sc.m.orderDoc(o, fs))
		if got := fs[o.id].types; !slices.Equal(got, o.types) {
			t.Errorf("stream order-%s holds %v, want %v", o.id, got, o.types)
		}
		sc.srv.assertDoc(t, at("/v1/ledger/entries?order_id="+o.id), map[string]any{"items": nonNil(sc.m.ledgerEntries(o, fs[o.id])), "next_cursor": nil})
		for _, l := range o.lines {
			skus[l.sku] = true
		}
	}
	for sku := range skus {
		sc.srv.assertDoc(t, at("/v1/inventory/"+sku), sc.m.stockDoc(sc.m.stock[sku]))
	}
	if diffs := sc.purchaseOrderDiffs(t, sc.store, at("/v1/purchase-orders")); len(diffs) > 0 {
		t.Errorf("GET /v1/purchase-orders:\n  %v", limit(diffs, 25))
	}
	tb := sc.m.trialBalance()
	if tb.TotalDebit != tb.TotalCredit {
		t.Fatalf("the test's own trial balance does not balance: %+v", tb)
	}
	sc.srv.assertDoc(t, at("/v1/ledger/trial-balance"), tb)
}

func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}
