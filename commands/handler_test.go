package commands_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/sqlite"
)

func openStore(t *testing.T) eventstore.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func meta() commands.Meta { return commands.Meta{CommandID: uuid.New()} }

var at = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// Two handlers on one store behave like two server processes: each caches its own folds.
func TestTwoProcessesConflictAndRetry(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)

	if _, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 5, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	// b caches the stream at version 0.
	if _, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 1, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	// a's fold is stale (version 0, b appended version 1): its append conflicts, it catches up
	// and appends at version 2.
	res, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 2, At: at}, meta())
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Fatalf("appended at version %d, want 2", res.Version)
	}
	var onHand int64
	if err := commands.Read(ctx, b, domain.StockStream("S1"), domain.EvolveStock, func(s domain.Stock, _ bool) error {
		onHand = s.OnHand
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if onHand != 8 {
		t.Fatalf("on hand %d, want 8", onHand)
	}
}

// A refusal decided on a stale fold is not final: the handler reads the stream and decides again.
func TestRefusalOnAStaleFoldIsRetriedOnAFreshOne(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)

	if _, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 1, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	// a now holds a fold with on hand 1; b adds 10.
	if _, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 10, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	// On a's stale fold, removing 5 would go below zero; on the real stream it is fine.
	if _, err := a.AdjustStock(ctx, domain.AdjustStock{SKU: "S1", Delta: -5, Reason: "count", At: at}, meta()); err != nil {
		t.Fatalf("adjustment refused on a stale fold: %v", err)
	}
	// A refusal on a current fold stays a refusal.
	_, err := a.AdjustStock(ctx, domain.AdjustStock{SKU: "S1", Delta: -50, Reason: "count", At: at}, meta())
	if !errors.Is(err, domain.ErrInsufficientStock) {
		t.Fatalf("got %v, want ErrInsufficientStock", err)
	}
}

// A command repeated with the same ID appends nothing, whether the handler remembers it or
// must find it in the stream (a restarted process), or another process applied it.
func TestRepeatedCommandAppendsNothing(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a := commands.NewHandler(store)
	m := meta()
	cmd := domain.ReceiveStock{SKU: "S1", Quantity: 3, At: at}
	first, err := a.ReceiveStock(ctx, cmd, m)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*commands.Handler{"same handler": a, "restarted handler": commands.NewHandler(store)} {
		again, err := h.ReceiveStock(ctx, cmd, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !again.AlreadyApplied || again.Position != first.Position || again.Version != first.Version {
			t.Fatalf("%s: repeat answered %+v, want already applied at %v/%d", name, again, first.Position, first.Version)
		}
	}
	// b cached the stream before a applied m2; b's repeat of m2 must not append a copy.
	b := commands.NewHandler(store)
	if _, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 1, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	m2 := meta()
	if _, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 4, At: at}, m2); err != nil {
		t.Fatal(err)
	}
	if res, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 4, At: at}, m2); err != nil || !res.AlreadyApplied {
		t.Fatalf("repeat through a stale handler: %+v, %v; want already applied", res, err)
	}
	events, err := store.ReadStream(ctx, domain.StockStream("S1"), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range events {
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := de.(domain.StockReceived); ok {
			total += r.Quantity
		}
	}
	if len(events) != 3 || total != 8 {
		t.Fatalf("stream holds %d events receiving %d units, want 3 events and 8 units", len(events), total)
	}
}

// PlaceOrder appends to an order stream it has not cached without reading it first; an order
// ID another process has used is still refused, and a repeated command still appends nothing.
func TestPlaceOrderOnAStreamTakenToBeNew(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)
	if _, err := a.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 5, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	order := func(id string) domain.PlaceOrder {
		return domain.PlaceOrder{OrderID: id, CustomerID: "C1", Channel: "web", Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "S1", Quantity: 1, UnitPrice: 100}}, At: at}
	}
	m := meta()
	first, err := a.PlaceOrder(ctx, order("O1"), m)
	if err != nil {
		t.Fatal(err)
	}
	// b has cached nothing: its append of the same ID is refused by the store and decided
	// again on the stream as read.
	if _, err := b.PlaceOrder(ctx, order("O1"), meta()); !errors.Is(err, domain.ErrOrderExists) {
		t.Fatalf("placing O1 again through another handler: %v, want ErrOrderExists", err)
	}
	again, err := commands.NewHandler(store).PlaceOrder(ctx, order("O1"), m)
	if err != nil || !again.AlreadyApplied || again.Position != first.Position || again.Version != first.Version {
		t.Fatalf("repeat through a new handler: %+v, %v; want already applied at %v/%d", again, err, first.Position, first.Version)
	}
	events, err := store.ReadStream(ctx, domain.OrderStream("O1"), 0, 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("O1 holds %d events (%v), want 1", len(events), err)
	}
}

// An unknown customer or SKU is read again at the next order: another process may have
// registered or received it since.
func TestPlaceOrderSeesCustomersAndSKUsAddedElsewhere(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)
	order := domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: "S1", Quantity: 1, UnitPrice: 100}}, At: at}
	if _, err := a.PlaceOrder(ctx, order, meta()); !errors.Is(err, domain.ErrUnknownCustomer) {
		t.Fatalf("order for a customer nobody registered: %v, want ErrUnknownCustomer", err)
	}
	if _, err := b.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PlaceOrder(ctx, order, meta()); !errors.Is(err, domain.ErrUnknownSKU) {
		t.Fatalf("order for a SKU never received: %v, want ErrUnknownSKU", err)
	}
	if _, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 5, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PlaceOrder(ctx, order, meta()); err != nil {
		t.Fatalf("order once both exist: %v", err)
	}
}
