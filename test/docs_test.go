package e2e

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// The read documents of docs/api.md as the tests expect them. They are the tests' own types, so a
// field the server renames or drops shows as a difference.
type (
	orderDoc struct {
		OrderID           string          `json:"order_id"`
		CustomerID        string          `json:"customer_id"`
		Channel           string          `json:"channel"`
		Currency          string          `json:"currency"`
		Status            string          `json:"status"`
		PaymentStatus     string          `json:"payment_status"`
		FulfillmentStatus string          `json:"fulfillment_status"`
		Lines             []lineDoc       `json:"lines"`
		Subtotal          int64           `json:"subtotal"`
		Tax               int64           `json:"tax"`
		Total             int64           `json:"total"`
		Paid              int64           `json:"paid"`
		Refunded          int64           `json:"refunded"`
		Outstanding       int64           `json:"outstanding"`
		InvoiceNumber     *string         `json:"invoice_number"`
		CreditNotes       []creditNoteDoc `json:"credit_notes"`
		Carrier           *string         `json:"carrier"`
		TrackingNumber    *string         `json:"tracking_number"`
		PlacedAt          time.Time       `json:"placed_at"`
		UpdatedAt         time.Time       `json:"updated_at"`
	}
	lineDoc struct {
		SKU         string `json:"sku"`
		Quantity    int64  `json:"quantity"`
		UnitPrice   int64  `json:"unit_price"`
		Reserved    int64  `json:"reserved"`
		Backordered int64  `json:"backordered"`
	}
	creditNoteDoc struct {
		CreditNoteNumber string    `json:"credit_note_number"`
		Reason           string    `json:"reason"`
		ReturnID         *string   `json:"return_id"`
		Net              int64     `json:"net"`
		Tax              int64     `json:"tax"`
		Total            int64     `json:"total"`
		IssuedAt         time.Time `json:"issued_at"`
	}
	customerDoc struct {
		CustomerID         string                `json:"customer_id"`
		Name               string                `json:"name"`
		Email              string                `json:"email"`
		Phone              string                `json:"phone"`
		PaymentPreference  string                `json:"payment_preference"`
		OrderCount         int64                 `json:"order_count"`
		LifetimeValue      int64                 `json:"lifetime_value"`
		OutstandingBalance int64                 `json:"outstanding_balance"`
		ByCurrency         map[string]balanceDoc `json:"by_currency"`
		FirstOrderAt       *time.Time            `json:"first_order_at"`
		LastOrderAt        *time.Time            `json:"last_order_at"`
		Channels           channelCounts         `json:"channels"`
		RecentOrders       []recentOrderDoc      `json:"recent_orders"`
		Erased             bool                  `json:"erased"`
	}
	balanceDoc struct {
		LifetimeValue      int64 `json:"lifetime_value"`
		OutstandingBalance int64 `json:"outstanding_balance"`
	}
	channelCounts struct {
		Web   int64 `json:"web"`
		Store int64 `json:"store"`
		Phone int64 `json:"phone"`
	}
	recentOrderDoc struct {
		OrderID  string    `json:"order_id"`
		Status   string    `json:"status"`
		Currency string    `json:"currency"`
		Total    int64     `json:"total"`
		PlacedAt time.Time `json:"placed_at"`
	}
	stockDoc struct {
		SKU             string  `json:"sku"`
		OnHand          int64   `json:"on_hand"`
		Reserved        int64   `json:"reserved"`
		Available       int64   `json:"available"`
		Backordered     int64   `json:"backordered"`
		Incoming        int64   `json:"incoming"`
		ReorderPoint    *int64  `json:"reorder_point"`
		ReorderQuantity *int64  `json:"reorder_quantity"`
		Supplier        *string `json:"supplier"`
		LowStock        bool    `json:"low_stock"`
	}
	purchaseOrderDoc struct {
		PurchaseOrderID string     `json:"purchase_order_id"`
		SKU             string     `json:"sku"`
		Supplier        string     `json:"supplier"`
		Quantity        int64      `json:"quantity"`
		Status          string     `json:"status"`
		RaisedAt        time.Time  `json:"raised_at"`
		ReceivedAt      *time.Time `json:"received_at"`
	}
	salesSummaryDoc struct {
		Currency  string `json:"currency"`
		Orders    int64  `json:"orders"`
		Invoiced  int64  `json:"invoiced"`
		Credited  int64  `json:"credited"`
		NetSales  int64  `json:"net_sales"`
		Tax       int64  `json:"tax"`
		Payments  int64  `json:"payments"`
		Refunds   int64  `json:"refunds"`
		ByChannel struct {
			Web   channelSalesDoc `json:"web"`
			Store channelSalesDoc `json:"store"`
			Phone channelSalesDoc `json:"phone"`
		} `json:"by_channel"`
	}
	channelSalesDoc struct {
		Orders   int64 `json:"orders"`
		NetSales int64 `json:"net_sales"`
	}
	salesDayDoc struct {
		Date     string `json:"date"`
		Orders   int64  `json:"orders"`
		Invoiced int64  `json:"invoiced"`
		Credited int64  `json:"credited"`
		Payments int64  `json:"payments"`
	}
	ledgerEntryDoc struct {
		EntryID  string          `json:"entry_id"`
		OrderID  string          `json:"order_id"`
		Currency string          `json:"currency"`
		Kind     string          `json:"kind"`
		Document string          `json:"document"`
		Lines    []ledgerLineDoc `json:"lines"`
		PostedAt time.Time       `json:"posted_at"`
	}
	ledgerLineDoc struct {
		Account string `json:"account"`
		Debit   int64  `json:"debit"`
		Credit  int64  `json:"credit"`
	}
	trialBalanceDoc struct {
		Currency    string          `json:"currency"`
		Accounts    []ledgerLineDoc `json:"accounts"`
		TotalDebit  int64           `json:"total_debit"`
		TotalCredit int64           `json:"total_credit"`
	}
)

