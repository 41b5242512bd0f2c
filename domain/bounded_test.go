package domain

import (
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The state of a stream that lives for years keeps what its decisions need now, not its
// history. These properties hold the bounded state to the unbounded one it replaced (the same
// fold remembering everything): on random histories, every command that is not a repeat of
// one decided before is decided alike, however small the window; and while a history is
// shorter than the window, repeats too. What the window forgets is only what a repeat older
// than it would need, and those the command handler recognises by their event IDs.

var boundedAt = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// stockPair folds one history twice: into the bounded state and into the unbounded one.
type stockPair struct {
	t         *rapid.T
	remember  int
	bounded   Stock
	unbounded Stock
	open      map[string]bool // orders that asked and have not been closed
	closed    map[string]bool // orders shipped, or released after asking
	tombs     int             // releases that came before their order asked
}

func (p *stockPair) apply(events []Event) {
	for _, e := range events {
		p.bounded = evolveStock(p.bounded, e, p.remember)
		p.unbounded = evolveStock(p.unbounded, e, math.MaxInt)
		switch e := e.(type) {
		case StockAllocated:
			p.open[e.OrderID] = true
		case StockReleased:
			if p.open[e.OrderID] {
				delete(p.open, e.OrderID)
				p.closed[e.OrderID] = true
			} else {
				p.tombs++
			}
		case StockShipped:
			if p.bounded.reservations[e.OrderID] == 0 && !p.bounded.waiting(e.OrderID) {
				delete(p.open, e.OrderID)
				p.closed[e.OrderID] = true
			}
		}
	}
}

// decide decides cmd on both states, requires the same answer, and folds it in.
func stockDecide[C any](p *stockPair, name string, decide func(Stock, C) ([]Event, error), cmd C) {
	got, gotErr := decide(p.bounded, cmd)
	want, wantErr := decide(p.unbounded, cmd)
	if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		p.t.Fatalf("%s %+v: bounded state decided %v, %v; unbounded %v, %v", name, cmd, got, gotErr, want, wantErr)
	}
	if gotErr == nil {
		p.apply(got)
	}
}

func (p *stockPair) check() {
	// Carry on from the bounded state as its snapshot decodes, which must encode alike.
	data, err := p.bounded.MarshalSnapshot()
	if err != nil {
		p.t.Fatal(err)
	}
	var decoded Stock
	if err := decoded.UnmarshalSnapshot(data); err != nil {
		p.t.Fatal(err)
	}
	if again, _ := decoded.MarshalSnapshot(); string(again) != string(data) {
		p.t.Fatalf("snapshot %s decodes to a state that encodes as %s", data, again)
	}
	if decoded.Remembered() != p.bounded.Remembered() {
		p.t.Fatalf("snapshot remembers %d, the state %d", decoded.Remembered(), p.bounded.Remembered())
	}
	p.bounded = decoded
	b, u := p.bounded, p.unbounded
	if b.OnHand != u.OnHand || b.Reserved != u.Reserved || b.Incoming != u.Incoming || b.Replenishments != u.Replenishments ||
		!reflect.DeepEqual(b.Backorders(), u.Backorders()) || !reflect.DeepEqual(b.reservations, u.reservations) {
		p.t.Fatalf("figures differ: bounded %+v, unbounded %+v", b, u)
	}
	if len(b.closedOrders) > p.remember || len(b.restocks) > p.remember || len(b.receipts) > p.remember {
		p.t.Fatalf("remembers more than %d: %d closed orders, %d returns, %d receipts", p.remember, len(b.closedOrders), len(b.restocks), len(b.receipts))
	}
	if limit := len(p.open) + p.remember; len(b.asked) > limit || len(b.shipped) > limit {
		p.t.Fatalf("remembers %d asked and %d shipped orders with %d open and a window of %d", len(b.asked), len(b.shipped), len(p.open), p.remember)
	}
	if limit := p.remember + p.tombs; len(b.released) > limit {
		p.t.Fatalf("remembers %d releases with %d before asking and a window of %d", len(b.released), p.tombs, p.remember)
	}
}

