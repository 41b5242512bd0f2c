package commands_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// numberInvoices numbers orders in one batch on h, each order's number under its own Meta.
func numberInvoices(t *testing.T, h *commands.Handler, orders []string, metas []commands.Meta) (commands.Result, error) {
	t.Helper()
	return commands.ExecuteBatch(t.Context(), h, domain.InvoiceSeriesStream, domain.EvolveSeries, func(s domain.Series, _ func(commands.Meta) bool) ([]commands.Caused, error) {
		cmd := domain.AssignInvoiceNumbers{}
		for _, o := range orders {
			cmd.Orders = append(cmd.Orders, domain.AssignInvoiceNumber{OrderID: o, At: at})
		}
		events, err := domain.DecideAssignInvoiceNumbers(s, cmd)
		if err != nil {
			return nil, err
		}
		caused := make([]commands.Caused, 0, len(events))
		for _, e := range events {
			caused = append(caused, commands.Caused{Meta: metas[indexOf(orders, e.(domain.InvoiceNumberAssigned).OrderID)], Events: []domain.Event{e}})
		}
		return caused, nil
	})
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func metas(n int) []commands.Meta {
	out := make([]commands.Meta, n)
	for i := range out {
		out[i] = meta()
	}
	return out
}

// A batch is one append whose events carry the IDs each command would have given them alone,
// so the same command sent alone afterwards is recognised and appends nothing.
func TestExecuteBatchAppendsOnceWithEachCommandsIDs(t *testing.T) {
	store := openStore(t)
	h := commands.NewHandler(store)
	orders, ms := []string{"O1", "O2", "O3"}, metas(3)
	res, err := numberInvoices(t, h, orders, ms)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || len(res.Events) != 3 || res.AlreadyApplied || res.Unchanged {
		t.Fatalf("result %+v; want versions 0..2 appended at once", res)
	}
	stored, err := store.ReadStream(t.Context(), domain.InvoiceSeriesStream, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range stored {
		if e.ID != commands.EventID(ms[i].CommandID, 0) {
			t.Fatalf("event %d has ID %s; want %s, its command's", i, e.ID, commands.EventID(ms[i].CommandID, 0))
		}
		if e.Metadata.CausationID != ms[i].CommandID.String() {
			t.Fatalf("event %d caused by %s; want its own command %s", i, e.Metadata.CausationID, ms[i].CommandID)
		}
	}
	again, err := h.AssignInvoiceNumber(t.Context(), domain.AssignInvoiceNumber{OrderID: "O2", At: at}, ms[1])
	if err != nil || !again.AlreadyApplied || again.Version != 1 {
		t.Fatalf("O2's command alone after the batch: %+v, %v; want already applied at version 1", again, err)
	}
	// From another process too, which must read the series first.
	other, err := commands.NewHandler(store).AssignInvoiceNumber(t.Context(), domain.AssignInvoiceNumber{OrderID: "O3", At: at}, ms[2])
	if err != nil || !other.AlreadyApplied || other.Version != 2 {
		t.Fatalf("O3's command alone from another process: %+v, %v; want already applied at version 2", other, err)
	}
}

// A batch decided on a stale fold conflicts, or finds its first event stored by an attempt
// whose answer was lost; either way it is decided again on the series as it is, and appends
// only what is not there yet.
func TestExecuteBatchOnAStaleFoldAppendsOnlyWhatIsMissing(t *testing.T) {
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)
	ms := metas(4) // for O1, O2, O3, O4
	if _, err := numberInvoices(t, a, []string{"O1"}, ms[:1]); err != nil {
		t.Fatal(err)
	}
	// b numbers O2 and O3: to a, as if its own append of them had committed unanswered.
	if _, err := numberInvoices(t, b, []string{"O2", "O3"}, ms[1:3]); err != nil {
		t.Fatal(err)
	}
	// a sends O2 again with O4: its first event is stored, followed by another than O4's.
	res, err := numberInvoices(t, a, []string{"O2", "O4"}, []commands.Meta{ms[1], ms[3]})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].(domain.InvoiceNumberAssigned).Number != 4 {
		t.Fatalf("result %+v; want only O4 appended, numbered 4", res)
	}
	// The very batch b appended, sent again by a: the store answers from it; nothing is left.
	res, err = numberInvoices(t, a, []string{"O2", "O3"}, ms[1:3])
	if err != nil || !res.Unchanged {
		t.Fatalf("result %+v, %v; want unchanged", res, err)
	}
	checkGapless(t, store, []string{"O1", "O2", "O3", "O4"})
}

