package automation

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// The load scenario: 200 orders placed at once against three SKUs with scarce stock and a
// replenishment policy; every purchase order received; then 10 orders cancelled after
// invoicing, the others paid, shipped and delivered, and 8 of those partly returned and
// refunded.
//
// Each SKU is always ordered in the same quantity, so however the orders interleave, each
// SKU's stream sees the same sequence of requests and raises the same purchase orders: the
// outcome is the same in every run, which is what lets the crash tests compare theirs with an
// uninterrupted run's.

const scenarioOrders = 200

type skuPlan struct {
	sku       string
	initial   int64
	perOrder  int64
	unitPrice int64
}

var scenarioSKUs = []skuPlan{
	{"SKU-A", 40, 1, 1000},
	{"SKU-B", 30, 2, 2500},
	{"SKU-C", 20, 3, 999},
}

const (
	scenarioReorderPoint    = 10
	scenarioReorderQuantity = 40
	scenarioTaxBps          = 2000
)

func scenarioOrderID(i int) string { return fmt.Sprintf("ord-%03d", i) }

// scenarioLines: A; A+B; B+C; A+B+C, in turn.
func scenarioLines(i int) []domain.OrderLine {
	pick := [][]int{{0}, {0, 1}, {1, 2}, {0, 1, 2}}[i%4]
	lines := make([]domain.OrderLine, 0, len(pick))
	for _, k := range pick {
		p := scenarioSKUs[k]
		lines = append(lines, line(p.sku, p.perOrder, p.unitPrice))
	}
	return lines
}

func cancelledLate(i int) bool { return i%20 == 7 }
func returnedPart(i int) bool  { return i%25 == 3 && !cancelledLate(i) }

// outcome is what a run leaves behind, in a form independent of the order in which
// concurrent commands happened to land: two correct runs have equal outcomes.
type outcome struct {
	Statuses       map[domain.OrderStatus]int
	Invoices       []string // the numbers taken, sorted
	InvoicedOrders []string
	CreditNotes    []string
	Credits        []string // order, reason, return, amounts
	PurchaseOrders []string // id, SKU, supplier, quantity, received
	Stock          map[string]string
	Events         map[string]int   // counts by type, where the count does not depend on timing
	FilledUnits    map[string]int64 // units moved from backorders to reservations, by SKU
}

