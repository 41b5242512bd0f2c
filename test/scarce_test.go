package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// The scripted input of TestScarceStock: issue #5 fixes 200 orders against 3 SKUs.
const (
	scarceOrders  = 200
	scarceWorkers = 16
	// scarceCustomers place the orders in turn.
	scarceCustomers = 4
	reorderPoint    = 10
	reorderQuantity = 40
	// scarceDeadline bounds each wait for the automation in TestScarceStock, which after a
	// kill includes the dead process's leases running out (15 s) and a backlog of orders.
	scarceDeadline = 3 * time.Minute
)

// scarceSKUs start with little stock. Every line of a SKU asks for the same quantity, so the
// forecast after n allocations is the same whatever order they come in: the purchase orders
// raised are then determined by the input, and an interrupted run can be compared with one
// that was not.
var scarceSKUs = []struct {
	sku              string
	initial, perLine int64
}{{"Q-A", 30, 2}, {"Q-B", 20, 1}, {"Q-C", 12, 3}}

// scarceOrder is order i of the input: its lines follow the 7 non-empty sets of the SKUs.
func scarceOrder(i int) (id string, body map[string]any, subtotal, tax int64) {
	id = fmt.Sprintf("Q-O%03d", i)
	var lines []any
	for k, s := range scarceSKUs {
		if (i%7+1)&(1<<k) != 0 {
			price := int64(100 + (i*37+k*11)%900)
			lines = append(lines, map[string]any{"sku": s.sku, "quantity": s.perLine, "unit_price": price})
			subtotal += s.perLine * price
		}
	}
	rate := int64(i%5) * 625
	body = map[string]any{
		"order_id": id, "customer_id": fmt.Sprintf("Q-C%d", i%scarceCustomers), "channel": []string{"web", "store", "phone"}[i%3],
		"currency": "EUR", "tax_rate_bps": rate, "lines": lines,
	}
	return id, body, subtotal, roundHalfUp(subtotal, rate)
}

// scarcePayment is what order i's client pays right after placing it: half the total for
// every third order.
func scarcePayment(i int, total int64) int64 {
	if i%3 != 0 {
		return 0
	}
	return total / 2
}

// expectedPurchaseOrders replays a SKU's forecast (available + incoming − backordered) over
// its allocations: each takes perLine off it, and when it falls below the reorder point a
// purchase order of max(reorder quantity, reorder point − forecast) is raised.
func expectedPurchaseOrders(initial, perLine int64, allocations int) []int64 {
	forecast := initial
	var out []int64
	for range allocations {
		forecast -= perLine
		if forecast < reorderPoint {
			q := max(reorderQuantity, reorderPoint-forecast)
			out = append(out, q)
			forecast += q
		}
	}
	return out
}

// TestScarceStock places 200 orders at once against 3 SKUs with too little stock and a
// replenishment policy, on each store, twice: once without interruption and once with the
// server killed (SIGKILL) twice during the run and restarted. Each run checks, while it runs,
// that no stock level read ever shows more reserved than on hand; at the end that every order
// is confirmed once the purchase orders are received, with invoices INV-1…INV-200, exactly the
// purchase orders the shortfalls call for, and the stock and trial balance the input implies;
// then, with the server stopped, folds each SKU's stream from the event store and checks every
// prefix. The two runs must end in the same state.
func TestScarceStock(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			scarceStock(t, b)
		})
	}
}

// scarceStock makes both runs on the backend, at once, and compares their end states.
func scarceStock(t *testing.T, b backend) {
	var plain, killed *scarceOutcome
	t.Run("runs", func(t *testing.T) {
		t.Run("uninterrupted", func(t *testing.T) {
			t.Parallel()
			plain = runScarce(t, b.newEvents(t), 0)
		})
		t.Run("killed twice", func(t *testing.T) {
			t.Parallel()
			killed = runScarce(t, b.newEvents(t), 2)
		})
	})
	if plain == nil || killed == nil {
		t.Fatal("a run failed; the end states are not compared")
	}
	if diffs := jsonDiff("$", canonical(t, plain, false), canonical(t, killed, false)); len(diffs) > 0 {
		t.Errorf("the run killed twice ends differently from the uninterrupted one:\n  %s", strings.Join(limit(diffs, 25), "\n  "))
	}
}