// fact is what the server chose for a document: when it happened, as the API shows times
// (UTC, microseconds), and the ID of the event that recorded it.
type fact struct {
	at      time.Time
	eventID string
}

// orderFacts are the server's choices about one order, read from its stream in the event
// store: the times of its documents and the IDs of the events that post to the ledger.
type orderFacts struct {
	events                         []eventstore.Event
	types                          []string
	placed, updated                time.Time
	invoice                        fact
	payments, refunds, creditNotes map[string]fact // by payment ID, refund ID, credit-note number
}

// apiTime is t as the API shows it.
func apiTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// eventTime returns the one field of an event's data whose name ends in _at: every order and
// purchase order event carries the time it happened in such a field.
func eventTime(t testing.TB, e eventstore.Event) time.Time {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		t.Fatalf("%s/%d: %v", e.Stream, e.Version, err)
	}
	var found []time.Time
	for name, raw := range fields {
		if strings.HasSuffix(name, "_at") {
			var at time.Time
			if err := json.Unmarshal(raw, &at); err != nil {
				t.Fatalf("%s/%d: %s: %v", e.Stream, e.Version, name, err)
			}
			found = append(found, at)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s/%d (%s) has %d time fields, want 1: %s", e.Stream, e.Version, e.Type, len(found), e.Data)
	}
	return apiTime(found[0])
}