func TestBoundedStockDecidesAsUnbounded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		long := rapid.Bool().Draw(t, "long")
		remember := rapid.IntRange(1, 4).Draw(t, "remember")
		if !long {
			remember = 10_000 // longer than any history drawn: nothing is forgotten
		}
		const sku = "SKU-1"
		p := &stockPair{t: t, remember: remember, open: map[string]bool{}, closed: map[string]bool{}}
		stockDecide(p, "receive", DecideReceiveStock, ReceiveStock{SKU: sku, Quantity: 20, At: boundedAt})
		// An order's reserve, release and ship come once each, and none of them after the
		// order is closed here (shipped, or released after asking: the order refuses to be
		// cancelled once shipped or shipped once cancelled). A return is restocked once, a
		// purchase order received once. Only repeats and those may meet a forgetful window.
		tried := map[string]bool{} // "reserve/o1": a command already decided once
		once := func(kind, order string) bool {
			key := kind + "/" + order
			lifecycle := kind == "reserve" || kind == "release" || kind == "ship"
			if long && (tried[key] || lifecycle && p.closed[order]) {
				return false
			}
			tried[key] = true
			return true
		}
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for i := range steps {
			order := "o" + strconv.Itoa(rapid.IntRange(1, 30).Draw(t, "order"))
			switch rapid.IntRange(0, 7).Draw(t, "action") {
			case 0:
				if once("reserve", order) {
					stockDecide(p, "reserve", DecideReserveStock, ReserveStock{SKU: sku, OrderID: order, Quantity: rapid.Int64Range(1, 8).Draw(t, "quantity"), At: boundedAt})
				}
			case 1:
				if once("release", order) {
					stockDecide(p, "release", DecideReleaseStock, ReleaseStock{SKU: sku, OrderID: order, At: boundedAt})
				}
			case 2:
				if q := p.unbounded.ReservedFor(order); q > 0 && once("ship", order) {
					stockDecide(p, "ship", DecideShipStock, ShipStock{SKU: sku, OrderID: order, Quantity: q, At: boundedAt})
				}
			case 3:
				ret := "r" + strconv.Itoa(rapid.IntRange(1, 2).Draw(t, "return"))
				if once("restock/"+ret, order) {
					stockDecide(p, "restock", DecideRestockReturn, RestockReturn{SKU: sku, OrderID: order, ReturnID: ret, Quantity: 1, At: boundedAt})
				}
			case 4:
				po := PurchaseOrderID(sku, rapid.Int64Range(1, max(p.unbounded.Replenishments, 1)).Draw(t, "po"))
				if once("receive", po) {
					stockDecide(p, "receive", DecideReceiveStock, ReceiveStock{SKU: sku, Quantity: 10, PurchaseOrderID: po, At: boundedAt})
				}
			case 5:
				stockDecide(p, "receive", DecideReceiveStock, ReceiveStock{SKU: sku, Quantity: rapid.Int64Range(1, 10).Draw(t, "quantity"), At: boundedAt})
			case 6:
				stockDecide(p, "adjust", DecideAdjustStock, AdjustStock{SKU: sku, Delta: rapid.Int64Range(-5, 5).Draw(t, "delta"), Reason: "count " + strconv.Itoa(i), At: boundedAt})
			case 7:
				stockDecide(p, "policy", DecideSetReplenishmentPolicy, SetReplenishmentPolicy{SKU: sku, ReorderPoint: rapid.Int64Range(0, 10).Draw(t, "point"), ReorderQuantity: 10, Supplier: "acme", At: boundedAt})
			}
			p.check()
		}
	})
}

