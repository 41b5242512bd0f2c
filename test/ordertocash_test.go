package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The catalogue of TestOrderToCash: S-BLUE has a replenishment policy, S-GRN is scarce.
const (
	red   = "S-RED"
	blue  = "S-BLUE"
	green = "S-GRN"
)

// TestOrderToCash drives the order-to-cash cycle of issue #5 one step at a time — a full
// cycle, an over-order served by a purchase order, cancellations before and after invoicing,
// a partial return with a refund — and after each scenario compares the orders, stock,
// purchase orders, ledger entries (invoices, credit notes) and trial balance, whole, with what
// the requests imply. It ends with issue #4: every read route over the resulting history.
func TestOrderToCash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		sc := newScript(t, events)
		for _, c := range []*mCustomer{
			{id: "C-ANN", name: "Ann Lee", email: "ann@example.com", phone: "+1 555 0100", preference: "card"},
			{id: "C-BOB", name: "Bob Ray", email: "bob@example.com"},
			{id: "C-CAT", name: "Cat Moss", email: "cat@example.com", preference: "invoice"},
			{id: "C-DAN", name: "Dan Oak", email: "dan@example.com", preference: "bank_transfer"},
		} {
			sc.customer(t, c)
		}
		sc.receive(t, red, 100)
		sc.receive(t, blue, 10)
		sc.receive(t, green, 3)
		sc.policy(t, blue, mPolicy{point: 5, quantity: 20, supplier: "ACME"})
		m := sc.m
		// expect checks the script did what the scenario says; the server's side of it is
		// checked against the model.
		expect := func(t *testing.T, what string, got, want any) {
			t.Helper()
			if got != want {
				t.Fatalf("the script went wrong: %s is %v, want %v", what, got, want)
			}
		}

		steps := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"full cycle", func(t *testing.T) {
				o := sc.place(t, "O-FULL", "C-ANN", "web", 1950, line(red, 2, 1999), line(blue, 1, 500))
				// 4498 × 19.5% = 877.11 → 877.
				expect(t, "O-FULL", o.status+" "+o.invoice, "confirmed INV-1")
				expect(t, "O-FULL's total", o.total, int64(5375))
				sc.pay(t, o, 2000)
				expect(t, "O-FULL's payment status", o.paymentStatus(), "partially_paid")
				sc.pay(t, o, 3375)
				sc.ship(t, o)
				sc.deliver(t, o)
				expect(t, "O-FULL", o.status, "completed")
				sc.check(t, o)
			}},
			{"over-order backordered, purchase order received, confirmed", func(t *testing.T) {
				// 9 of S-BLUE are available: 21 are backordered, and the forecast 0 + 0 − 21
				// is below the reorder point 5: a purchase order of max(20, 5 + 21) = 26.
				o := sc.place(t, "O-BACK", "C-BOB", "phone", 700, line(blue, 30, 250))
				expect(t, "O-BACK", o.status, "backordered")
				expect(t, "purchase orders raised", len(m.pos), 1)
				expect(t, "the purchase order's quantity", m.pos[0].quantity, int64(26))
				sc.check(t, o)
				sc.receivePO(t, m.pos[0])
				expect(t, "O-BACK", o.status+" "+o.invoice, "confirmed INV-2")
				sc.check(t, o)
				resp := sc.srv.do(t, "POST", "/v1/purchase-orders/"+m.pos[0].id+"/receipt", map[string]any{})
				if resp.status != http.StatusConflict {
					t.Errorf("a second receipt of %s: status %d, want 409: %s", m.pos[0].id, resp.status, resp.body)
				}
				checkProblem(t, resp, http.StatusConflict, "purchase_order_already_received", m.pos[0].id)
				sc.check(t, o)
			}},
			{"cancellation before invoicing", func(t *testing.T) {
				// S-GRN has 3: O-CXL1 reserves them and waits for 2; O-WAIT queues behind it.
				// Cancelling O-CXL1 releases its 3 to O-WAIT, which is confirmed.
				cancelled := sc.place(t, "O-CXL1", "C-BOB", "store", 0, line(green, 5, 1000))
				waiting := sc.place(t, "O-WAIT", "C-ANN", "web", 1000, line(green, 2, 800))
				expect(t, "O-WAIT", waiting.status, "backordered")
				sc.cancel(t, cancelled)
				expect(t, "O-CXL1's invoice", cancelled.invoice, "")
				expect(t, "O-CXL1's credit notes", len(cancelled.creditNotes), 0)
				expect(t, "O-WAIT", waiting.status+" "+waiting.invoice, "confirmed INV-3")
				expect(t, "S-GRN available", m.stock[green].available(), int64(1))
				sc.check(t, cancelled, waiting)
			}},
			{"cancellation after invoicing", func(t *testing.T) {
				o := sc.place(t, "O-CXL2", "C-ANN", "web", 2000, line(red, 1, 5000))
				expect(t, "O-CXL2", o.invoice, "INV-4")
				sc.pay(t, o, 3000)
				sc.cancel(t, o)
				expect(t, "O-CXL2's credit notes", len(o.creditNotes), 1)
				expect(t, "O-CXL2's credit note", o.creditNotes[0], mCreditNote{number: "CN-1", reason: "cancellation", net: 5000, tax: 1000, total: 6000})
				expect(t, "O-CXL2's outstanding", o.outstanding(), int64(-3000))
				sc.refund(t, o, 3000)
				expect(t, "O-CXL2's payment status", o.paymentStatus(), "refunded")
				sc.check(t, o)
			}},
			{"partial return with refund", func(t *testing.T) {
				// S-BLUE falls to 3 available: below the reorder point, so a second purchase
				// order of max(20, 5 − 3) = 20 is raised, and stays open.
				o := sc.place(t, "O-RET", "C-DAN", "store", 2100, line(red, 4, 1250), line(blue, 2, 333))
				expect(t, "O-RET", o.invoice, "INV-5")
				expect(t, "purchase orders raised", len(m.pos), 2)
				expect(t, "the second purchase order's quantity", m.pos[1].quantity, int64(20))
				sc.pay(t, o, o.total)
				sc.ship(t, o)
				sc.deliver(t, o)
				expect(t, "O-RET", o.status, "completed")
				sc.returnItems(t, o, map[string]int64{red: 1, blue: 1})
				// 1583 × 21% = 332.43 → 332.
				expect(t, "O-RET's credit note", o.creditNotes[0].number+" "+o.creditNotes[0].reason, "CN-2 return")
				expect(t, "O-RET's credit note total", o.creditNotes[0].total, int64(1915))
				sc.refund(t, o, 1915)
				expect(t, "O-RET's fulfilment", o.fulfillmentStatus(), "partially_returned")
				sc.check(t, o)
			}},
			{"read routes", func(t *testing.T) {
				// More orders for the lists: a tax of exactly half a cent (125 × 10% = 12.5
				// → 13), a tax of 0, several channels per customer.
				half := sc.place(t, "O-HALF", "C-DAN", "phone", 1000, line(red, 1, 125))
				expect(t, "O-HALF's tax", half.tax, int64(13))
				sc.place(t, "O-X1", "C-DAN", "web", 0, line(red, 1, 999))
				sc.place(t, "O-X2", "C-BOB", "store", 500, line(red, 2, 100), line(green, 1, 50))
				sc.srv.expect(t, http.StatusOK, "PUT", "/v1/customers/C-ANN", map[string]any{"email": "ann.lee@example.com", "name": "Ann Lee-Park"})
				m.customers["C-ANN"].email, m.customers["C-ANN"].name = "ann.lee@example.com", "Ann Lee-Park"
				checkReadRoutes(t, sc)
			}},
		}
		for _, step := range steps {
			if !t.Run(step.name, step.run) {
				return // what follows builds on this step
			}
		}
	})
}