func readOrderFacts(t testing.TB, store eventstore.Store, id string) *orderFacts {
	t.Helper()
	f := &orderFacts{events: readStream(t, store, "order-"+id), payments: map[string]fact{}, refunds: map[string]fact{}, creditNotes: map[string]fact{}}
	for i, e := range f.events {
		at := eventTime(t, e)
		f.types = append(f.types, e.Type)
		if i == 0 {
			f.placed = at
		}
		f.updated = at
		var doc struct {
			PaymentID        string `json:"payment_id"`
			RefundID         string `json:"refund_id"`
			CreditNoteNumber string `json:"credit_note_number"`
		}
		if err := json.Unmarshal(e.Data, &doc); err != nil {
			t.Fatal(err)
		}
		here := fact{at, e.ID.String()}
		switch e.Type {
		case "OrderInvoiced.v1":
			f.invoice = here
		case "PaymentReceived.v1":
			f.payments[doc.PaymentID] = here
		case "RefundIssued.v1":
			f.refunds[doc.RefundID] = here
		case "CreditNoteIssued.v1":
			f.creditNotes[doc.CreditNoteNumber] = here
		}
	}
	return f
}

// poFacts returns when a purchase order was raised and, if it was, received.
func poFacts(t testing.TB, store eventstore.Store, id string) (raised time.Time, received *time.Time) {
	t.Helper()
	for _, e := range readStream(t, store, "purchase_order-"+id) {
		at := eventTime(t, e)
		switch e.Type {
		case "PurchaseOrderRaised.v1":
			raised = at
		case "PurchaseOrderReceived.v1":
			received = &at
		}
	}
	return raised, received
}

// facts holds what was read from the store for the orders a check looks at; nil facts leave
// the times zero, for comparisons that mask them.
type facts map[string]*orderFacts

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (m *model) orderDoc(o *mOrder, fs facts) orderDoc {
	d := orderDoc{
		OrderID: o.id, CustomerID: o.customer, Channel: o.channel, Currency: o.currency, Status: o.status,
		PaymentStatus: o.paymentStatus(), FulfillmentStatus: o.fulfillmentStatus(), Lines: []lineDoc{},
		Subtotal: o.subtotal, Tax: o.tax, Total: o.total, Paid: o.paid(), Refunded: o.refunded(), Outstanding: o.outstanding(),
		InvoiceNumber: optionalString(o.invoice), CreditNotes: []creditNoteDoc{},
		Carrier: optionalString(o.carrier), TrackingNumber: optionalString(o.tracking),
	}
	for _, l := range o.lines {
		d.Lines = append(d.Lines, lineDoc{l.sku, l.quantity, l.unitPrice, l.reserved, l.backordered})
	}
	f := fs[o.id]
	for _, cn := range o.creditNotes {
		doc := creditNoteDoc{CreditNoteNumber: cn.number, Reason: cn.reason, ReturnID: optionalString(cn.returnID), Net: cn.net, Tax: cn.tax, Total: cn.total}
		if f != nil {
			doc.IssuedAt = f.creditNotes[cn.number].at
		}
		d.CreditNotes = append(d.CreditNotes, doc)
	}
	if f != nil {
		d.PlacedAt, d.UpdatedAt = f.placed, f.updated
	}
	return d
}

// byPlacement returns orders newest first: by placed_at, then order_id, descending, where
// the facts are known, else in the reverse of the order they were placed (the script places
// one after the other).
func byPlacement(orders []*mOrder, fs facts) []*mOrder {
	out := slices.Clone(orders)
	index := map[string]int{}
	for i, o := range orders {
		index[o.id] = i
	}
	slices.SortStableFunc(out, func(a, b *mOrder) int {
		if fa, fb := fs[a.id], fs[b.id]; fa != nil && fb != nil {
			if c := fb.placed.Compare(fa.placed); c != 0 {
				return c
			}
			return strings.Compare(b.id, a.id)
		}
		return cmp.Compare(index[b.id], index[a.id])
	})
	return out
}