// scarceOutcome is the end state two runs of the same input must share.
type scarceOutcome struct {
	Statuses       map[string]string  `json:"statuses"`
	Invoices       int                `json:"invoices"`
	PurchaseOrders []purchaseOrderDoc `json:"purchase_orders"`
	Stock          []stockDoc         `json:"stock"`
	TrialBalance   trialBalanceDoc    `json:"trial_balance"`
}

// liveServer is the server a run talks to, replaced when it is killed and restarted.
type liveServer struct {
	mu  sync.Mutex
	srv *server
}

func (l *liveServer) get() *server {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.srv
}

// restart kills the server with SIGKILL, as a crash would, and starts it again on its store.
func (l *liveServer) restart(t *testing.T) {
	old := l.get()
	old.kill(t)
	srv := startServer(t, old.events)
	l.mu.Lock()
	l.srv = srv
	l.mu.Unlock()
}

// send makes a request under an Idempotency-Key and, while the server is down or restarting,
// retries it with the same key until it is answered below 500.
func (l *liveServer) send(t *testing.T, method, path string, body any, key string) (response, error) {
	end := time.Now().Add(scarceDeadline)
	for {
		resp, err := l.get().send(t.Context(), method, path, body, "Idempotency-Key", key)
		if err == nil && resp.status < 500 {
			return resp, nil
		}
		if t.Context().Err() != nil {
			return resp, t.Context().Err()
		}
		if time.Now().After(end) {
			return resp, fmt.Errorf("%s %s: no answer below 500 within %s (last: %v, status %d)", method, path, scarceDeadline, err, resp.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runScarce runs the input on a fresh store, killing the server kills times (0, or 2: once
// while orders are placed, once right after the purchase orders are received), and returns
// the end state.
func runScarce(t *testing.T, events string, kills int) *scarceOutcome {
	live := &liveServer{srv: startServer(t, events)}
	srv := live.get()
	for c := range scarceCustomers {
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": fmt.Sprintf("Q-C%d", c), "name": "Ann", "email": "ann@example.com"})
	}
	for _, s := range scarceSKUs {
		srv.expect(t, http.StatusOK, "POST", "/v1/inventory/"+s.sku+"/receipts", map[string]any{"quantity": s.initial})
		srv.expect(t, http.StatusOK, "PUT", "/v1/inventory/"+s.sku+"/replenishment", map[string]any{"reorder_point": reorderPoint, "reorder_quantity": reorderQuantity, "supplier": "ACME"})
	}

	// Read the stock levels all along, and check every answer.
	stopPolling, polled := make(chan struct{}), make(chan int64, 1)
	go func() { polled <- pollStock(t, live, stopPolling) }()
	var pollCount int64
	stopPoll := sync.OnceFunc(func() { close(stopPolling); pollCount = <-polled })
	t.Cleanup(stopPoll) // a test that fails early must not leave it running

	var (
		acked atomic.Int64
		wg    sync.WaitGroup
		work  = make(chan int)
		paid  = make([]int64, scarceOrders)
	)
	for range scarceWorkers {
		wg.Go(func() {
			for i := range work {
				id, body, subtotal, tax := scarceOrder(i)
				resp, err := live.send(t, "POST", "/v1/orders", body, "place-"+id)
				if err != nil || resp.status != http.StatusCreated {
					t.Errorf("order %s: %v status %d: %s", id, err, resp.status, resp.body)
					continue
				}
				if amount := scarcePayment(i, subtotal+tax); amount > 0 {
					resp, err := live.send(t, "POST", "/v1/orders/"+id+"/payments", map[string]any{"amount": amount, "method": "card"}, "pay-"+id)
					if err != nil || resp.status != http.StatusOK {
						t.Errorf("payment of %s: %v status %d: %s", id, err, resp.status, resp.body)
						continue
					}
					paid[i] = amount
				}
				acked.Add(1)
			}
		})
	}
	t.Cleanup(wg.Wait)
	go func() {
		defer close(work)
		for i := range scarceOrders {
			work <- i
		}
	}()
	if kills > 0 {
		if !waitFor(scarceDeadline, func() bool { return acked.Load() >= scarceOrders/3 }) {
			t.Fatalf("only %d orders acknowledged within %s", acked.Load(), scarceDeadline)
		}
		live.restart(t)
		t.Logf("killed after %d orders were acknowledged", acked.Load())
	}
	wg.Wait()
	if t.Failed() {
		return nil
	}

	// Every order has been allocated, and the shortfalls have raised their purchase orders.
	wantPOs := map[string][]int64{}
	allocations := map[string]int{}
	for i := range scarceOrders {
		for k, s := range scarceSKUs {
			if (i%7+1)&(1<<k) != 0 {
				allocations[s.sku]++
			}
		}
	}
	for _, s := range scarceSKUs {
		wantPOs[s.sku] = expectedPurchaseOrders(s.initial, s.perLine, allocations[s.sku])
	}
	eventuallyWithin(t, scarceDeadline, "every order allocated and every purchase order raised", func() []string {
		orders := listOrders(t, live.get())
		diffs := countDiff(len(orders))
		for _, o := range orders {
			if o.Status != "confirmed" && o.Status != "backordered" {
				diffs = append(diffs, fmt.Sprintf("order %s is %s", o.OrderID, o.Status))
			}
		}
		return append(diffs, purchaseOrderCounts(listPurchaseOrders(t, live.get(), ""), wantPOs, "")...)
	})

	// Receive every purchase order; then every backorder can be served.
	for _, po := range listPurchaseOrders(t, live.get(), "?status=open") {
		resp, err := live.send(t, "POST", "/v1/purchase-orders/"+po.PurchaseOrderID+"/receipt", map[string]any{}, "receive-"+po.PurchaseOrderID)
		if err != nil || resp.status != http.StatusOK {
			t.Fatalf("receipt of %s: %v status %d: %s", po.PurchaseOrderID, err, resp.status, resp.body)
		}
	}
	if kills > 1 {
		live.restart(t)
		t.Log("killed again right after the purchase orders were received")
	}
	var ordersAtEnd []orderDoc
	eventuallyWithin(t, scarceDeadline, "every order confirmed and invoiced", func() []string {
		ordersAtEnd = listOrders(t, live.get())
		diffs := countDiff(len(ordersAtEnd))
		for _, o := range ordersAtEnd {
			if o.Status != "confirmed" || o.InvoiceNumber == nil {
				diffs = append(diffs, fmt.Sprintf("order %s is %s, invoice %v", o.OrderID, o.Status, o.InvoiceNumber))
			}
		}
		return append(diffs, purchaseOrderCounts(listPurchaseOrders(t, live.get(), ""), wantPOs, "received")...)
	})
	srv = live.get()
	store := openStore(t, events)
	at := head(t, store).String()
	stopPoll()
	t.Logf("%d stock levels read during the run, none with more reserved than on hand", pollCount)

	out := &scarceOutcome{Statuses: map[string]string{}}
	// Invoices INV-1…INV-k with k the orders confirmed: no gap, no repeat.
	numbers := map[string]string{}
	for _, o := range ordersAtEnd {
		out.Statuses[o.OrderID] = o.Status
		if o.InvoiceNumber == nil {
			continue
		}
		if other, dup := numbers[*o.InvoiceNumber]; dup {
			t.Errorf("invoice %s went to %s and %s", *o.InvoiceNumber, other, o.OrderID)
		}
		numbers[*o.InvoiceNumber] = o.OrderID
	}
	out.Invoices = len(numbers)
	for n := 1; n <= len(ordersAtEnd); n++ {
		if _, ok := numbers[fmt.Sprintf("INV-%d", n)]; !ok {
			t.Errorf("no order has invoice INV-%d of INV-1…INV-%d", n, len(ordersAtEnd))
		}
	}

	// Stock: everything received, everything ordered reserved, nothing backordered or due.
	for _, s := range scarceSKUs {
		onHand, ordered := s.initial, int64(allocations[s.sku])*s.perLine
		for _, q := range wantPOs[s.sku] {
			onHand += q
		}
		want := stockDoc{SKU: s.sku, OnHand: onHand, Reserved: ordered, Available: onHand - ordered,
			ReorderPoint: ptr(int64(reorderPoint)), ReorderQuantity: ptr(int64(reorderQuantity)), Supplier: ptr("ACME"),
			LowStock: onHand-ordered <= reorderPoint}
		srv.assertDoc(t, "/v1/inventory/"+s.sku+"?after="+at, want)
		out.Stock = append(out.Stock, want)
	}
	out.PurchaseOrders = listPurchaseOrders(t, srv, "?after="+at)
	for i := range out.PurchaseOrders {
		out.PurchaseOrders[i].RaisedAt, out.PurchaseOrders[i].ReceivedAt = time.Time{}, nil
	}
	slices.SortFunc(out.PurchaseOrders, func(a, b purchaseOrderDoc) int { return strings.Compare(a.PurchaseOrderID, b.PurchaseOrderID) })

	// The ledger: every order invoiced, the payments the clients made.
	tb := map[string]*ledgerLineDoc{}
	for _, a := range []string{"accounts_receivable", "cash", "revenue", "tax_payable"} {
		tb[a] = &ledgerLineDoc{Account: a}
	}
	for i := range scarceOrders {
		_, _, subtotal, tax := scarceOrder(i)
		tb["accounts_receivable"].Debit += subtotal + tax
		tb["revenue"].Credit += subtotal
		tb["tax_payable"].Credit += tax
		tb["cash"].Debit += paid[i]
		tb["accounts_receivable"].Credit += paid[i]
	}
	out.TrialBalance.Currency = "EUR"
	for _, a := range []string{"accounts_receivable", "cash", "revenue", "tax_payable"} {
		out.TrialBalance.Accounts = append(out.TrialBalance.Accounts, *tb[a])
		out.TrialBalance.TotalDebit += tb[a].Debit
		out.TrialBalance.TotalCredit += tb[a].Credit
	}
	srv.assertDoc(t, "/v1/ledger/trial-balance?after="+at, out.TrialBalance)

	// The log itself, then, with the server stopped, the SKU streams and the invoice series.
	checkLog(t, srv, store)
	srv.stop(t)
	for _, s := range scarceSKUs {
		checkStockStream(t, s.sku, readStream(t, store, "stock-"+s.sku))
	}
	checkInvoiceSeries(t, readStream(t, store, "invoice_series-INV"), numbers)
	checkPurchaseOrderStreams(t, store, out.PurchaseOrders)
	return out
}

func ptr[T any](v T) *T { return &v }

// countDiff says so when the orders listed are not all those placed: one the read model has
// not shown yet is not waited for otherwise.
func countDiff(listed int) []string {
	if listed != scarceOrders {
		return []string{fmt.Sprintf("%d orders listed, %d placed", listed, scarceOrders)}
	}
	return nil
}

// pollStock reads the SKUs' stock levels until stop is closed and checks every answer:
// reserved never exceeds on hand, available is their difference, nothing is negative. A
// server that is down or restarting is skipped. It returns how many answers it checked.
func pollStock(t *testing.T, live *liveServer, stop chan struct{}) int64 {
	var checked int64
	for {
		for _, s := range scarceSKUs {
			select {
			case <-stop:
				if checked == 0 {
					t.Error("no stock level could be read during the run")
				}
				return checked
			default:
			}
			resp, err := live.get().send(t.Context(), "GET", "/v1/inventory/"+s.sku, nil)
			if err != nil || resp.status != http.StatusOK {
				continue
			}
			var level stockDoc
			if err := json.Unmarshal(resp.body, &level); err != nil {
				t.Errorf("GET /v1/inventory/%s: %v: %s", s.sku, err, resp.body)
				continue
			}
			checked++
			if level.Reserved > level.OnHand || level.Reserved < 0 || level.Backordered < 0 || level.Incoming < 0 || level.Available != level.OnHand-level.Reserved {
				t.Errorf("GET /v1/inventory/%s during the run: %s", s.sku, resp.body)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listOrders walks GET /v1/orders to the end.
func listOrders(t *testing.T, srv *server) []orderDoc {
	t.Helper()
	var page struct {
		Items []orderDoc `json:"items"`
	}
	if err := json.Unmarshal(walkOrders(t, srv, "", 500), &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func listPurchaseOrders(t *testing.T, srv *server, query string) []purchaseOrderDoc {
	t.Helper()
	var page struct {
		Items []purchaseOrderDoc `json:"items"`
	}
	if err := json.Unmarshal(walkList(t, srv, "/v1/purchase-orders", strings.TrimPrefix(query, "?"), "purchase_order_id", 500), &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// purchaseOrderCounts compares the purchase orders listed with those each SKU's shortfalls
// call for, oldest first, and, when status is set, checks they all have it.
func purchaseOrderCounts(listed []purchaseOrderDoc, want map[string][]int64, status string) []string {
	slices.SortFunc(listed, func(a, b purchaseOrderDoc) int { return a.RaisedAt.Compare(b.RaisedAt) })
	got := map[string][]int64{}
	var diffs []string
	for _, po := range listed {
		got[po.SKU] = append(got[po.SKU], po.Quantity)
		if status != "" && po.Status != status {
			diffs = append(diffs, fmt.Sprintf("purchase order %s is %s", po.PurchaseOrderID, po.Status))
		}
		if po.Supplier != "ACME" {
			diffs = append(diffs, fmt.Sprintf("purchase order %s goes to %q", po.PurchaseOrderID, po.Supplier))
		}
	}
	for _, s := range scarceSKUs {
		if !slices.Equal(got[s.sku], want[s.sku]) {
			diffs = append(diffs, fmt.Sprintf("purchase orders of %s: quantities %v, want %v", s.sku, got[s.sku], want[s.sku]))
		}
	}
	return diffs
}

// Stock events as stored, in the fields checkStockStream folds.
type stockEvent struct {
	Quantity        int64  `json:"quantity"`
	PurchaseOrderID string `json:"purchase_order_id"`
	Delta           int64  `json:"delta"`
	ReorderPoint    int64  `json:"reorder_point"`
	ReorderQuantity int64  `json:"reorder_quantity"`
	OrderID         string `json:"order_id"`
	Requested       int64  `json:"requested"`
	Reserved        int64  `json:"reserved"`
	Backordered     int64  `json:"backordered"`
}

// checkStockStream folds a SKU's stream with the rules of docs/api.md and checks every prefix:
// reserved within on hand; each allocation reserving what is available unless older
// backorders wait; each fill going to the oldest backorder, as much as is available; each
// purchase order raised only when the forecast is below the reorder point, for the quantity
// the rule gives; and once a decision's events are all in, no backorder waiting while units
// are available and no forecast below the reorder point.
func checkStockStream(t *testing.T, sku string, events []eventstore.Event) {
	t.Helper()
	var (
		onHand, reserved, incoming int64
		queue                      []mBackorder
		policy                     *mPolicy
		open                       = map[string]int64{}
		fills                      int
	)
	backordered := func() int64 {
		var n int64
		for _, b := range queue {
			n += b.quantity
		}
		return n
	}
	fail := func(e eventstore.Event, format string, args ...any) {
		t.Errorf("stock-%s version %d (%s %s): %s", sku, e.Version, e.Type, e.Data, fmt.Sprintf(format, args...))
	}
	for i, e := range events {
		var d stockEvent
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("stock-%s version %d: %v", sku, e.Version, err)
		}
		available := onHand - reserved
		switch e.Type {
		case "StockReceived.v1":
			onHand += d.Quantity
			if d.PurchaseOrderID != "" {
				incoming -= open[d.PurchaseOrderID]
				delete(open, d.PurchaseOrderID)
			}
		case "StockAdjusted.v1":
			onHand += d.Delta
		case "ReplenishmentPolicySet.v1":
			policy = &mPolicy{point: d.ReorderPoint, quantity: d.ReorderQuantity}
		case "StockAllocated.v1":
			want := min(d.Requested, max(available, 0))
			if len(queue) > 0 {
				want = 0
			}
			if d.Reserved != want || d.Reserved+d.Backordered != d.Requested {
				fail(e, "reserves %d and backorders %d of %d with %d available and %d backorders waiting", d.Reserved, d.Backordered, d.Requested, available, len(queue))
			}
			reserved += d.Reserved
			if d.Backordered > 0 {
				queue = append(queue, mBackorder{d.OrderID, d.Backordered})
			}
		case "BackorderFilled.v1":
			fills++
			if len(queue) == 0 || queue[0].order != d.OrderID || d.Quantity != min(queue[0].quantity, available) {
				fail(e, "fills %d for %s; the oldest backorder is %v, %d available", d.Quantity, d.OrderID, queue[:min(len(queue), 1)], available)
				break
			}
			reserved += d.Quantity
			if queue[0].quantity -= d.Quantity; queue[0].quantity == 0 {
				queue = queue[1:]
			}
		case "StockReleased.v1":
			reserved -= d.Reserved
			queue = slices.DeleteFunc(queue, func(b mBackorder) bool { return b.order == d.OrderID })
		case "StockShipped.v1":
			onHand -= d.Quantity
			reserved -= d.Quantity
		case "StockRestocked.v1":
			onHand += d.Quantity
		case "ReplenishmentRequested.v1":
			forecast := available + incoming - backordered()
			if policy == nil || forecast >= policy.point || d.Quantity != max(policy.quantity, policy.point-forecast) {
				fail(e, "raises %d with a forecast of %d and policy %+v", d.Quantity, forecast, policy)
			}
			incoming += d.Quantity
			open[d.PurchaseOrderID] = d.Quantity
		default:
			fail(e, "an event a stock stream does not hold")
		}
		if reserved > onHand || reserved < 0 || onHand < 0 || incoming < 0 {
			fail(e, "after it, on hand %d, reserved %d, incoming %d", onHand, reserved, incoming)
		}
		// A decision's follow-ups come right after the event that caused them.
		if i+1 < len(events) && (events[i+1].Type == "BackorderFilled.v1" || events[i+1].Type == "ReplenishmentRequested.v1") {
			continue
		}
		if len(queue) > 0 && onHand > reserved {
			fail(e, "once decided, %d units are available while %d backorders wait", onHand-reserved, len(queue))
		}
		if policy != nil && onHand-reserved+incoming-backordered() < policy.point {
			fail(e, "once decided, the forecast %d is below the reorder point %d", onHand-reserved+incoming-backordered(), policy.point)
		}
	}
	if len(queue) > 0 || incoming != 0 {
		t.Errorf("stock-%s ends with backorders %v and %d incoming", sku, queue, incoming)
	}
	t.Logf("stock-%s: %d events folded, %d backorder fills, every prefix within bounds", sku, len(events), fills)
}

// checkInvoiceSeries checks the numbering stream: numbers 1, 2, … in order, each to another
// order, and each the number that order's document shows.
func checkInvoiceSeries(t *testing.T, events []eventstore.Event, numbers map[string]string) {
	t.Helper()
	assigned := eventsOfType[struct {
		Number  int64  `json:"number"`
		OrderID string `json:"order_id"`
	}](t, events, "InvoiceNumberAssigned.v1")
	if len(assigned) != len(events) || len(assigned) != len(numbers) {
		t.Errorf("invoice_series-INV holds %d events, %d of them assignments; %d orders have an invoice", len(events), len(assigned), len(numbers))
	}
	for i, a := range assigned {
		if a.Number != int64(i+1) || numbers[fmt.Sprintf("INV-%d", a.Number)] != a.OrderID {
			t.Errorf("invoice_series-INV assignment %d: number %d to %s; the documents give INV-%d to %s", i, a.Number, a.OrderID, a.Number, numbers[fmt.Sprintf("INV-%d", a.Number)])
		}
	}
}

// checkPurchaseOrderStreams checks that each purchase order listed was raised once and
// received once, for the quantity listed.
func checkPurchaseOrderStreams(t *testing.T, store eventstore.Store, listed []purchaseOrderDoc) {
	t.Helper()
	for _, po := range listed {
		events := readStream(t, store, "purchase_order-"+po.PurchaseOrderID)
		var types []string
		for _, e := range events {
			types = append(types, e.Type)
		}
		raised := eventsOfType[struct{ Quantity int64 }](t, events, "PurchaseOrderRaised.v1")
		if !slices.Equal(types, []string{"PurchaseOrderRaised.v1", "PurchaseOrderReceived.v1"}) || raised[0].Quantity != po.Quantity {
			t.Errorf("purchase_order-%s holds %v (%+v), want it raised for %d and received", po.PurchaseOrderID, types, raised, po.Quantity)
		}
	}
}
