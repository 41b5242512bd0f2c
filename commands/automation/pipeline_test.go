package automation

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// countingStore counts the appends to one stream.
type countingStore struct {
	eventstore.Store
	stream  string
	appends atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == c.stream {
		c.appends.Add(1)
	}
	return c.Store.Append(ctx, stream, expected, events...)
}

// Many orders asking for invoice numbers at once, some twice and some again with the same
// command after their number was taken (a replay): the series takes 1..n, one per order, in
// fewer appends than numbers, and every answer agrees with the series.
func TestInvoiceNumbersTakenTogetherStayGaplessAndOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		counting := &countingStore{Store: e.store, stream: domain.InvoiceSeriesStream}
		numbers := newInvoiceNumbering(commands.NewHandler(counting))
		ctx, stop := context.WithCancel(t.Context())
		var running sync.WaitGroup
		running.Go(func() { numbers.run(ctx) })
		defer func() { stop(); running.Wait() }()

		const orders = 120
		metas := make([]commands.Meta, orders)
		for i := range metas {
			metas[i] = e.meta()
		}
		type answer struct {
			order int
			res   commands.Result
			err   error
		}
		answers := make(chan answer, 3*orders)
		var asking sync.WaitGroup
		for i := range orders {
			// Every order asks once; every third asks again at once with another command (as a
			// second event about it would), and every fifth again with the same command.
			asks := []commands.Meta{metas[i]}
			if i%3 == 0 {
				asks = append(asks, e.meta())
			}
			if i%5 == 0 {
				asks = append(asks, metas[i])
			}
			for _, m := range asks {
				asking.Go(func() {
					res, err := numbers.assign(ctx, domain.AssignInvoiceNumber{OrderID: fmt.Sprintf("o%d", i), At: e.h.Now()}, m)
					answers <- answer{i, res, err}
				})
			}
		}
		asking.Wait()
		close(answers)

		numbered := seriesNumbers(t, e, domain.InvoiceSeriesStream, func(de domain.Event) (int64, string) {
			a := de.(domain.InvoiceNumberAssigned)
			return a.Number, domain.InvoiceKey(a.OrderID)
		})
		if len(numbered) != orders {
			t.Fatalf("%d orders numbered, want %d", len(numbered), orders)
		}
		took := map[int]int{}
		for a := range answers {
			if a.err != nil {
				t.Fatalf("order o%d: %v", a.order, a.err)
			}
			number := numbered[domain.InvoiceKey(fmt.Sprintf("o%d", a.order))]
			if a.res.Version != uint64(number-1) {
				t.Fatalf("order o%d answered version %d; the series gave it number %d", a.order, a.res.Version, number)
			}
			if !a.res.AlreadyApplied {
				took[a.order]++
				if len(a.res.Events) != 1 || a.res.Events[0].(domain.InvoiceNumberAssigned).Number != number {
					t.Fatalf("order o%d: taken with events %v; want its number %d", a.order, a.res.Events, number)
				}
			}
		}
		for i := range orders {
			if took[i] != 1 {
				t.Fatalf("order o%d was answered as taking its number %d times; want once", i, took[i])
			}
		}
		if n := counting.appends.Load(); n >= orders {
			t.Fatalf("%d appends for %d numbers: want them taken together", n, orders)
		} else {
			t.Logf("%d numbers taken in %d appends", orders, n)
		}

		// Asked again later, alone: the number taken, appending nothing.
		again, err := numbers.assign(ctx, domain.AssignInvoiceNumber{OrderID: "o7", At: e.h.Now()}, e.meta())
		if err != nil || again.Version != uint64(numbered[domain.InvoiceKey("o7")]-1) {
			t.Fatalf("o7 asked again: %+v, %v", again, err)
		}
		if n := len(readStream(t, e.store, domain.InvoiceSeriesStream)); n != orders {
			t.Fatalf("the series holds %d numbers after a repeat, want %d", n, orders)
		}
	})
}

// gatedStore holds back every delivery of its subscriptions after the one that brings the
// event with ID after, until open is closed.
type gatedStore struct {
	eventstore.Store
	mu    sync.Mutex
	after func(eventstore.Event) bool
	open  chan struct{}
}