func (m *model) customerDoc(c *mCustomer, fs facts) customerDoc {
	d := customerDoc{CustomerID: c.id, Name: c.name, Email: c.email, Phone: c.phone, PaymentPreference: c.preference, RecentOrders: []recentOrderDoc{}, ByCurrency: map[string]balanceDoc{}}
	var theirs []*mOrder
	for _, o := range m.placed {
		if o.customer != c.id {
			continue
		}
		theirs = append(theirs, o)
		d.OrderCount++
		switch o.channel {
		case "web":
			d.Channels.Web++
		case "store":
			d.Channels.Store++
		case "phone":
			d.Channels.Phone++
		}
		// The script's orders are all in EUR, the base currency; an order shows in by_currency
		// once it moved money (invoiced, paid or credited).
		b, moved := d.ByCurrency[o.currency]
		if o.invoice != "" {
			d.LifetimeValue += o.total
			d.OutstandingBalance += o.outstanding()
			b.LifetimeValue += o.total
			b.OutstandingBalance += o.outstanding()
			moved = true
		}
		d.LifetimeValue -= o.credited()
		b.LifetimeValue -= o.credited()
		if moved || o.paid() != 0 || o.credited() != 0 {
			d.ByCurrency[o.currency] = b
		}
		if f := fs[o.id]; f != nil {
			if d.FirstOrderAt == nil || f.placed.Before(*d.FirstOrderAt) {
				d.FirstOrderAt = &f.placed
			}
			if d.LastOrderAt == nil || f.placed.After(*d.LastOrderAt) {
				d.LastOrderAt = &f.placed
			}
		} else {
			var zero time.Time
			d.FirstOrderAt, d.LastOrderAt = &zero, &zero
		}
	}
	for _, o := range byPlacement(theirs, fs) {
		r := recentOrderDoc{OrderID: o.id, Status: o.status, Currency: o.currency, Total: o.total}
		if f := fs[o.id]; f != nil {
			r.PlacedAt = f.placed
		}
		d.RecentOrders = append(d.RecentOrders, r)
	}
	return d
}

func (m *model) stockDoc(s *mStock) stockDoc {
	d := stockDoc{SKU: s.sku, OnHand: s.onHand, Reserved: s.reserved, Available: s.available(), Backordered: s.backordered(), Incoming: s.incoming}
	if p := s.policy; p != nil {
		d.ReorderPoint, d.ReorderQuantity, d.Supplier = &p.point, &p.quantity, &p.supplier
		d.LowStock = s.available() <= p.point
	}
	return d
}

func (m *model) poDoc(t testing.TB, store eventstore.Store, po *mPO) purchaseOrderDoc {
	d := purchaseOrderDoc{PurchaseOrderID: po.id, SKU: po.sku, Supplier: po.supplier, Quantity: po.quantity, Status: "open"}
	if po.received {
		d.Status = "received"
	}
	if store != nil {
		d.RaisedAt, d.ReceivedAt = poFacts(t, store, po.id)
	} else if po.received {
		d.ReceivedAt = &time.Time{}
	}
	return d
}

// ledgerEntries are the journal entries of an order, as the chart of docs/api.md posts them, oldest
// first (ties by entry ID).
func (m *model) ledgerEntries(o *mOrder, f *orderFacts) []ledgerEntryDoc {
	dr := func(account string, amount int64) ledgerLineDoc {
		return ledgerLineDoc{Account: account, Debit: amount}
	}
	cr := func(account string, amount int64) ledgerLineDoc {
		return ledgerLineDoc{Account: account, Credit: amount}
	}
	var out []ledgerEntryDoc
	entry := func(kind, document string, at fact, lines ...ledgerLineDoc) {
		out = append(out, ledgerEntryDoc{EntryID: at.eventID, OrderID: o.id, Currency: o.currency, Kind: kind, Document: document, Lines: lines, PostedAt: at.at})
	}
	if o.invoice != "" {
		entry("invoice", o.invoice, f.invoice, dr("accounts_receivable", o.total), cr("revenue", o.subtotal), cr("tax_payable", o.tax))
	}
	for _, p := range o.payments {
		entry("payment", p.id, f.payments[p.id], dr("cash", p.amount), cr("accounts_receivable", p.amount))
	}
	for _, cn := range o.creditNotes {
		entry("credit_note", cn.number, f.creditNotes[cn.number], dr("revenue", cn.net), dr("tax_payable", cn.tax), cr("accounts_receivable", cn.total))
	}
	for _, r := range o.refunds {
		entry("refund", r.id, f.refunds[r.id], dr("accounts_receivable", r.amount), cr("cash", r.amount))
	}
	sortEntries(out)
	return out
}