func TestBoundedSeriesDecidesAsUnbounded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		long := rapid.Bool().Draw(t, "long")
		remember := rapid.IntRange(1, 4).Draw(t, "remember")
		if !long {
			remember = 10_000
		}
		var bounded, unbounded Series
		var history []string // orders numbered, oldest first
		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for range steps {
			order := "o" + strconv.Itoa(rapid.IntRange(1, 40).Draw(t, "order"))
			if repeat := rapid.Bool().Draw(t, "repeat"); repeat && len(history) > 0 {
				// A retry of a recent document: within the window even a long history must
				// find the number already taken.
				back := rapid.IntRange(1, min(len(history), remember)).Draw(t, "back")
				order = history[len(history)-back]
			} else if _, done := unbounded.NumberFor(InvoiceKey(order)); done && long {
				continue // a repeat older than the window may be: the handler's to recognise
			}
			cmd := AssignInvoiceNumber{OrderID: order, At: boundedAt}
			got, gotErr := DecideAssignInvoiceNumber(bounded, cmd)
			want, wantErr := DecideAssignInvoiceNumber(unbounded, cmd)
			if !reflect.DeepEqual(got, want) || gotErr != nil || wantErr != nil {
				t.Fatalf("%+v: bounded decided %v, %v; unbounded %v, %v", cmd, got, gotErr, want, wantErr)
			}
			for _, e := range got {
				bounded = evolveSeries(bounded, e, remember)
				unbounded = evolveSeries(unbounded, e, math.MaxInt)
				history = append(history, order)
			}
			data, err := bounded.MarshalSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			var decoded Series
			if err := decoded.UnmarshalSnapshot(data); err != nil {
				t.Fatal(err)
			}
			if again, _ := decoded.MarshalSnapshot(); string(again) != string(data) || decoded.Remembered() != bounded.Remembered() {
				t.Fatalf("snapshot %s decodes to a state that encodes as %s", data, again)
			}
			bounded = decoded
			if bounded.Count != unbounded.Count || len(bounded.byKey) > remember || len(bounded.keys) > remember {
				t.Fatalf("count %d (unbounded %d); remembers %d keys, %d in order, window %d", bounded.Count, unbounded.Count, len(bounded.byKey), len(bounded.keys), remember)
			}
		}
	})
}

// The window at its edge: the RememberedPerStream-th closed order, return, receipt and number
// back is still recognised as a repeat; one more and the oldest is forgotten.
func TestRememberedPerStreamEdge(t *testing.T) {
	const sku = "SKU-1"
	var s Stock
	fold := func(events []Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			s = EvolveStock(s, e)
		}
	}
	fold(DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 10_000, At: boundedAt}))
	for i := range RememberedPerStream {
		order := "o" + strconv.Itoa(i)
		fold(DecideReserveStock(s, ReserveStock{SKU: sku, OrderID: order, Quantity: 1, At: boundedAt}))
		fold(DecideShipStock(s, ShipStock{SKU: sku, OrderID: order, Quantity: 1, At: boundedAt}))
		fold(DecideRestockReturn(s, RestockReturn{SKU: sku, OrderID: order, ReturnID: "r", Quantity: 1, At: boundedAt}))
		fold(DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 1, PurchaseOrderID: "PO-" + order, At: boundedAt}))
	}
	repeats := func() (reserve, ship, restock, receive []Event) {
		reserve, _ = DecideReserveStock(s, ReserveStock{SKU: sku, OrderID: "o0", Quantity: 1, At: boundedAt})
		ship, _ = DecideShipStock(s, ShipStock{SKU: sku, OrderID: "o0", Quantity: 1, At: boundedAt})
		restock, _ = DecideRestockReturn(s, RestockReturn{SKU: sku, OrderID: "o0", ReturnID: "r", Quantity: 1, At: boundedAt})
		receive, _ = DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 1, PurchaseOrderID: "PO-o0", At: boundedAt})
		return
	}
	if a, b, c, d := repeats(); len(a)+len(b)+len(c)+len(d) != 0 {
		t.Fatalf("within the window a repeat decided %v %v %v %v", a, b, c, d)
	}
	last := "o" + strconv.Itoa(RememberedPerStream)
	fold(DecideReserveStock(s, ReserveStock{SKU: sku, OrderID: last, Quantity: 1, At: boundedAt}))
	fold(DecideReleaseStock(s, ReleaseStock{SKU: sku, OrderID: last, At: boundedAt}))
	fold(DecideRestockReturn(s, RestockReturn{SKU: sku, OrderID: last, ReturnID: "r", Quantity: 1, At: boundedAt}))
	fold(DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 1, PurchaseOrderID: "PO-" + last, At: boundedAt}))
	reserve, ship, restock, receive := repeats()
	if len(reserve) != 1 || len(restock) != 1 || len(receive) != 1 {
		t.Fatalf("past the window the oldest is still remembered: reserve %v, restock %v, receive %v", reserve, restock, receive)
	}
	if ship != nil {
		t.Fatalf("ship of a forgotten order with nothing reserved decided %v", ship)
	}
	if len(s.asked) != RememberedPerStream || len(s.released) != 1 || len(s.shipped) != RememberedPerStream-1 {
		t.Fatalf("remembers %d asked, %d released, %d shipped", len(s.asked), len(s.released), len(s.shipped))
	}

	var series Series
	for i := range RememberedPerStream + 1 {
		events, err := DecideAssignInvoiceNumber(series, AssignInvoiceNumber{OrderID: "o" + strconv.Itoa(i), At: boundedAt})
		if err != nil || len(events) != 1 {
			t.Fatalf("number %d: %v, %v", i+1, events, err)
		}
		series = EvolveSeries(series, events[0])
		n, ok := series.NumberFor(InvoiceKey("o0"))
		if remembered := i < RememberedPerStream; ok != remembered || ok && n != 1 {
			t.Fatalf("after %d numbers the first is found %v (number %d)", i+1, ok, n)
		}
	}
	if n, ok := series.NumberFor(InvoiceKey("o1")); !ok || n != 2 {
		t.Fatalf("the second number, within the window, found %v (%d)", ok, n)
	}
}