func (g *gatedStore) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	passed := false
	return g.Store.Subscribe(ctx, from, func(ctx context.Context, batch []eventstore.Event) error {
		if passed {
			select {
			case <-g.open:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, e := range batch {
			g.mu.Lock()
			passed = passed || (g.after != nil && g.after(e))
			g.mu.Unlock()
		}
		return handle(ctx, batch)
	})
}

// An order goes from placed to invoiced while the log delivers nothing after its placement:
// the runner handles what its own commands append about the order at once (reserved,
// allocation recorded and confirmed, numbered, invoiced), and when the log delivers those
// events later it sends nothing again.
func TestAnOrderIsInvoicedWithoutWaitingForTheLog(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("LAMP", 10)
		e.receive("BULB", 10)
		e.customer("ivy")
		gated := &gatedStore{Store: e.store, open: make(chan struct{})}
		gated.after = func(ev eventstore.Event) bool {
			return ev.Type == (domain.OrderPlaced{}).EventType() && ev.Stream == domain.OrderStream("o1")
		}
		reg, withReg := withMetrics()
		r := New(commands.NewHandler(gated), e.checkpoints, withReg, WithLogger(testLogger(t)))
		ctx, cancel := context.WithCancel(t.Context())
		done := runAlone(ctx, r)
		defer func() { cancel(); <-done }()

		if err := e.place("o1", "ivy", 2000, line("LAMP", 2, 1500), line("BULB", 3, 200)); err != nil {
			t.Fatal(err)
		}
		o := e.waitOrder("o1", waitLong, "invoiced while the log holds back what came after its placement", func(o domain.Order) bool { return o.Invoiced() })
		if o.Status != domain.StatusConfirmed || o.InvoiceNumber != "INV-1" {
			t.Fatalf("order: status %s, invoice %q; want confirmed, INV-1", o.Status, o.InvoiceNumber)
		}
		// Both lines' allocations were recorded in one append: placed, two allocations and
		// the confirmation, the invoice.
		if _, events := fold(t, e.store, domain.OrderStream("o1"), domain.EvolveOrder); len(events) != 5 {
			t.Fatalf("order stream has %d events, want 5", len(events))
		}

		close(gated.open)
		e.waitFor(waitLong, "the runner to checkpoint everything", func() (bool, string) {
			st := r.Status()
			last := readAll(t, e.store)
			return st.Position.Compare(last[len(last)-1].Position) >= 0, fmt.Sprintf("%+v", st)
		})
		// ReserveStock twice, RecordLineAllocation twice, AssignInvoiceNumber (taken while the
		// allocations were recorded), RecordInvoice; the confirmation, delivered once the order is
		// invoiced, asks for no number; nothing sent again when the log delivered what had been handled ahead
		// of it.
		for outcome, want := range map[string]float64{"appended": 6, "already_applied": 0, "unchanged": 0} {
			if got := metricValue(t, reg, "orderledger_automation_commands_total", "outcome", outcome); got != want {
				t.Errorf("commands %s: %v, want %v", outcome, got, want)
			}
		}
		if got, want := metricValue(t, reg, "orderledger_automation_events_handled_total"), float64(len(readAll(t, e.store))); got != want {
			t.Errorf("events handled %v, log has %v", got, want)
		}
	})
}