func sortEntries(entries []ledgerEntryDoc) {
	slices.SortFunc(entries, func(a, b ledgerEntryDoc) int {
		if c := a.PostedAt.Compare(b.PostedAt); c != 0 {
			return c
		}
		return strings.Compare(a.EntryID, b.EntryID)
	})
}

// trialBalance sums every posting of the model's documents per account.
func (m *model) trialBalance() trialBalanceDoc {
	sums := map[string]*ledgerLineDoc{}
	accounts := []string{"accounts_receivable", "cash", "revenue", "tax_payable"}
	for _, a := range accounts {
		sums[a] = &ledgerLineDoc{Account: a}
	}
	for _, o := range m.placed {
		if o.invoice != "" {
			sums["accounts_receivable"].Debit += o.total
			sums["revenue"].Credit += o.subtotal
			sums["tax_payable"].Credit += o.tax
		}
		sums["cash"].Debit += o.paid()
		sums["accounts_receivable"].Credit += o.paid()
		for _, cn := range o.creditNotes {
			sums["revenue"].Debit += cn.net
			sums["tax_payable"].Debit += cn.tax
			sums["accounts_receivable"].Credit += cn.total
		}
		sums["accounts_receivable"].Debit += o.refunded()
		sums["cash"].Credit += o.refunded()
	}
	tb := trialBalanceDoc{Currency: "EUR"}
	for _, a := range accounts {
		tb.Accounts = append(tb.Accounts, *sums[a])
		tb.TotalDebit += sums[a].Debit
		tb.TotalCredit += sums[a].Credit
	}
	return tb
}

// period bounds the sales routes: from inclusive, to exclusive, a zero bound open; compared
// in microseconds, as the API keeps times.
type period struct{ from, to time.Time }

func (p period) holds(at time.Time) bool {
	return (p.from.IsZero() || at.UnixMicro() >= p.from.UnixMicro()) && (p.to.IsZero() || at.UnixMicro() < p.to.UnixMicro())
}

// sales works out the summary and the days of a period from each document's own date.
func (m *model) sales(fs facts, p period) (salesSummaryDoc, []salesDayDoc) {
	sum := salesSummaryDoc{Currency: "EUR"}
	days := map[string]*salesDayDoc{}
	day := func(at time.Time) *salesDayDoc {
		date := at.UTC().Format(time.DateOnly)
		if days[date] == nil {
			days[date] = &salesDayDoc{Date: date}
		}
		return days[date]
	}
	for _, o := range m.placed {
		f := fs[o.id]
		channel := map[string]*channelSalesDoc{"web": &sum.ByChannel.Web, "store": &sum.ByChannel.Store, "phone": &sum.ByChannel.Phone}[o.channel]
		if p.holds(f.placed) {
			sum.Orders++
			channel.Orders++
			day(f.placed).Orders++
		}
		if o.invoice != "" && p.holds(f.invoice.at) {
			sum.Invoiced += o.total
			sum.Tax += o.tax
			channel.NetSales += o.total
			day(f.invoice.at).Invoiced += o.total
		}
		for _, cn := range o.creditNotes {
			if at := f.creditNotes[cn.number].at; p.holds(at) {
				sum.Credited += cn.total
				sum.Tax -= cn.tax
				channel.NetSales -= cn.total
				day(at).Credited += cn.total
			}
		}
		for _, pay := range o.payments {
			if at := f.payments[pay.id].at; p.holds(at) {
				sum.Payments += pay.amount
				day(at).Payments += pay.amount
			}
		}
		for _, r := range o.refunds {
			if at := f.refunds[r.id].at; p.holds(at) {
				sum.Refunds += r.amount
				day(at)
			}
		}
	}
	sum.NetSales = sum.Invoiced - sum.Credited
	out := []salesDayDoc{}
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date < out[j].Date })
	return sum, out
}