// checkReadRoutes compares every read route of docs/api.md, whole, with what the script's
// requests imply (issue #4).
func checkReadRoutes(t *testing.T, sc *script) {
	at := sc.caughtUp(t)
	m, srv := sc.m, sc.srv
	fs := sc.facts(t)

	for _, o := range m.placed {
		srv.assertDoc(t, at("/v1/orders/"+o.id), m.orderDoc(o, fs))
		f := fs[o.id]
		if !slices.Equal(f.types, o.types) {
			t.Errorf("stream order-%s holds %v, want %v", o.id, f.types, o.types)
		}
		type historyEvent struct {
			Position   string          `json:"position"`
			Version    uint64          `json:"version"`
			Type       string          `json:"type"`
			RecordedAt time.Time       `json:"recorded_at"`
			Actor      *string         `json:"actor"`
			Data       json.RawMessage `json:"data"`
		}
		var history []historyEvent
		for _, e := range f.events {
			var actor *string
			if e.Metadata.Actor != "" {
				actor = &e.Metadata.Actor
			}
			history = append(history, historyEvent{e.Position.String(), e.Version, e.Type, e.RecordedAt.UTC(), actor, json.RawMessage(e.Data)})
		}
		srv.assertDoc(t, at("/v1/orders/"+o.id+"/history"), map[string]any{"events": history})
		srv.assertDoc(t, at("/v1/ledger/entries?order_id="+o.id), map[string]any{"items": nonNil(m.ledgerEntries(o, f)), "next_cursor": nil})
	}

	t.Run("orders list", func(t *testing.T) {
		for _, c := range []struct {
			query string
			keep  func(o *mOrder) bool
		}{
			{"", func(*mOrder) bool { return true }},
			{"customer_id=C-ANN", func(o *mOrder) bool { return o.customer == "C-ANN" }},
			{"customer_id=C-CAT", func(o *mOrder) bool { return false }},
			{"status=completed", func(o *mOrder) bool { return o.status == "completed" }},
			{"status=cancelled", func(o *mOrder) bool { return o.status == "cancelled" }},
			{"status=pending", func(o *mOrder) bool { return false }},
			{"channel=phone", func(o *mOrder) bool { return o.channel == "phone" }},
			{"customer_id=C-BOB&channel=store", func(o *mOrder) bool { return o.customer == "C-BOB" && o.channel == "store" }},
			{"customer_id=C-ANN&status=confirmed&channel=web", func(o *mOrder) bool {
				return o.customer == "C-ANN" && o.status == "confirmed" && o.channel == "web"
			}},
		} {
			var want []orderDoc
			for _, o := range m.placed {
				if c.keep(o) {
					want = append(want, m.orderDoc(o, fs))
				}
			}
			want = sortedBy(nonNil(want), func(d orderDoc) string { return d.OrderID })
			for _, pageSize := range []int{0, 1, 2, 500} {
				got := walkOrders(t, srv, c.query, pageSize)
				if diffs := compareDoc(t, sortedItems(t, got, "order_id"), want, false); len(diffs) > 0 {
					t.Errorf("GET /v1/orders?%s, pages of %d, walked to the end, differs:\n  %v", c.query, pageSize, limit(diffs, 25))
				}
			}
		}
	})

	t.Run("customers", func(t *testing.T) {
		var all []customerDoc
		for _, c := range m.customers {
			want := m.customerDoc(c, fs)
			if len(want.RecentOrders) > 10 {
				t.Fatalf("the script gives %s more than 10 orders; docs/api.md does not say how many recent_orders lists", c.id)
			}
			srv.assertDoc(t, at("/v1/customers/"+c.id), want)
			all = append(all, want)
		}
		// Best first: the order of the values is docs/api.md's; among equal values it is the
		// server's choice, so the comparison is of the values and of the set.
		raw := srv.getDoc(t, at("/v1/customers?sort=lifetime_value"))
		var whole struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(raw, &whole); err != nil {
			t.Fatal(err)
		}
		walked := walkList(t, srv, "/v1/customers", strings.TrimPrefix(at("?sort=lifetime_value"), "?"), "customer_id", 1)
		if diffs := compareDoc(t, walked, map[string]any{"items": whole.Items}, false); len(diffs) > 0 {
			t.Errorf("GET /v1/customers?sort=lifetime_value in pages of 1 differs from one page:\n  %v", limit(diffs, 25))
		}
		var page struct {
			Items []customerDoc `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(page.Items); i++ {
			if page.Items[i].LifetimeValue > page.Items[i-1].LifetimeValue {
				t.Errorf("GET /v1/customers?sort=lifetime_value: %s (%d) after %s (%d)", page.Items[i].CustomerID, page.Items[i].LifetimeValue, page.Items[i-1].CustomerID, page.Items[i-1].LifetimeValue)
			}
		}
		byID := func(d customerDoc) string { return d.CustomerID }
		if diffs := compareDoc(t, sortedItems(t, raw, "customer_id"), sortedBy(all, byID), false); len(diffs) > 0 {
			t.Errorf("GET /v1/customers?sort=lifetime_value differs:\n  %v", limit(diffs, 25))
		}
		slices.SortFunc(all, func(a, b customerDoc) int { return int(b.LifetimeValue - a.LifetimeValue) })
		if all[1].LifetimeValue == all[2].LifetimeValue {
			t.Fatalf("the script gives the second and third customers the same lifetime value")
		}
		var firstTwo struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(srv.getDoc(t, at("/v1/customers?limit=2")), &firstTwo); err != nil || firstTwo.NextCursor == nil {
			t.Fatalf("GET /v1/customers?limit=2: %v, next_cursor %v; want a page with a next_cursor", err, firstTwo.NextCursor)
		}
		if diffs := compareDoc(t, []byte(mustJSON(map[string]any{"items": firstTwo.Items})), map[string]any{"items": all[:2]}, false); len(diffs) > 0 {
			t.Errorf("GET /v1/customers?limit=2 differs:\n  %v", limit(diffs, 25))
		}
	})

	t.Run("inventory and purchase orders", func(t *testing.T) {
		var all, low, notLow []stockDoc
		for _, s := range m.stock {
			d := m.stockDoc(s)
			srv.assertDoc(t, at("/v1/inventory/"+s.sku), d)
			all = append(all, d)
			if d.LowStock {
				low = append(low, d)
			} else {
				notLow = append(notLow, d)
			}
		}
		if len(low) == 0 || len(notLow) == 0 {
			t.Fatalf("the script leaves %d SKUs low on stock and %d not: the filter would not be tested", len(low), len(notLow))
		}
		bySKU := func(d stockDoc) string { return d.SKU }
		for query, want := range map[string][]stockDoc{"": all, "?low_stock=true": low, "?low_stock=false": notLow} {
			walked := walkList(t, srv, "/v1/inventory", strings.TrimPrefix(at("?"+strings.TrimPrefix(query, "?")), "?"), "sku", 1)
			if diffs := compareDoc(t, walked, map[string]any{"items": sortedBy(want, bySKU)}, false); len(diffs) > 0 {
				t.Errorf("GET /v1/inventory%s differs:\n  %v", query, limit(diffs, 25))
			}
		}
		if diffs := sc.purchaseOrderDiffs(t, sc.store, at("/v1/purchase-orders")); len(diffs) > 0 {
			t.Errorf("GET /v1/purchase-orders differs:\n  %v", limit(diffs, 25))
		}
		filters := map[string]func(po *mPO) bool{
			"?sku=" + blue:                  func(po *mPO) bool { return po.sku == blue },
			"?sku=" + red:                   func(po *mPO) bool { return false },
			"?status=open":                  func(po *mPO) bool { return !po.received },
			"?status=received":              func(po *mPO) bool { return po.received },
			"?sku=" + blue + "&status=open": func(po *mPO) bool { return po.sku == blue && !po.received },
		}
		for query, keep := range filters {
			want := []purchaseOrderDoc{}
			for _, po := range m.pos {
				if keep(po) {
					want = append(want, m.poDoc(t, sc.store, po))
				}
			}
			want = sortedBy(want, func(d purchaseOrderDoc) string { return d.PurchaseOrderID })
			walked := walkList(t, srv, "/v1/purchase-orders", strings.TrimPrefix(at("?"+strings.TrimPrefix(query, "?")), "?"), "purchase_order_id", 1)
			if diffs := compareDoc(t, sortedItems(t, walked, "purchase_order_id"), want, false); len(diffs) > 0 {
				t.Errorf("GET /v1/purchase-orders%s differs:\n  %v", query, limit(diffs, 25))
			}
		}
	})

	t.Run("sales", func(t *testing.T) {
		// Every document's date, to bound periods by days around them.
		var first, last time.Time
		for _, f := range fs {
			for _, e := range f.events {
				at := eventTime(t, e)
				if first.IsZero() || at.Before(first) {
					first = at
				}
				if at.After(last) {
					last = at
				}
			}
		}
		day := func(at time.Time, plus int) string { return at.AddDate(0, 0, plus).Format(time.DateOnly) }
		midnight := func(date string) time.Time { d, _ := time.Parse(time.DateOnly, date); return d }
		// A split inside the history: the invoice of O-CXL2, and the return's credit note.
		split, later := fs["O-CXL2"].invoice.at, fs["O-RET"].creditNotes["CN-2"].at
		for query, p := range map[string]period{
			"":                      {},
			"from=" + day(first, 0): {},
			"from=" + day(first, 0) + "&to=" + day(last, 0): {},
			"from=" + day(last, 1):                          {from: midnight(day(last, 1))},
			"to=" + day(first, -1):                          {to: midnight(day(first, 0))},
			"from=" + split.Format(time.RFC3339Nano):        {from: split},
			"to=" + split.Format(time.RFC3339Nano):          {to: split},
			"from=" + split.Format(time.RFC3339Nano) + "&to=" + later.Format(time.RFC3339Nano): {from: split, to: later},
		} {
			q := url.Values{}
			if query != "" {
				parsed, err := url.ParseQuery(query)
				if err != nil {
					t.Fatal(err)
				}
				q = parsed
			}
			summary, days := m.sales(fs, p)
			srv.assertDoc(t, at("/v1/sales/summary?"+q.Encode()), summary)
			srv.assertDoc(t, at("/v1/sales/daily?"+q.Encode()), map[string]any{"currency": "EUR", "days": days})
		}
	})

	t.Run("ledger", func(t *testing.T) {
		var all []ledgerEntryDoc
		for _, o := range m.placed {
			all = append(all, m.ledgerEntries(o, fs[o.id])...)
		}
		sortEntries(all)
		if len(all) >= 50 {
			t.Fatalf("the script posts %d entries; the listing is compared on one page of 50", len(all))
		}
		srv.assertDoc(t, at("/v1/ledger/entries"), map[string]any{"items": all, "next_cursor": nil})
		tb := m.trialBalance()
		if tb.TotalDebit != tb.TotalCredit {
			t.Fatalf("the test's own trial balance does not balance: %+v", tb)
		}
		srv.assertDoc(t, at("/v1/ledger/trial-balance"), tb)
	})

	t.Run("bad parameters", func(t *testing.T) {
		doc := loadOpenAPI(t)
		for _, c := range []struct{ path, param string }{
			{"/v1/orders?limit=0", "limit"},
			{"/v1/orders?limit=501", "limit"},
			{"/v1/orders?limit=ten", "limit"},
			{"/v1/orders?limit=2&limit=3", "limit"},
			{"/v1/orders?status=shipping", "status"},
			{"/v1/orders?channel=fax", "channel"},
			{"/v1/orders?customer_id=bad!id", "customer_id"},
			{"/v1/orders?cursor=not-a-cursor", "cursor"},
			{"/v1/orders?colour=red", "colour"},
			{"/v1/orders?after=yesterday", "after"},
			{"/v1/orders/O-FULL?after=12", "after"},
			{"/v1/orders/O-FULL?as_of=noon", "as_of"},
			{"/v1/orders/O-FULL/history?after=x-y", "after"},
			{"/v1/customers?sort=name", "sort"},
			{"/v1/customers?limit=-1", "limit"},
			{"/v1/customers/C-ANN?after=-", "after"},
			{"/v1/inventory?low_stock=yes", "low_stock"},
			{"/v1/inventory/S-RED?as_of=2025-13-01", "as_of"},
			{"/v1/inventory/S-RED?after=1-2-3", "after"},
			{"/v1/purchase-orders?status=closed", "status"},
			{"/v1/purchase-orders?sku=bad!sku", "sku"},
			{"/v1/sales/summary?from=last-week", "from"},
			{"/v1/sales/summary?to=2025-02-30", "to"},
			{"/v1/sales/summary?from=2025-03-02&to=2025-03-01", "from"},
			{"/v1/sales/daily?from=03/01/2025", "from"},
			{"/v1/sales/daily?after=9", "after"},
			{"/v1/ledger/entries?order_id=bad!id", "order_id"},
			{"/v1/ledger/trial-balance?after=1-", "after"},
			{"/v1/ledger/trial-balance?account=cash", "account"},
		} {
			resp := srv.do(t, "GET", c.path, nil)
			if resp.status != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 400: %s", c.path, resp.status, resp.body)
				continue
			}
			checkProblem(t, resp, http.StatusBadRequest, "invalid_input", c.param)
			doc.checkDocumented(t, "GET", c.path, http.StatusBadRequest, "invalid_input")
		}
		for _, c := range []struct{ path, code string }{
			{"/v1/orders/NOPE", "order_not_found"},
			{"/v1/orders/NOPE/history", "order_not_found"},
			{"/v1/customers/NOPE", "customer_not_found"},
			{"/v1/inventory/NOPE", "sku_not_found"},
		} {
			resp := srv.do(t, "GET", c.path, nil)
			if resp.status != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404: %s", c.path, resp.status, resp.body)
				continue
			}
			checkProblem(t, resp, http.StatusNotFound, c.code, "NOPE")
			doc.checkDocumented(t, "GET", c.path, http.StatusNotFound, c.code)
		}
	})
}

// walkOrders follows GET /v1/orders?query from the first page to the one whose next_cursor
// is null, pageSize at a time (0: the default), and returns every item as one list answer.
// It fails the test on a repeated order, a page over the size, or an empty page that is not
// the only one.
func walkOrders(t *testing.T, srv *server, query string, pageSize int) []byte {
	t.Helper()
	return walkList(t, srv, "/v1/orders", query, "order_id", pageSize)
}

// walkList is walkOrders for any paged list, whose items are identified by key.
func walkList(t *testing.T, srv *server, list, query, key string, pageSize int) []byte {
	t.Helper()
	var (
		items  []json.RawMessage
		seen   = map[string]bool{}
		cursor string
	)
	for pages := 1; ; pages++ {
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		if pageSize > 0 {
			q.Set("limit", strconv.Itoa(pageSize))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		path := list + "?" + q.Encode()
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		raw := srv.getDoc(t, path)
		if err := json.Unmarshal(raw, &page); err != nil || page.Items == nil {
			t.Fatalf("GET %s: not a page (%v): %s", path, err, raw)
		}
		if pageSize > 0 && len(page.Items) > pageSize {
			t.Errorf("GET %s: %d items on a page of %d", path, len(page.Items), pageSize)
		}
		if len(page.Items) == 0 && (pages > 1 || page.NextCursor != nil) {
			t.Errorf("GET %s: page %d is empty", path, pages)
		}
		for _, item := range page.Items {
			var o map[string]any
			if err := json.Unmarshal(item, &o); err != nil {
				t.Fatal(err)
			}
			id, _ := o[key].(string)
			if seen[id] {
				t.Errorf("GET %s?%s, pages of %d: %s is listed twice", list, query, pageSize, id)
			}
			seen[id] = true
			items = append(items, item)
		}
		if page.NextCursor == nil {
			break
		}
		if pages > 100 {
			t.Fatalf("GET %s?%s: more than 100 pages", list, query)
		}
		cursor = *page.NextCursor
	}
	out, err := json.Marshal(map[string]any{"items": nonNil(items)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