func TestSnapshotsRefuseWhatTheyCannotRead(t *testing.T) {
	var s Stock
	if err := s.UnmarshalSnapshot([]byte(`{"on_hand": "seven"}`)); err == nil {
		t.Error("a stock snapshot with a string for on hand was read")
	}
	var series Series
	if err := series.UnmarshalSnapshot([]byte(`[1]`)); err == nil {
		t.Error("a series snapshot that is a list was read")
	}
	if err := series.UnmarshalSnapshot([]byte(`{"count":3,"keys":["order:a","order:b"],"numbers":[3]}`)); err == nil {
		t.Error("a series snapshot with two keys for one number was read")
	}
	if s.SnapshotSchema() != StockSnapshotSchema || series.SnapshotSchema() != SeriesSnapshotSchema || StockSnapshotSchema == SeriesSnapshotSchema {
		t.Errorf("schemas %q and %q", s.SnapshotSchema(), series.SnapshotSchema())
	}
}

// Remembered counts every entry a state holds, which the command handler's cache weighs.
func TestRememberedCountsWhatTheStateHolds(t *testing.T) {
	const sku = "SKU-1"
	var s Stock
	apply := func(events []Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			s = EvolveStock(s, e)
		}
	}
	apply(DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 3, At: boundedAt}))
	apply(DecideSetReplenishmentPolicy(s, SetReplenishmentPolicy{SKU: sku, ReorderPoint: 1, ReorderQuantity: 5, Supplier: "acme", At: boundedAt}))
	apply(DecideReserveStock(s, ReserveStock{SKU: sku, OrderID: "held", Quantity: 3, At: boundedAt}))                  // a reservation (and a PO raised)
	apply(DecideReserveStock(s, ReserveStock{SKU: sku, OrderID: "waits", Quantity: 2, At: boundedAt}))                 // a backorder
	apply(DecideReleaseStock(s, ReleaseStock{SKU: sku, OrderID: "early", At: boundedAt}))                              // a release before asking
	apply(DecideShipStock(s, ShipStock{SKU: sku, OrderID: "held", Quantity: 3, At: boundedAt}))                        // asked + shipped, closed
	apply(DecideRestockReturn(s, RestockReturn{SKU: sku, OrderID: "held", ReturnID: "r", Quantity: 1, At: boundedAt})) // a return (fills 1 of the backorder)
	// reservations: waits (1 filled); queue: waits; open POs: 1; asked: held; released: early;
	// shipped: held; restocked: 1; received: 0.
	if got := s.Remembered(); got != 7 {
		t.Fatalf("remembered %d, want 7 (reservations %v, queue %v, open POs %v, asked %v, released %v, shipped %v, restocked %v)",
			got, s.reservations, s.queue, s.openPOs, s.asked, s.released, s.shipped, s.restocked)
	}
	apply(DecideReceiveStock(s, ReceiveStock{SKU: sku, Quantity: 5, PurchaseOrderID: PurchaseOrderID(sku, 1), At: boundedAt}))
	// the PO is no longer open but received; the backorder is filled: queue empty.
	if got := s.Remembered(); got != 6 {
		t.Fatalf("after the receipt remembered %d, want 6", got)
	}
	var series Series
	for i, order := range []string{"a", "b"} {
		series = EvolveSeries(series, InvoiceNumberAssigned{Number: int64(i + 1), OrderID: order})
	}
	if series.Remembered() != 2 {
		t.Fatalf("series remembers %d, want 2", series.Remembered())
	}
}
