package commands_test

import (
	"fmt"
	"testing"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// longAgo is more than the folded states remember (domain.RememberedPerStream) and more than
// the handler keeps of a stream's recent event IDs.
const longAgo = domain.RememberedPerStream + 300

// A command applied long ago and sent again (a process manager replaying an old event) is
// recognised by its events in the store, though the SKU's state has forgotten the order: a
// shipment the state would now refuse, and a return it would restock twice, append nothing.
func TestCommandAppliedLongAgoIsRecognised(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	h := commands.NewHandler(store)
	if _, err := h.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 100_000, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	ship, restock := meta(), meta()
	for i := range longAgo {
		order := fmt.Sprintf("O%d", i)
		if _, err := h.ReserveStock(ctx, domain.ReserveStock{SKU: "S1", OrderID: order, Quantity: 1, At: at}, meta()); err != nil {
			t.Fatal(err)
		}
		m := meta()
		if i == 0 {
			m = ship
		}
		if _, err := h.ShipStock(ctx, domain.ShipStock{SKU: "S1", OrderID: order, Quantity: 1, At: at}, m); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := h.RestockReturn(ctx, domain.RestockReturn{SKU: "S1", OrderID: order, ReturnID: "R1", Quantity: 1, At: at}, restock); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := streamLength(t, store, domain.StockStream("S1"))
	for _, fresh := range []bool{false, true} {
		hh := h
		if fresh {
			hh = commands.NewHandler(store) // after a restart: nothing cached
		}
		res, err := hh.ShipStock(ctx, domain.ShipStock{SKU: "S1", OrderID: "O0", Quantity: 1, At: at}, ship)
		if err != nil || !res.AlreadyApplied || res.Version != 2 {
			t.Fatalf("shipment sent again (restarted %v): %+v, %v; want it applied at version 2", fresh, res, err)
		}
		res, err = hh.RestockReturn(ctx, domain.RestockReturn{SKU: "S1", OrderID: "O0", ReturnID: "R1", Quantity: 1, At: at}, restock)
		if err != nil || !res.AlreadyApplied || res.Version != 3 {
			t.Fatalf("return sent again (restarted %v): %+v, %v; want it applied at version 3", fresh, res, err)
		}
	}
	if after := streamLength(t, store, domain.StockStream("S1")); after != before {
		t.Fatalf("the repeats appended %d events", after-before)
	}
	// A shipment never made is still refused.
	if _, err := h.ShipStock(ctx, domain.ShipStock{SKU: "S1", OrderID: "O0", Quantity: 1, At: at}, meta()); err == nil {
		t.Fatal("a second shipment of a shipped order was accepted")
	}
}

// A process manager that crashed after taking an invoice number, and asks again long after,
// finds the number it took, alone or in a batch, and the series takes no second one.
func TestInvoiceNumberTakenLongAgoIsFoundAgain(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	h := commands.NewHandler(store)
	first := meta()
	var orders []string
	for i := range longAgo {
		m := meta()
		if i == 0 {
			m = first
		}
		order := fmt.Sprintf("O%d", i)
		orders = append(orders, order)
		if _, err := h.AssignInvoiceNumber(ctx, domain.AssignInvoiceNumber{OrderID: order, At: at}, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, fresh := range []bool{false, true} {
		hh := h
		if fresh {
			hh = commands.NewHandler(store)
		}
		res, err := hh.AssignInvoiceNumber(ctx, domain.AssignInvoiceNumber{OrderID: "O0", At: at}, first)
		if err != nil || !res.AlreadyApplied || res.Version != 0 {
			t.Fatalf("number asked again (restarted %v): %+v, %v; want number 1 (version 0)", fresh, res, err)
		}
	}
	// In a batch with a new order: the old one is told applied, the new one numbered next.
	ms := []commands.Meta{first, meta()}
	batch := []string{"O0", "NEW"}
	var told []bool
	res, err := commands.ExecuteBatch(ctx, h, domain.InvoiceSeriesStream, domain.EvolveSeries, func(s domain.Series, applied func(commands.Meta) bool) ([]commands.Caused, error) {
		told = told[:0]
		var caused []commands.Caused
		next := s.Count
		for i, o := range batch {
			if _, ok := s.NumberFor(domain.InvoiceKey(o)); ok || applied(ms[i]) {
				told = append(told, true)
				continue
			}
			told = append(told, false)
			next++
			caused = append(caused, commands.Caused{Meta: ms[i], Events: []domain.Event{domain.InvoiceNumberAssigned{Number: next, OrderID: o, AssignedAt: at}}})
		}
		return caused, nil
	})
	if err != nil || res.Version != longAgo || len(told) != 2 || !told[0] || told[1] {
		t.Fatalf("batch: %+v, %v, applied %v; want NEW numbered at version %d and O0 told applied", res, err, told, longAgo)
	}
	if got, found, err := commands.Applied(ctx, commands.NewHandler(store), domain.InvoiceSeriesStream, first); err != nil || !found || got.Version != 0 {
		t.Fatalf("Applied: %+v, %v, %v; want version 0", got, found, err)
	}
	checkGapless(t, store, append(orders, "NEW"))
}

// A stream that lives long is loaded from its snapshot and the events after it, and decides
// as the whole stream folded; a snapshot that does not match the stream is not used.
func TestSnapshotsOfLongStreams(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	h := commands.NewHandler(store)
	if _, err := h.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 100_000, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	for i := range 1200 {
		if _, err := h.ReserveStock(ctx, domain.ReserveStock{SKU: "S1", OrderID: fmt.Sprintf("O%d", i), Quantity: 2, At: at}, meta()); err != nil {
			t.Fatal(err)
		}
	}
	snaps := store.(eventstore.Snapshots)
	snap, ok, err := snaps.LoadSnapshot(ctx, domain.StockStream("S1"))
	if err != nil || !ok || snap.Schema != domain.StockSnapshotSchema || snap.Version < 900 {
		t.Fatalf("snapshot after 1201 events: %+v, %v, %v", snap.Version, ok, err)
	}
	check := func(why string) {
		t.Helper()
		err := commands.Read(ctx, commands.NewHandler(store), domain.StockStream("S1"), domain.EvolveStock, func(s domain.Stock, _ bool) error {
			if s.Reserved != 2400 || s.ReservedFor("O0") != 2 || s.ReservedFor("O1199") != 2 || s.OnHand != 100_000 {
				return fmt.Errorf("reserved %d (O0 %d, O1199 %d), on hand %d", s.Reserved, s.ReservedFor("O0"), s.ReservedFor("O1199"), s.OnHand)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		// An order allocated before the snapshot is still allocated once.
		res, err := commands.NewHandler(store).ReserveStock(ctx, domain.ReserveStock{SKU: "S1", OrderID: "O3", Quantity: 2, At: at}, meta())
		if err != nil || !res.Unchanged {
			t.Fatalf("%s: O3 asked again: %+v, %v", why, res, err)
		}
	}
	check("from the snapshot")
	// A snapshot whose event is not the stream's (another log) is ignored, and so is one of
	// another shape.
	bad := snap
	bad.EventID[0] ^= 0xff
	if err := snaps.SaveSnapshot(ctx, bad); err != nil {
		t.Fatal(err)
	}
	check("with a snapshot of another log")
	other := snap
	other.Schema, other.State = "stock.v0", []byte(`{"on_hand": 1}`)
	if err := snaps.SaveSnapshot(ctx, other); err != nil {
		t.Fatal(err)
	}
	check("with a snapshot of another shape")
	again, _, _ := snaps.LoadSnapshot(ctx, domain.StockStream("S1"))
	if again.Schema != domain.StockSnapshotSchema {
		t.Fatalf("the snapshot of another shape was not replaced: %q", again.Schema)
	}
	// The state is the snapshot's and the events after it: a snapshot that says 7 on hand
	// (a doctored one, which only shows that it is read) is what a new handler starts from.
	doctored := again
	doctored.State = []byte(`{"sku":"S1","exists":true,"on_hand":7}`)
	if err := snaps.SaveSnapshot(ctx, doctored); err != nil {
		t.Fatal(err)
	}
	err = commands.Read(ctx, commands.NewHandler(store), domain.StockStream("S1"), domain.EvolveStock, func(s domain.Stock, _ bool) error {
		if after := int64(1200 - doctored.Version); s.OnHand != 7 || s.Reserved != 2*after {
			return fmt.Errorf("on hand %d, reserved %d; want 7 and %d", s.OnHand, s.Reserved, 2*after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func streamLength(t *testing.T, store eventstore.Store, stream string) int {
	t.Helper()
	events, err := store.ReadStream(t.Context(), stream, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return len(events)
}