// An order placed through the runner's handler is invoiced while the log delivers nothing
// after the events before it: the write path hands the placement over, and the runner does not
// wait for the subscription to bring it. When the log delivers it later, nothing is sent again.
func TestAPlacedOrderIsHandedOverWithoutWaitingForTheLog(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("LAMP", 10)
		e.receive("BULB", 10)
		e.customer("ivy")
		seeded := readAll(t, e.store)
		last := seeded[len(seeded)-1]
		gated := &gatedStore{Store: e.store, open: make(chan struct{})}
		gated.after = func(ev eventstore.Event) bool { return ev.ID == last.ID }
		reg, withReg := withMetrics()
		h := commands.NewHandler(gated)
		r := New(h, e.checkpoints, withReg, WithLogger(testLogger(t)))
		ctx, cancel := context.WithCancel(t.Context())
		done := runAlone(ctx, r)
		defer func() { cancel(); <-done }()
		e.waitFor(waitLong, "the runner to handle the seed", func() (bool, string) {
			st := r.Status()
			return st.Position.Compare(last.Position) >= 0, fmt.Sprintf("%+v", st)
		})

		if _, err := h.PlaceOrder(t.Context(), domain.PlaceOrder{OrderID: "o1", CustomerID: "ivy", Channel: "web", Currency: "EUR",
			Lines: []domain.OrderLine{line("LAMP", 2, 1500), line("BULB", 3, 200)}, TaxRateBps: 2000, At: h.Now()}, e.meta()); err != nil {
			t.Fatal(err)
		}
		o := e.waitOrder("o1", waitLong, "invoiced while the log holds back its placement", func(o domain.Order) bool { return o.Invoiced() })
		if o.Status != domain.StatusConfirmed || o.InvoiceNumber != "INV-1" {
			t.Fatalf("order: status %s, invoice %q; want confirmed, INV-1", o.Status, o.InvoiceNumber)
		}
		if st := r.Status(); st.Position != last.Position {
			t.Fatalf("the checkpoint moved to %s while the log was held back at %s", st.Position, last.Position)
		}

		close(gated.open)
		e.waitFor(waitLong, "the runner to checkpoint everything", func() (bool, string) {
			st := r.Status()
			all := readAll(t, e.store)
			return st.Position.Compare(all[len(all)-1].Position) >= 0, fmt.Sprintf("%+v", st)
		})
		// ReserveStock twice, RecordLineAllocation twice, AssignInvoiceNumber, RecordInvoice; the
		// confirmation, delivered once the order is invoiced, asks for no number; nothing sent again when the log delivered the placement and what followed it.
		for outcome, want := range map[string]float64{"appended": 6, "already_applied": 0, "unchanged": 0} {
			if got := metricValue(t, reg, "orderledger_automation_commands_total", "outcome", outcome); got != want {
				t.Errorf("commands %s: %v, want %v", outcome, got, want)
			}
		}
	})
}

// An order numbered ahead (with its allocations) and asked for again by its confirmation
// after more numbers than the series remembers: the second request, sent in answer to another
// event, finds the number taken and takes none. Before the numbering derived its command from
// the order, it took a second number and the order's invoice stopped the automation.
func TestInvoiceNumberAskedAgainAfterTheSeriesForgotTheOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		numbers := newInvoiceNumbering(commands.NewHandler(e.store))
		ctx, stop := context.WithCancel(t.Context())
		var running sync.WaitGroup
		running.Go(func() { numbers.run(ctx) })
		defer func() { stop(); running.Wait() }()
		answering := func() eventstore.Event { return eventstore.Event{ID: e.meta().CommandID} }
		ask := func(n *invoiceNumbering, order string) commands.Result {
			t.Helper()
			res, err := n.assign(ctx, domain.AssignInvoiceNumber{OrderID: order, At: e.h.Now()}, numberMeta(answering(), order))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}

		first := ask(numbers, "early")
		const later = 300 // more than the series remembers
		for i := range later {
			ask(numbers, fmt.Sprintf("later%d", i))
		}
		// Asked again by the same numbering, and by a fresh one as after a restart.
		again := newInvoiceNumbering(commands.NewHandler(e.store))
		running.Go(func() { again.run(ctx) })
		for _, n := range []*invoiceNumbering{numbers, again} {
			if res := ask(n, "early"); res.Version != first.Version || !res.AlreadyApplied {
				t.Fatalf("asked again: version %d (number %d), already applied %v; the order took number %d", res.Version, res.Version+1, res.AlreadyApplied, first.Version+1)
			}
		}
		if n := len(readStream(t, e.store, domain.InvoiceSeriesStream)); n != later+1 {
			t.Fatalf("the series holds %d numbers, want %d: an order was numbered twice", n, later+1)
		}
	})
}