// scenarioRun drives the scenario with the runner sup keeps going, checks every invariant on
// the way and at the end, and returns the outcome and how long the orders took from placement
// to the end of their cycle.
func scenarioRun(t *testing.T, e *env, sup *supervisor) (outcome, time.Duration) {
	ctx := t.Context()
	const quiet = 3 * time.Minute

	// Watch the stock while everything runs: reserved may never exceed on hand.
	var (
		observed, violations atomic.Int64
		firstViolation       atomic.Value
		stopWatching         = make(chan struct{})
		watcher              sync.WaitGroup
	)
	watch := commands.NewHandler(e.store)
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		for {
			for _, p := range scenarioSKUs {
				_ = commands.Read(ctx, watch, domain.StockStream(p.sku), domain.EvolveStock, func(s domain.Stock, _ bool) error {
					observed.Add(1)
					if s.Reserved > s.OnHand || s.Reserved < 0 {
						violations.Add(1)
						firstViolation.CompareAndSwap(nil, fmt.Sprintf("%s: on hand %d, reserved %d", p.sku, s.OnHand, s.Reserved))
					}
					return nil
				})
			}
			select {
			case <-stopWatching:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	var placing sync.WaitGroup
	placeErrs := make(chan error, scenarioOrders)
	for i := range scenarioOrders {
		placing.Add(1)
		go func() {
			defer placing.Done()
			if err := e.place(scenarioOrderID(i), fmt.Sprintf("cust-%d", i%5), scenarioTaxBps, scenarioLines(i)...); err != nil {
				placeErrs <- fmt.Errorf("place %s: %w", scenarioOrderID(i), err)
			}
		}()
	}
	placing.Wait()
	close(placeErrs)
	for err := range placeErrs {
		t.Fatal(err)
	}
	placed := time.Since(start)

	// Every order is allocated; receive the purchase orders until none is open.
	for {
		e.waitQuiet(sup, quiet)
		open := openPurchaseOrders(t, e)
		if len(open) == 0 {
			break
		}
		for _, po := range open {
			e.ok(e.h.ReceivePurchaseOrder(ctx, domain.ReceivePurchaseOrder{PurchaseOrderID: po, At: e.h.Now()}, e.meta()))
		}
	}
	for i := range scenarioOrders {
		if o := e.order(scenarioOrderID(i)); o.Status != domain.StatusConfirmed || !o.Invoiced() {
			t.Fatalf("after every purchase order was received, %s is %s with invoice %q; want confirmed and invoiced", o.ID, o.Status, o.InvoiceNumber)
		}
	}
	confirmed := time.Since(start)

	// The rest of the cycle, many orders at once.
	parallel(t, scenarioOrders, func(i int) error {
		id := scenarioOrderID(i)
		if cancelledLate(i) {
			res, err := e.h.CancelOrder(ctx, domain.CancelOrder{OrderID: id, Reason: "customer changed their mind", At: e.h.Now()}, e.meta())
			e.wrote(res)
			return err
		}
		total := e.order(id).Total
		steps := []func() (commands.Result, error){
			func() (commands.Result, error) {
				return e.h.RecordPayment(ctx, domain.RecordPayment{OrderID: id, PaymentID: "pay-" + id, Amount: total, Method: "card", At: e.h.Now()}, e.meta())
			},
			func() (commands.Result, error) {
				return e.h.ShipOrder(ctx, domain.ShipOrder{OrderID: id, Carrier: "DHL", TrackingNumber: "T-" + id, At: e.h.Now()}, e.meta())
			},
			func() (commands.Result, error) {
				return e.h.DeliverOrder(ctx, domain.DeliverOrder{OrderID: id, At: e.h.Now()}, e.meta())
			},
		}
		for _, step := range steps {
			res, err := step()
			if err != nil {
				return err
			}
			e.wrote(res)
		}
		return nil
	})
	e.waitQuiet(sup, quiet)
	completed := time.Since(start)

	parallel(t, scenarioOrders, func(i int) error {
		if !returnedPart(i) {
			return nil
		}
		id := scenarioOrderID(i)
		first := scenarioLines(i)[0]
		res, err := e.h.ReturnItems(ctx, domain.ReturnItems{OrderID: id, ReturnID: "ret-" + id, Lines: []domain.ShippedLine{{SKU: first.SKU, Quantity: 1}}, Reason: "damaged", At: e.h.Now()}, e.meta())
		e.wrote(res)
		return err
	})
	e.waitQuiet(sup, quiet)
	parallel(t, scenarioOrders, func(i int) error {
		if !returnedPart(i) {
			return nil
		}
		id := scenarioOrderID(i)
		o := e.order(id)
		if len(o.CreditNotes) != 1 {
			return fmt.Errorf("%s has credit notes %+v after its return; want one", id, o.CreditNotes)
		}
		res, err := e.h.IssueRefund(ctx, domain.IssueRefund{OrderID: id, RefundID: "refund-" + id, Amount: o.CreditNotes[0].Total, At: e.h.Now()}, e.meta())
		e.wrote(res)
		return err
	})
	e.waitQuiet(sup, quiet)

	close(stopWatching)
	watcher.Wait()
	if n := violations.Load(); n > 0 {
		t.Errorf("%d of %d observed stock states had reserved above on hand, first %v", n, observed.Load(), firstViolation.Load())
	}
	if observed.Load() == 0 {
		t.Errorf("the watcher observed no stock state")
	}
	t.Logf("%d orders placed in %s, all confirmed and invoiced after %s, through the cycle after %s (%.0f orders/s); %d stock states observed",
		scenarioOrders, placed.Round(time.Millisecond), confirmed.Round(time.Millisecond), completed.Round(time.Millisecond),
		scenarioOrders/completed.Seconds(), observed.Load())
	return checkScenario(t, e), completed
}

// parallel runs f for 0..n-1 on 16 workers and fails the test with the first error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	next := atomic.Int64{}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// openPurchaseOrders lists the purchase orders raised and not yet received, sorted.
func openPurchaseOrders(t *testing.T, e *env) []string {
	open := map[string]bool{}
	for _, ev := range readAll(t, e.store) {
		switch de := decodeIf(t, ev).(type) {
		case domain.PurchaseOrderRaised:
			open[de.PurchaseOrderID] = true
		case domain.PurchaseOrderReceived:
			delete(open, de.PurchaseOrderID)
		}
	}
	ids := make([]string, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func decodeIf(t *testing.T, ev eventstore.Event) domain.Event {
	if !domain.KnownEventType(ev.Type) {
		return nil
	}
	return decode(t, ev)
}

// checkScenario checks the invariants on the whole log and returns the outcome.
func checkScenario(t *testing.T, e *env) outcome {
	t.Helper()
	out := outcome{Statuses: map[domain.OrderStatus]int{}, Stock: map[string]string{}, Events: map[string]int{}, FilledUnits: map[string]int64{}}
	log := readAll(t, e.store)
	timingDependent := map[string]bool{
		domain.OrderBackordered{}.EventType():   true, // an order waits on one line or two
		domain.BackorderFilled{}.EventType():    true, // a backorder is filled in one receipt or two
		domain.OrderLineAllocated{}.EventType(): true, // one per allocation and per fill
	}
	for _, ev := range log {
		if !timingDependent[ev.Type] {
			out.Events[ev.Type]++
		}
	}

	// Every stock stream, event by event: reserved ≤ on hand in every prefix; backorders
	// filled oldest first; a purchase order only when the forecast is short, and then enough
	// to end the shortfall; each purchase order received once.
	replenished := map[string]domain.ReplenishmentRequested{}
	for _, p := range scenarioSKUs {
		var s domain.Stock
		type waiting struct {
			order string
			units int64
		}
		var queue []waiting
		received := map[string]int{}
		for _, ev := range readStream(t, e.store, domain.StockStream(p.sku)) {
			de := decode(t, ev)
			forecast := s.Available() + s.Incoming - s.Backordered()
			switch de := de.(type) {
			case domain.StockAllocated:
				if de.Backordered > 0 {
					queue = append(queue, waiting{de.OrderID, de.Backordered})
				}
			case domain.BackorderFilled:
				out.FilledUnits[p.sku] += de.Quantity
				if len(queue) == 0 || queue[0].order != de.OrderID || queue[0].units < de.Quantity {
					t.Fatalf("%s version %d fills %d for %s, but the oldest backorder is %+v", ev.Stream, ev.Version, de.Quantity, de.OrderID, queue)
				}
				if queue[0].units -= de.Quantity; queue[0].units == 0 {
					queue = queue[1:]
				}
			case domain.StockReleased:
				queue = slices.DeleteFunc(queue, func(w waiting) bool { return w.order == de.OrderID })
			case domain.ReplenishmentRequested:
				if forecast >= scenarioReorderPoint {
					t.Fatalf("%s version %d raises %s with forecast %d, not below the reorder point", ev.Stream, ev.Version, de.PurchaseOrderID, forecast)
				}
				replenished[de.PurchaseOrderID] = de
			case domain.StockReceived:
				if de.PurchaseOrderID != "" {
					received[de.PurchaseOrderID]++
				}
			}
			s = domain.EvolveStock(s, de)
			if s.Reserved > s.OnHand || s.Reserved < 0 || s.Incoming < 0 {
				t.Fatalf("%s after version %d: on hand %d, reserved %d, incoming %d", ev.Stream, ev.Version, s.OnHand, s.Reserved, s.Incoming)
			}
			if _, ok := de.(domain.ReplenishmentRequested); ok {
				if f := s.Available() + s.Incoming - s.Backordered(); f < scenarioReorderPoint {
					t.Fatalf("%s version %d: forecast %d after the purchase order, still short", ev.Stream, ev.Version, f)
				}
			}
		}
		for po, n := range received {
			if n != 1 {
				t.Fatalf("%s received purchase order %s %d times", p.sku, po, n)
			}
		}
		if len(queue) != 0 || s.Backordered() != 0 {
			t.Fatalf("%s still has backorders %+v", p.sku, queue)
		}
		out.Stock[p.sku] = fmt.Sprintf("on hand %d, reserved %d, incoming %d, purchase orders %d", s.OnHand, s.Reserved, s.Incoming, s.Replenishments)
	}

	// One purchase order per replenishment, as requested, received once.
	for id, want := range replenished {
		po, events := fold(t, e.store, domain.PurchaseOrderStream(id), domain.EvolvePurchaseOrder)
		if len(events) != 2 || po.SKU != want.SKU || po.Quantity != want.Quantity || po.Supplier != want.Supplier || !po.Received {
			t.Fatalf("purchase order %s: %+v in %d events; want %+v raised and received", id, po, len(events), want)
		}
		out.PurchaseOrders = append(out.PurchaseOrders, fmt.Sprintf("%s %s %s %d", id, po.SKU, po.Supplier, po.Quantity))
	}
	sort.Strings(out.PurchaseOrders)
	if out.Events[domain.PurchaseOrderRaised{}.EventType()] != len(replenished) {
		t.Fatalf("%d purchase orders raised for %d replenishments", out.Events[domain.PurchaseOrderRaised{}.EventType()], len(replenished))
	}

	// Numbering: INV-1…INV-k and CN-1…CN-c, each number to one document, each document once.
	invoiceOf := seriesNumbers(t, e, domain.InvoiceSeriesStream, func(de domain.Event) (int64, string) {
		a := de.(domain.InvoiceNumberAssigned)
		return a.Number, domain.InvoiceKey(a.OrderID)
	})
	creditOf := seriesNumbers(t, e, domain.CreditNoteSeriesStream, func(de domain.Event) (int64, string) {
		a := de.(domain.CreditNoteNumberAssigned)
		return a.Number, domain.CreditNoteKey(a.OrderID, a.Reason, a.ReturnID)
	})

	for i := range scenarioOrders {
		id := scenarioOrderID(i)
		o, events := fold(t, e.store, domain.OrderStream(id), domain.EvolveOrder)
		out.Statuses[o.Status]++
		invoices := 0
		for _, ev := range events {
			if ev.Type == (domain.OrderInvoiced{}).EventType() {
				invoices++
			}
		}
		if n, ok := invoiceOf[domain.InvoiceKey(id)]; !ok || invoices != 1 || o.InvoiceNumber != domain.InvoiceNumber(n) {
			t.Fatalf("%s: invoice %q recorded %d times; the series gave it %d", id, o.InvoiceNumber, invoices, n)
		}
		out.Invoices = append(out.Invoices, o.InvoiceNumber)
		out.InvoicedOrders = append(out.InvoicedOrders, id)
		// Every unit was reserved exactly once (the allocations recorded on the order add up to
		// the quantity); a cancelled order's lines then show nothing held any more.
		allocated := map[string]int64{}
		for _, ev := range events {
			if ev.Type != (domain.OrderLineAllocated{}).EventType() {
				continue
			}
			de, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			a := de.(domain.OrderLineAllocated)
			allocated[a.SKU] += a.Reserved
		}
		for _, l := range o.Lines {
			held := l.Quantity
			if cancelledLate(i) {
				held = 0
			}
			if allocated[l.SKU] != l.Quantity || l.Reserved != held || l.Backordered != 0 {
				t.Fatalf("%s line %+v: allocations reserved %d; want every unit reserved once, %d held now", id, l, allocated[l.SKU], held)
			}
		}
		want := domain.StatusCompleted
		if cancelledLate(i) {
			want = domain.StatusCancelled
		}
		if o.Status != want {
			t.Fatalf("%s is %s, want %s", id, o.Status, want)
		}
		var wantNotes int
		switch {
		case cancelledLate(i):
			wantNotes = 1
			if o.CreditNotes[0].Total != o.Total || o.CreditNotes[0].Reason != domain.CreditForCancellation {
				t.Fatalf("%s credit notes %+v: want the invoice of %d reversed", id, o.CreditNotes, o.Total)
			}
		case returnedPart(i):
			wantNotes = 1
			if o.Outstanding() != 0 || o.Refunded != o.CreditNotes[0].Total {
				t.Fatalf("%s: outstanding %d, refunded %d, credit notes %+v", id, o.Outstanding(), o.Refunded, o.CreditNotes)
			}
		}
		if len(o.CreditNotes) != wantNotes {
			t.Fatalf("%s has credit notes %+v, want %d", id, o.CreditNotes, wantNotes)
		}
		for _, cn := range o.CreditNotes {
			if n, ok := creditOf[domain.CreditNoteKey(id, cn.Reason, cn.ReturnID)]; !ok || cn.Number != domain.CreditNoteNumber(n) {
				t.Fatalf("%s: credit note %+v; the series gave it %d", id, cn, n)
			}
			out.CreditNotes = append(out.CreditNotes, cn.Number)
			out.Credits = append(out.Credits, fmt.Sprintf("%s %s %s %d+%d=%d", id, cn.Reason, cn.ReturnID, cn.Net, cn.Tax, cn.Total))
		}
	}
	if len(invoiceOf) != scenarioOrders || len(creditOf) != len(out.CreditNotes) {
		t.Fatalf("%d invoice numbers for %d orders, %d credit note numbers for %d credit notes", len(invoiceOf), scenarioOrders, len(creditOf), len(out.CreditNotes))
	}
	for _, list := range [][]string{out.Invoices, out.InvoicedOrders, out.CreditNotes, out.Credits} {
		sort.Strings(list)
	}
	return out
}

// seriesNumbers checks that a numbering stream hands out 1, 2, 3… to distinct documents, and
// returns the number of each document.
func seriesNumbers(t *testing.T, e *env, stream string, entry func(domain.Event) (int64, string)) map[string]int64 {
	t.Helper()
	numbers := map[string]int64{}
	for i, ev := range readStream(t, e.store, stream) {
		n, key := entry(decode(t, ev))
		if n != int64(i+1) {
			t.Fatalf("%s version %d assigns number %d", stream, ev.Version, n)
		}
		if _, dup := numbers[key]; dup {
			t.Fatalf("%s assigns a second number (%d) to %s", stream, n, key)
		}
		numbers[key] = n
	}
	return numbers
}

func (e *env) scenarioSetup() {
	for i := range 5 {
		e.customer(fmt.Sprintf("cust-%d", i))
	}
	for _, p := range scenarioSKUs {
		e.receive(p.sku, p.initial)
		e.policy(p.sku, scenarioReorderPoint, scenarioReorderQuantity)
	}
}

func TestConcurrentOrdersNeverOversellAndAreServedInTurn(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.scenarioSetup()
		out, _ := scenarioRun(t, e, e.run())
		if out.Statuses[domain.StatusCompleted] != scenarioOrders-10 || out.Statuses[domain.StatusCancelled] != 10 {
			t.Fatalf("statuses %v", out.Statuses)
		}
	})
}

// TestCrashesRepeatNothingAndForgetNothing runs the scenario three times: without
// interruption; with the runner killed at random moments; and with the runner killed right
// after sending a command, before its checkpoint is saved. The three outcomes must be equal.
func TestCrashesRepeatNothingAndForgetNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping in -short mode: runs the 200-order scenario three times per store")
	}
	eachStore(t, func(t *testing.T, base *env) {
		base.scenarioSetup()
		want, _ := scenarioRun(t, base, base.run())

		t.Run("killed at random moments", func(t *testing.T) {
			e := base.fresh(t)
			e.scenarioSetup()
			sup := e.run()
			stop := make(chan struct{})
			var chaos sync.WaitGroup
			chaos.Add(1)
			go func() {
				defer chaos.Done()
				for {
					// Let each runner get somewhere before it is killed: killed before it
					// handles one chunk, no process makes progress however often it restarts.
					deadline := time.Now().Add(2 * time.Second)
					for sup.handledByCurrent() == 0 && time.Now().Before(deadline) {
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Duration(rand.IntN(40)) * time.Millisecond):
						sup.crash()
					}
				}
			}()
			got, _ := scenarioRun(t, e, sup)
			close(stop)
			chaos.Wait()
			compareOutcomes(t, got, want)
			if n := sup.restarts(); n < 5 {
				t.Fatalf("the runner was restarted %d times; the test means to crash it many times", n)
			} else {
				t.Logf("the runner was killed and restarted %d times", n)
			}
		})

		t.Run("killed between a command and the checkpoint", func(t *testing.T) {
			e := base.fresh(t)
			e.scenarioSetup()
			var kills atomic.Int64
			reg, withReg := withMetrics()
			sup := e.supervise(func(r *Runner, kill func()) {
				r.afterSend = func(eventstore.Event, string) {
					if rand.IntN(100) == 0 {
						kills.Add(1)
						kill()
					}
				}
			}, withReg)
			got, _ := scenarioRun(t, e, sup)
			compareOutcomes(t, got, want)
			if kills.Load() < 5 {
				t.Fatalf("the runner was killed %d times after a command; the test means to do it many times", kills.Load())
			}
			// The commands sent again after each kill were recognised, not applied twice.
			replayed := metricValue(t, reg, "orderledger_automation_commands_total", "outcome", "already_applied")
			if replayed == 0 {
				t.Fatal("no command was recognised as already applied: the kills caused no replay to check")
			}
			t.Logf("the runner was killed %d times right after sending a command; %v commands sent again were recognised", kills.Load(), replayed)
		})
	})
}

func compareOutcomes(t *testing.T, got, want outcome) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s differs from the uninterrupted run:\n got %v\nwant %v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}