// Two processes numbering overlapping batches at once: every order gets one number, and the
// numbers are 1..n with no gap.
func TestExecuteBatchFromTwoProcessesStaysGapless(t *testing.T) {
	store := openStore(t)
	const orders, batch = 120, 6
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = fmt.Sprintf("O%d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*orders)
	for p := range 2 {
		h := commands.NewHandler(store)
		for w := range 2 {
			wg.Go(func() {
				// Each process asks for every order, in its own order and groups, with its own
				// command IDs: as two runners after a lease handover would.
				for start := 0; start < orders; start += batch {
					group := make([]string, 0, batch)
					for i := start; i < start+batch; i++ {
						group = append(group, ids[(i+(2*p+w)*orders/4)%orders])
					}
					if _, err := numberInvoices(t, h, group, metas(len(group))); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkGapless(t, store, ids)
}

// checkGapless checks that the invoice series numbers exactly the orders given, 1..n.
func checkGapless(t *testing.T, store eventstore.Store, orders []string) {
	t.Helper()
	events, err := store.ReadStream(t.Context(), domain.InvoiceSeriesStream, 0, 10*len(orders))
	if err != nil {
		t.Fatal(err)
	}
	numbered := map[string]int64{}
	for i, e := range events {
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		a := de.(domain.InvoiceNumberAssigned)
		if a.Number != int64(i+1) || e.Version != uint64(i) {
			t.Fatalf("version %d holds number %d", e.Version, a.Number)
		}
		if n, dup := numbered[a.OrderID]; dup {
			t.Fatalf("%s numbered %d and again %d", a.OrderID, n, a.Number)
		}
		numbered[a.OrderID] = a.Number
	}
	if len(numbered) != len(orders) {
		t.Fatalf("%d orders numbered, want %d", len(numbered), len(orders))
	}
	for _, o := range orders {
		if _, ok := numbered[o]; !ok {
			t.Fatalf("%s has no number", o)
		}
	}
}

// ReadAtLeast answers from the cached fold when it includes the version asked for, and reads
// the store when it does not.
func TestReadAtLeastReadsOnlyWhatTheCacheLacks(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	a, b := commands.NewHandler(store), commands.NewHandler(store)
	if _, err := a.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 5, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S1", Quantity: 1, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	onHand := func(version uint64) int64 {
		var n int64
		if err := commands.ReadAtLeast(ctx, a, domain.StockStream("S1"), domain.EvolveStock, version, func(s domain.Stock, _ bool) error {
			n = s.OnHand
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := onHand(0); got != 5 {
		t.Fatalf("at least version 0: on hand %d, want 5 from a's cached fold", got)
	}
	if got := onHand(1); got != 6 {
		t.Fatalf("at least version 1: on hand %d, want 6 read from the store", got)
	}
	var missing bool
	if err := commands.ReadAtLeast(ctx, a, domain.StockStream("S2"), domain.EvolveStock, 0, func(_ domain.Stock, exists bool) error {
		missing = !exists
		return nil
	}); err != nil || !missing {
		t.Fatalf("a stream that does not exist: exists=%v, %v", !missing, err)
	}
	if err := commands.ReadAtLeast(ctx, a, domain.StockStream("S1"), domain.EvolveStock, 0, func(domain.Stock, bool) error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("inspect's error: %v", err)
	}
}

var errStop = errors.New("stop")

// A command of a batch that was applied before, alone, is told apart by its ID, so that a
// decision the domain cannot recognise as a repeat (allocation news are deltas) is not
// recorded twice.
func TestExecuteBatchTellsCommandsAppliedBefore(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	h := commands.NewHandler(store)
	for _, sku := range []string{"S1", "S2"} {
		if _, err := h.ReceiveStock(ctx, domain.ReceiveStock{SKU: sku, Quantity: 5, At: at}, meta()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: "C1", Name: "C", Email: "c@example.com", At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	lines := []domain.OrderLine{{SKU: "S1", Quantity: 2, UnitPrice: 100}, {SKU: "S2", Quantity: 1, UnitPrice: 100}}
	if _, err := h.PlaceOrder(ctx, domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: lines, At: at}, meta()); err != nil {
		t.Fatal(err)
	}
	news := []domain.RecordLineAllocation{{OrderID: "O1", SKU: "S1", Reserved: 2, At: at}, {OrderID: "O1", SKU: "S2", Reserved: 1, At: at}}
	ms := metas(2)
	if _, err := h.RecordLineAllocation(ctx, news[0], ms[0]); err != nil {
		t.Fatal(err)
	}
	res, err := commands.ExecuteBatch(ctx, h, domain.OrderStream("O1"), domain.EvolveOrder, func(o domain.Order, applied func(commands.Meta) bool) ([]commands.Caused, error) {
		var todo []domain.RecordLineAllocation
		var todoMetas []commands.Meta
		for i, m := range ms {
			if !applied(m) {
				todo, todoMetas = append(todo, news[i]), append(todoMetas, m)
			}
		}
		recorded, err := domain.DecideRecordLineAllocations(o, domain.RecordLineAllocations{Lines: todo})
		if err != nil {
			return nil, err
		}
		caused := make([]commands.Caused, len(todo))
		for i := range todo {
			caused[i] = commands.Caused{Meta: todoMetas[i], Events: recorded[i]}
		}
		return caused, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 2 { // S2's allocation and the confirmation
		t.Fatalf("appended %v; want S2's allocation and the confirmation only", res.Events)
	}
	var o domain.Order
	if err := commands.Read(ctx, commands.NewHandler(store), domain.OrderStream("O1"), domain.EvolveOrder, func(s domain.Order, _ bool) error {
		o = s
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if o.Status != domain.StatusConfirmed || o.Lines[0].Reserved != 2 || o.Lines[1].Reserved != 1 {
		t.Fatalf("order %s with lines %+v; want confirmed, every unit reserved once", o.Status, o.Lines)
	}
}