// canonical decodes a JSON document (raw bytes, or any value to encode) into plain values with
// exact numbers, every RFC 3339 UTC time in one form, or masked when maskTimes is set, so two
// documents compare with reflect.DeepEqual.
func canonical(t testing.TB, doc any, maskTimes bool) any {
	t.Helper()
	raw, ok := doc.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				v[k] = walk(x)
			}
		case []any:
			for i, x := range v {
				v[i] = walk(x)
			}
		case string:
			// Only UTC times are rewritten: an offset shows as a difference.
			if at, err := time.Parse(time.RFC3339Nano, v); err == nil && strings.HasSuffix(v, "Z") {
				if maskTimes {
					return "<time>"
				}
				return at.UTC().Format(time.RFC3339Nano)
			}
		}
		return v
	}
	return walk(v)
}

// jsonDiff lists where got differs from want, by path.
func jsonDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", path, short(got))}
		}
		var keys []string
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			gv, inGot := g[k]
			wv, inWant := w[k]
			switch {
			case !inGot:
				out = append(out, fmt.Sprintf("%s.%s: missing, want %s", path, k, short(wv)))
			case !inWant:
				out = append(out, fmt.Sprintf("%s.%s: unexpected field, got %s", path, k, short(gv)))
			default:
				out = append(out, jsonDiff(path+"."+k, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an array", path, short(got))}
		}
		var out []string
		if len(g) != len(w) {
			out = append(out, fmt.Sprintf("%s: %d items, want %d", path, len(g), len(w)))
		}
		for i := range min(len(g), len(w)) {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: got %s, want %s", path, short(got), short(want))}
	}
	return nil
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// compareDoc lists the differences between the document got and the one wanted.
func compareDoc(t testing.TB, got []byte, want any, maskTimes bool) []string {
	t.Helper()
	return jsonDiff("$", canonical(t, want, maskTimes), canonical(t, got, maskTimes))
}

// getDoc makes a GET that must answer 200 and returns the body.
func (s *server) getDoc(t testing.TB, path string) []byte {
	t.Helper()
	resp := s.do(t, "GET", path, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200: %s", path, resp.status, resp.body)
	}
	return resp.body
}

// assertDoc fails the test unless GET path answers the document wanted, whole.
func (s *server) assertDoc(t testing.TB, path string, want any) {
	t.Helper()
	if diffs := compareDoc(t, s.getDoc(t, path), want, false); len(diffs) > 0 {
		t.Errorf("GET %s differs from what was sent implies:\n  %s", path, strings.Join(limit(diffs, 25), "\n  "))
	}
}

func limit(lines []string, n int) []string {
	if len(lines) > n {
		return append(lines[:n:n], fmt.Sprintf("… %d more", len(lines)-n))
	}
	return lines
}

// eventually polls check until it reports no difference, and fails the test with the last
// differences if the automation deadline passes first.
func eventually(t testing.TB, what string, check func() []string) {
	t.Helper()
	eventuallyWithin(t, automationDeadline, what, check)
}

// eventuallyWithin is eventually with a deadline of its own.
func eventuallyWithin(t testing.TB, deadline time.Duration, what string, check func() []string) {
	t.Helper()
	var diffs []string
	if !waitFor(deadline, func() bool { diffs = check(); return len(diffs) == 0 }) {
		t.Fatalf("%s: still differs after %s:\n  %s", what, deadline, strings.Join(limit(diffs, 25), "\n  "))
	}
}
