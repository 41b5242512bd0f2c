package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/domain"
)

// The property test runs random sequences of client commands over a few SKUs, customers and
// orders, with the cross-stream work done the way commands/automation does it: each
// manager follows the events it cares about in log order, at its own pace, so client
// commands land between a manager's steps (a cancellation before the stock was reserved, a
// payment between delivery and invoice …). After every step it checks the invariants the
// streams own; when no manager has work left it also checks that the streams agree.

// manager names a process manager; each works through its own queue in log order.
type manager string

const (
	allocation manager = "allocation" // order placed/cancelled, stock allocated/filled
	fulfilment manager = "fulfilment" // shipped → ship stock, returned → restock
	invoicing  manager = "invoicing"  // number invoices and credit notes, then record them
	purchasing manager = "purchasing" // replenishment → purchase order → receipt
)

var managers = []manager{allocation, fulfilment, invoicing, purchasing}

type published struct {
	stream string
	event  domain.Event
}

var (
	propSKUs      = []string{"S1", "S2", "S3"}
	propCustomers = []string{"C1", "C2"}
)

const maxOrders = 8

type world struct {
	t       *rapid.T
	clock   time.Time
	logs    map[string][]domain.Event
	queues  map[manager][]published
	handled map[manager][]published // what each manager has done, for replays

	orders      []string
	purchases   []string         // purchase orders raised
	onHand      map[string]int64 // what on hand must be, from the commands alone
	lastPayment map[string]domain.RecordPayment
	lastRefund  map[string]domain.IssueRefund
	lastReturn  map[string]domain.ReturnItems
	returnsMade map[string]int
	nextID      int
}

func TestPropertyOrderToCash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := &world{
			t: t, clock: now,
			logs: map[string][]domain.Event{}, queues: map[manager][]published{}, handled: map[manager][]published{},
			onHand: map[string]int64{}, lastPayment: map[string]domain.RecordPayment{}, lastRefund: map[string]domain.IssueRefund{},
			lastReturn: map[string]domain.ReturnItems{}, returnsMade: map[string]int{},
		}
		for _, c := range propCustomers {
			mustRecord(w, false, domain.CustomerStream(c), domain.EvolveCustomer, domain.DecideRegisterCustomer,
				domain.RegisterCustomer{CustomerID: c, Name: "Customer " + c, Email: c + "@example.com", At: w.tick()})
		}
		actions := w.actions()
		steps := rapid.IntRange(20, 300).Draw(t, "steps")
		for range steps {
			a := actions[rapid.IntRange(0, len(actions)-1).Draw(t, "action")]
			t.Log(a.name)
			a.run()
			w.checkInvariants()
		}
		w.drain()
		w.checkInvariants()
	})
}

type action struct {
	name string
	run  func()
}

// actions lists what a step may do. rapid draws the first and last indexes more often than
// the rest, so the commands that move an order along come early, the managers appear twice,
// and a cancellation, which ends a lifecycle, sits in the rarely drawn middle-to-end.
func (w *world) actions() []action {
	var steps, replays []action
	for _, m := range managers {
		steps = append(steps, action{"step " + string(m), func() { w.step(m, 1) }})
		replays = append(replays, action{"replay " + string(m), func() { w.replay(m) }})
	}
	return slices.Concat(steps, []action{
		{"receive", w.receive}, {"place", w.place}, {"drain", w.drain}, {"ship", w.ship},
		{"pay", w.pay}, {"deliver", w.deliver}, {"return", w.returnItems}, {"refund", w.refund},
	}, steps, []action{
		{"receive purchase order", w.receivePurchaseOrder}, {"policy", w.policy}, {"adjust", w.adjust},
		{"repeat", w.repeat}, {"cancel", w.cancel},
	}, replays, []action{{"drain", w.drain}})
}

func (w *world) tick() time.Time {
	w.clock = w.clock.Add(time.Second)
	return w.clock
}

// execute is what a command handler does, minus the I/O: fold the stream, decide, append.
// It also folds the stream a second time and checks Decide left its state as it found it,
// and that a refused command recorded nothing.
func execute[S, C any](w *world, stream string, evolve func(S, domain.Event) S, decide func(S, C) ([]domain.Event, error), cmd C) ([]domain.Event, error) {
	state, pristine := fold(evolve, w.logs[stream]), fold(evolve, w.logs[stream])
	got, err := decide(state, cmd)
	if !reflect.DeepEqual(state, pristine) {
		w.t.Fatalf("%T on %s changed the state it was given", cmd, stream)
	}
	if err != nil {
		if len(got) > 0 {
			w.t.Fatalf("%T on %s was refused (%v) yet recorded %s", cmd, stream, err, describe(got))
		}
		return nil, err
	}
	if s, ok := any(state).(domain.Stock); ok {
		checkServedOldestFirst(w.t, s, got)
	}
	w.logs[stream] = append(w.logs[stream], got...)
	for _, e := range got {
		w.publish(stream, e)
	}
	return got, nil
}

// mustRecord runs a command that may not be refused: every command a process manager sends,
// and client commands the model knows are valid. A command sent again must record nothing.
func mustRecord[S, C any](w *world, again bool, stream string, evolve func(S, domain.Event) S, decide func(S, C) ([]domain.Event, error), cmd C) []domain.Event {
	got, err := execute(w, stream, evolve, decide, cmd)
	if err != nil {
		w.t.Fatalf("%T %+v on %s refused: %v", cmd, cmd, stream, err)
	}
	if again && len(got) > 0 {
		w.t.Fatalf("%T %+v sent again recorded %s", cmd, cmd, describe(got))
	}
	return got
}

// expect runs a client command and checks the outcome the model predicts: want nil means
// it must be accepted, otherwise refused with that sentinel.
func expect[S, C any](w *world, stream string, evolve func(S, domain.Event) S, decide func(S, C) ([]domain.Event, error), cmd C, want error) []domain.Event {
	got, err := execute(w, stream, evolve, decide, cmd)
	if want == nil && err != nil {
		w.t.Fatalf("%T %+v refused: %v", cmd, cmd, err)
	}
	if want != nil && !errors.Is(err, want) {
		w.t.Fatalf("%T %+v: error %v, want %v", cmd, cmd, err, want)
	}
	return got
}

// checkServedOldestFirst replays a stock decision's events: every fill goes to the head of
// the queue, and nobody reserves past a waiting backorder.
func checkServedOldestFirst(t *rapid.T, s domain.Stock, decided []domain.Event) {
	for _, e := range decided {
		switch e := e.(type) {
		case domain.BackorderFilled:
			queue := s.Backorders()
			if len(queue) == 0 || queue[0].OrderID != e.OrderID || e.Quantity <= 0 || e.Quantity > queue[0].Quantity {
				t.Fatalf("%s fills %d for %s, queue %v", e.SKU, e.Quantity, e.OrderID, queue)
			}
		case domain.StockAllocated:
			if len(s.Backorders()) > 0 && e.Reserved > 0 {
				t.Fatalf("%s reserved %d for %s past the queue %v", e.SKU, e.Reserved, e.OrderID, s.Backorders())
			}
		}
		s = domain.EvolveStock(s, e)
	}
}

func (w *world) publish(stream string, e domain.Event) {
	var to []manager
	switch e := e.(type) {
	case domain.OrderPlaced, domain.StockAllocated, domain.BackorderFilled:
		to = []manager{allocation}
	case domain.OrderCancelled:
		to = []manager{allocation, invoicing}
	case domain.OrderShipped:
		to = []manager{fulfilment}
	case domain.OrderReturned:
		to = []manager{fulfilment, invoicing}
	case domain.OrderConfirmed, domain.OrderInvoiced, domain.InvoiceNumberAssigned, domain.CreditNoteNumberAssigned:
		to = []manager{invoicing}
	case domain.ReplenishmentRequested:
		to = []manager{purchasing}
		w.purchases = append(w.purchases, e.PurchaseOrderID)
	case domain.PurchaseOrderReceived:
		to = []manager{purchasing}
	}
	for _, m := range to {
		w.queues[m] = append(w.queues[m], published{stream, e})
	}
}

func (w *world) stock(sku string) domain.Stock {
	return fold(domain.EvolveStock, w.logs[domain.StockStream(sku)])
}

func (w *world) order(id string) domain.Order {
	return fold(domain.EvolveOrder, w.logs[domain.OrderStream(id)])
}

func (w *world) series(stream string) domain.Series {
	return fold(domain.EvolveSeries, w.logs[stream])
}

func (w *world) pickSKU() string { return rapid.SampledFrom(propSKUs).Draw(w.t, "sku") }

// pickOrder draws an order, mostly one in a status the command can act on (so that
// lifecycles get far) and sometimes any order (so that refusals are tried too).
func (w *world) pickOrder(useful ...domain.OrderStatus) (string, bool) {
	if len(w.orders) == 0 {
		return "", false
	}
	var candidates []string
	for _, id := range w.orders {
		if slices.Contains(useful, w.order(id).Status) {
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 0 || rapid.IntRange(0, 3).Draw(w.t, "any order") == 0 {
		candidates = w.orders
	}
	return rapid.SampledFrom(candidates).Draw(w.t, "order"), true
}

func (w *world) newID(prefix string) string {
	w.nextID++
	return fmt.Sprintf("%s%d", prefix, w.nextID)
}

// Client commands.

func (w *world) receive() {
	sku := w.pickSKU()
	q := rapid.Int64Range(1, 8).Draw(w.t, "quantity")
	mustRecord(w, false, domain.StockStream(sku), domain.EvolveStock, domain.DecideReceiveStock, domain.ReceiveStock{SKU: sku, Quantity: q, At: w.tick()})
	w.onHand[sku] += q
}

func (w *world) adjust() {
	sku := w.pickSKU()
	delta := rapid.Int64Range(-6, 6).Filter(func(d int64) bool { return d != 0 }).Draw(w.t, "delta")
	s := w.stock(sku)
	var want error
	switch {
	case !s.Exists:
		want = domain.ErrSKUNotFound
	case s.OnHand+delta < s.Reserved:
		want = domain.ErrInsufficientStock
	}
	if expect(w, domain.StockStream(sku), domain.EvolveStock, domain.DecideAdjustStock, domain.AdjustStock{SKU: sku, Delta: delta, Reason: "count", At: w.tick()}, want) != nil {
		w.onHand[sku] += delta
	}
}

func (w *world) policy() {
	sku := w.pickSKU()
	cmd := domain.SetReplenishmentPolicy{
		SKU: sku, ReorderPoint: rapid.Int64Range(0, 8).Draw(w.t, "reorder point"),
		ReorderQuantity: rapid.Int64Range(1, 8).Draw(w.t, "reorder quantity"), Supplier: "ACME", At: w.tick(),
	}
	var want error
	if !w.stock(sku).Exists {
		want = domain.ErrSKUNotFound
	}
	expect(w, domain.StockStream(sku), domain.EvolveStock, domain.DecideSetReplenishmentPolicy, cmd, want)
}

func (w *world) place() {
	if len(w.orders) >= maxOrders {
		return
	}
	var lines []domain.OrderLine
	for _, sku := range propSKUs {
		// The write route refuses an unknown SKU before the order stream is touched.
		if w.stock(sku).Exists && rapid.Bool().Draw(w.t, "orders "+sku) {
			lines = append(lines, domain.OrderLine{SKU: sku, Quantity: rapid.Int64Range(1, 6).Draw(w.t, "quantity"), UnitPrice: rapid.Int64Range(0, 1500).Draw(w.t, "unit price")})
		}
	}
	if len(lines) == 0 {
		return
	}
	id := w.newID("O")
	cmd := domain.PlaceOrder{
		OrderID: id, CustomerID: rapid.SampledFrom(propCustomers).Draw(w.t, "customer"), Channel: "web", Currency: "EUR",
		Lines: lines, TaxRateBps: rapid.SampledFrom([]int64{0, 500, 1950, 2000}).Draw(w.t, "tax rate"), At: w.tick(),
	}
	mustRecord(w, false, domain.OrderStream(id), domain.EvolveOrder, domain.DecidePlaceOrder, cmd)
	w.orders = append(w.orders, id)
}

// amountAround draws an amount at, just above or below a limit, so that both sides of each
// money rule are tried often.
func (w *world) amountAround(limit int64) int64 {
	switch rapid.IntRange(0, 2).Draw(w.t, "amount kind") {
	case 0:
		return max(limit, 1)
	case 1:
		return max(limit+1, 1)
	default:
		return rapid.Int64Range(1, max(limit, 1)).Draw(w.t, "amount")
	}
}

func (w *world) pay() {
	id, ok := w.pickOrder(domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered)
	if !ok {
		return
	}
	o := w.order(id)
	cmd := domain.RecordPayment{OrderID: id, PaymentID: w.newID("P"), Amount: w.amountAround(o.Outstanding()), Method: "card", At: w.tick()}
	var want error
	switch {
	case o.Status == domain.StatusCancelled:
		want = domain.ErrOrderCancelled
	case cmd.Amount > o.Outstanding():
		want = domain.ErrOverpayment
	}
	if expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideRecordPayment, cmd, want) != nil {
		w.lastPayment[id] = cmd
		if after := w.order(id); after.Outstanding() < 0 {
			w.t.Fatalf("payment of %d left %s paid %d above total %d − credited %d + refunded %d", cmd.Amount, id, after.Paid, after.Total, after.Credited, after.Refunded)
		}
	}
}

func (w *world) refund() {
	id, ok := w.pickOrder(domain.StatusDelivered, domain.StatusCompleted, domain.StatusCancelled)
	if !ok {
		return
	}
	o := w.order(id)
	amount := w.amountAround(o.Paid - o.Refunded)
	if o.Outstanding() < 0 && rapid.Bool().Draw(w.t, "settle") {
		amount = -o.Outstanding() // what a credit note left overpaid
	}
	cmd := domain.IssueRefund{OrderID: id, RefundID: w.newID("F"), Amount: amount, At: w.tick()}
	var want error
	if cmd.Amount > o.Paid-o.Refunded {
		want = domain.ErrRefundExceedsPaid
	}
	if expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideIssueRefund, cmd, want) != nil {
		w.lastRefund[id] = cmd
	}
}

func (w *world) ship() {
	id, ok := w.pickOrder(domain.StatusConfirmed)
	if !ok {
		return
	}
	var want error
	switch w.order(id).Status {
	case domain.StatusPending, domain.StatusBackordered:
		want = domain.ErrOrderNotConfirmed
	case domain.StatusShipped, domain.StatusDelivered, domain.StatusCompleted:
		want = domain.ErrOrderAlreadyShipped
	case domain.StatusCancelled:
		want = domain.ErrOrderCancelled
	}
	expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideShipOrder, domain.ShipOrder{OrderID: id, Carrier: "DHL", TrackingNumber: "T-" + id, At: w.tick()}, want)
}

func (w *world) deliver() {
	id, ok := w.pickOrder(domain.StatusShipped)
	if !ok {
		return
	}
	var want error
	if w.order(id).Status != domain.StatusShipped {
		want = domain.ErrOrderNotShipped
	}
	expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideDeliverOrder, domain.DeliverOrder{OrderID: id, At: w.tick()}, want)
}

func (w *world) cancel() {
	id, ok := w.pickOrder(domain.StatusPending, domain.StatusBackordered, domain.StatusConfirmed)
	if !ok {
		return
	}
	var want error
	switch w.order(id).Status {
	case domain.StatusCancelled:
		want = domain.ErrOrderCancelled
	case domain.StatusShipped, domain.StatusDelivered, domain.StatusCompleted:
		want = domain.ErrOrderAlreadyShipped
	}
	expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideCancelOrder, domain.CancelOrder{OrderID: id, Reason: "changed mind", At: w.tick()}, want)
}

func (w *world) returnItems() {
	id, ok := w.pickOrder(domain.StatusDelivered, domain.StatusCompleted)
	if !ok {
		return
	}
	o := w.order(id)
	line := o.Lines[rapid.IntRange(0, len(o.Lines)-1).Draw(w.t, "line")]
	q := rapid.Int64Range(1, line.Quantity).Draw(w.t, "quantity")
	// Return IDs are numbered per order, so different orders share them (R1, R2 …).
	cmd := domain.ReturnItems{OrderID: id, ReturnID: fmt.Sprintf("R%d", w.returnsMade[id]+1), Lines: []domain.ShippedLine{{SKU: line.SKU, Quantity: q}}, Reason: "broken", At: w.tick()}
	var want error
	switch {
	case o.Status != domain.StatusDelivered && o.Status != domain.StatusCompleted:
		want = domain.ErrOrderNotDelivered
	case q > line.Shipped-line.Returned:
		want = domain.ErrReturnExceedsShipped
	}
	if expect(w, domain.OrderStream(id), domain.EvolveOrder, domain.DecideReturnItems, cmd, want) != nil {
		w.returnsMade[id]++
		w.lastReturn[id] = cmd
	}
}

func (w *world) receivePurchaseOrder() {
	if len(w.purchases) == 0 {
		return
	}
	id := rapid.SampledFrom(w.purchases).Draw(w.t, "purchase order")
	p := fold(domain.EvolvePurchaseOrder, w.logs[domain.PurchaseOrderStream(id)])
	var want error
	switch {
	case !p.Raised:
		want = domain.ErrPurchaseOrderNotFound // the purchasing manager has not got to it yet
	case p.Received:
		want = domain.ErrAlreadyReceived
	}
	expect(w, domain.PurchaseOrderStream(id), domain.EvolvePurchaseOrder, domain.DecideReceivePurchaseOrder, domain.ReceivePurchaseOrder{PurchaseOrderID: id, At: w.tick()}, want)
}

// repeat sends a client's last payment, refund or return on an order again, as a client
// retrying after a lost answer would: nothing more may be recorded.
func (w *world) repeat() {
	id, ok := w.pickOrder()
	if !ok {
		return
	}
	stream := domain.OrderStream(id)
	if cmd, ok := w.lastPayment[id]; ok {
		mustRecord(w, true, stream, domain.EvolveOrder, domain.DecideRecordPayment, cmd)
	}
	if cmd, ok := w.lastRefund[id]; ok {
		mustRecord(w, true, stream, domain.EvolveOrder, domain.DecideIssueRefund, cmd)
	}
	if cmd, ok := w.lastReturn[id]; ok {
		mustRecord(w, true, stream, domain.EvolveOrder, domain.DecideReturnItems, cmd)
	}
}

// Process managers.

// step lets manager m handle up to n events from its queue.
func (w *world) step(m manager, n int) {
	for ; n > 0 && len(w.queues[m]) > 0; n-- {
		p := w.queues[m][0]
		w.queues[m] = w.queues[m][1:]
		w.handle(m, p, false)
		w.handled[m] = append(w.handled[m], p)
	}
}

// drain runs every manager until none has work left.
func (w *world) drain() {
	for busy := true; busy; {
		busy = false
		for _, m := range managers {
			if len(w.queues[m]) > 0 {
				busy = true
				w.step(m, len(w.queues[m]))
			}
		}
	}
}

// replay handles again an event m already handled, as a manager restarting from an older
// checkpoint would, and requires that it records nothing. Recording a line allocation is left
// out: the domain cannot tell a repeat of that delta from a new one, and the command handler
// answers a repeated command ID from the stream without deciding. An invoice is replayed
// without that requirement: its handler looks at the order as it is now, so a replay after a
// cancellation may be first to issue the credit note the cancellation is owed; the checks
// when the managers are idle then see that there is exactly one.
func (w *world) replay(m manager) {
	var candidates []published
	for _, p := range w.handled[m] {
		switch p.event.(type) {
		case domain.StockAllocated, domain.BackorderFilled:
		default:
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return
	}
	p := candidates[rapid.IntRange(0, len(candidates)-1).Draw(w.t, "replayed")]
	_, invoice := p.event.(domain.OrderInvoiced)
	w.handle(m, p, !invoice)
}

func (w *world) handle(m manager, p published, again bool) {
	at := w.tick()
	switch m {
	case allocation:
		switch e := p.event.(type) {
		case domain.OrderPlaced:
			for _, l := range e.Lines {
				mustRecord(w, again, domain.StockStream(l.SKU), domain.EvolveStock, domain.DecideReserveStock, domain.ReserveStock{SKU: l.SKU, OrderID: e.OrderID, Quantity: l.Quantity, At: at})
			}
		case domain.StockAllocated:
			mustRecord(w, again, domain.OrderStream(e.OrderID), domain.EvolveOrder, domain.DecideRecordLineAllocation, domain.RecordLineAllocation{OrderID: e.OrderID, SKU: e.SKU, Reserved: e.Reserved, Backordered: e.Backordered, At: at})
		case domain.BackorderFilled:
			mustRecord(w, again, domain.OrderStream(e.OrderID), domain.EvolveOrder, domain.DecideRecordLineAllocation, domain.RecordLineAllocation{OrderID: e.OrderID, SKU: e.SKU, Reserved: e.Quantity, Backordered: -e.Quantity, At: at})
		case domain.OrderCancelled:
			for _, l := range e.Lines {
				mustRecord(w, again, domain.StockStream(l.SKU), domain.EvolveStock, domain.DecideReleaseStock, domain.ReleaseStock{SKU: l.SKU, OrderID: e.OrderID, At: at})
			}
		}
	case fulfilment:
		switch e := p.event.(type) {
		case domain.OrderShipped:
			for _, l := range e.Lines {
				got := mustRecord(w, again, domain.StockStream(l.SKU), domain.EvolveStock, domain.DecideShipStock, domain.ShipStock{SKU: l.SKU, OrderID: e.OrderID, Quantity: l.Quantity, At: at})
				w.moved(again, l.SKU, -l.Quantity, got)
			}
		case domain.OrderReturned:
			for _, l := range e.Lines {
				got := mustRecord(w, again, domain.StockStream(l.SKU), domain.EvolveStock, domain.DecideRestockReturn, domain.RestockReturn{SKU: l.SKU, OrderID: e.OrderID, ReturnID: e.ReturnID, Quantity: l.Quantity, At: at})
				w.moved(again, l.SKU, l.Quantity, got)
			}
		}
	case invoicing:
		switch e := p.event.(type) {
		case domain.OrderConfirmed:
			// An order cancelled before it was invoiced needs no invoice; reading its state
			// now rather than at the event is safe because a cancellation is final.
			if o := w.order(e.OrderID); o.Status != domain.StatusCancelled || o.Invoiced() {
				mustRecord(w, again, domain.InvoiceSeriesStream, domain.EvolveSeries, domain.DecideAssignInvoiceNumber, domain.AssignInvoiceNumber{OrderID: e.OrderID, At: at})
			}
		case domain.InvoiceNumberAssigned:
			mustRecord(w, again, domain.OrderStream(e.OrderID), domain.EvolveOrder, domain.DecideRecordInvoice, domain.RecordInvoice{OrderID: e.OrderID, InvoiceNumber: domain.InvoiceNumber(e.Number), At: at})
		case domain.OrderCancelled:
			if e.Invoiced {
				w.assignCreditNote(again, e.OrderID, domain.CreditForCancellation, "", at)
			}
		case domain.OrderInvoiced:
			// The number may have been taken before a cancellation won the race.
			if w.order(e.OrderID).Status == domain.StatusCancelled {
				w.assignCreditNote(again, e.OrderID, domain.CreditForCancellation, "", at)
			}
		case domain.OrderReturned:
			w.assignCreditNote(again, e.OrderID, domain.CreditForReturn, e.ReturnID, at)
		case domain.CreditNoteNumberAssigned:
			mustRecord(w, again, domain.OrderStream(e.OrderID), domain.EvolveOrder, domain.DecideRecordCreditNote,
				domain.RecordCreditNote{OrderID: e.OrderID, CreditNoteNumber: domain.CreditNoteNumber(e.Number), Reason: e.Reason, ReturnID: e.ReturnID, At: at})
		}
	case purchasing:
		switch e := p.event.(type) {
		case domain.ReplenishmentRequested:
			mustRecord(w, again, domain.PurchaseOrderStream(e.PurchaseOrderID), domain.EvolvePurchaseOrder, domain.DecideRaisePurchaseOrder,
				domain.RaisePurchaseOrder{PurchaseOrderID: e.PurchaseOrderID, SKU: e.SKU, Supplier: e.Supplier, Quantity: e.Quantity, At: at})
		case domain.PurchaseOrderReceived:
			got := mustRecord(w, again, domain.StockStream(e.SKU), domain.EvolveStock, domain.DecideReceiveStock, domain.ReceiveStock{SKU: e.SKU, Quantity: e.Quantity, PurchaseOrderID: e.PurchaseOrderID, At: at})
			w.moved(again, e.SKU, e.Quantity, got)
		}
	}
}

// moved accounts for the units a manager's command took out of or put into stock. The first
// time an event is handled the movement must be recorded; a replay records nothing (which
// mustRecord has checked) and moves nothing.
func (w *world) moved(again bool, sku string, delta int64, recorded []domain.Event) {
	if again {
		return
	}
	if len(recorded) == 0 {
		w.t.Fatalf("%s: moving %+d units recorded nothing", sku, delta)
	}
	w.onHand[sku] += delta
}

func (w *world) assignCreditNote(again bool, orderID, reason, returnID string, at time.Time) {
	mustRecord(w, again, domain.CreditNoteSeriesStream, domain.EvolveSeries, domain.DecideAssignCreditNoteNumber, domain.AssignCreditNoteNumber{OrderID: orderID, Reason: reason, ReturnID: returnID, At: at})
}

// Invariants.

func (w *world) quiet() bool {
	for _, m := range managers {
		if len(w.queues[m]) > 0 {
			return false
		}
	}
	return true
}

func (w *world) checkInvariants() {
	stocks := map[string]domain.Stock{}
	for _, sku := range propSKUs {
		stocks[sku] = w.stock(sku)
		w.checkStock(sku, stocks[sku])
	}
	invoices, credits := w.series(domain.InvoiceSeriesStream), w.series(domain.CreditNoteSeriesStream)
	w.checkSeries(domain.InvoiceSeriesStream, invoices.Count)
	w.checkSeries(domain.CreditNoteSeriesStream, credits.Count)
	quiet := w.quiet()
	for _, id := range w.orders {
		o := w.order(id)
		w.checkOrder(o, invoices, credits)
		if quiet {
			w.checkOrderAgreesWithStock(o, stocks)
			w.checkOrderSettled(o)
		}
	}
	for _, sku := range propSKUs {
		var held int64
		for _, id := range w.orders {
			held += stocks[sku].ReservedFor(id)
		}
		if held != stocks[sku].Reserved {
			w.t.Fatalf("%s: reservations per order add up to %d, reserved is %d", sku, held, stocks[sku].Reserved)
		}
	}
	if quiet {
		w.checkSeriesRecorded()
		w.checkPurchaseOrdersRaised()
	}
}

func (w *world) checkStock(sku string, s domain.Stock) {
	t := w.t
	if s.Reserved < 0 || s.Reserved > s.OnHand {
		t.Fatalf("%s: reserved %d, on hand %d", sku, s.Reserved, s.OnHand)
	}
	if s.OnHand != w.onHand[sku] {
		t.Fatalf("%s: on hand %d, the commands add up to %d", sku, s.OnHand, w.onHand[sku])
	}
	queue := s.Backorders()
	if len(queue) > 0 && s.Available() != 0 {
		t.Fatalf("%s: %d available while %v wait", sku, s.Available(), queue)
	}
	// The queue keeps the order in which the orders asked.
	asked := map[string]int{}
	incoming := map[string]int64{}
	for i, e := range w.logs[domain.StockStream(sku)] {
		switch e := e.(type) {
		case domain.StockAllocated:
			asked[e.OrderID] = i
		case domain.ReplenishmentRequested:
			incoming[e.PurchaseOrderID] = e.Quantity
		case domain.StockReceived:
			delete(incoming, e.PurchaseOrderID)
		}
	}
	for i, b := range queue {
		if b.Quantity <= 0 || (i > 0 && asked[queue[i-1].OrderID] >= asked[b.OrderID]) {
			t.Fatalf("%s: queue %v is not in the order the orders asked", sku, queue)
		}
	}
	var open int64
	for _, q := range incoming {
		open += q
	}
	if s.Incoming != open {
		t.Fatalf("%s: incoming %d, open purchase orders %d", sku, s.Incoming, open)
	}
	// After any decision the forecast is at or above the reorder point: a shortfall raised
	// its purchase order at once, and only one.
	if s.Policy.IsSet() {
		if forecast := s.Available() + s.Incoming - s.Backordered(); forecast < s.Policy.ReorderPoint {
			t.Fatalf("%s: forecast %d below reorder point %d with no purchase order raised for it", sku, forecast, s.Policy.ReorderPoint)
		}
	}
}

func (w *world) checkOrder(o domain.Order, invoices, credits domain.Series) {
	t := w.t
	for _, l := range o.Lines {
		if l.Reserved < 0 || l.Backordered < 0 || l.Reserved+l.Backordered > l.Quantity {
			t.Fatalf("%s %s: reserved %d + backordered %d of %d", o.ID, l.SKU, l.Reserved, l.Backordered, l.Quantity)
		}
		if l.Returned < 0 || l.Returned > l.Shipped || (l.Shipped != 0 && l.Shipped != l.Quantity) {
			t.Fatalf("%s %s: returned %d, shipped %d of %d", o.ID, l.SKU, l.Returned, l.Shipped, l.Quantity)
		}
		if afterConfirmation(o.Status) && l.Reserved != l.Quantity {
			t.Fatalf("%s is %s with %s reserved %d of %d", o.ID, o.Status, l.SKU, l.Reserved, l.Quantity)
		}
	}
	if o.Refunded < 0 || o.Refunded > o.Paid || o.Paid-o.Refunded > o.Total {
		t.Fatalf("%s: paid %d, refunded %d, total %d", o.ID, o.Paid, o.Refunded, o.Total)
	}
	if o.Status == domain.StatusCompleted && !o.Invoiced() {
		t.Fatalf("%s completed without an invoice", o.ID)
	}
	if o.Status == domain.StatusDelivered && o.Invoiced() && o.Outstanding() == 0 {
		t.Fatalf("%s is delivered, invoiced and settled but not completed", o.ID)
	}
	if o.Invoiced() {
		if n, ok := invoices.NumberFor(domain.InvoiceKey(o.ID)); !ok || o.InvoiceNumber != domain.InvoiceNumber(n) {
			t.Fatalf("%s records invoice %s, the series gave it %d", o.ID, o.InvoiceNumber, n)
		}
	}
	var credited int64
	for _, cn := range o.CreditNotes {
		if n, ok := credits.NumberFor(domain.CreditNoteKey(o.ID, cn.Reason, cn.ReturnID)); !ok || cn.Number != domain.CreditNoteNumber(n) {
			t.Fatalf("%s records credit note %s, the series gave it %d", o.ID, cn.Number, n)
		}
		credited += cn.Total
	}
	if credited != o.Credited {
		t.Fatalf("%s: credit notes total %d, credited %d", o.ID, credited, o.Credited)
	}
}

func afterConfirmation(status domain.OrderStatus) bool {
	switch status {
	case domain.StatusConfirmed, domain.StatusShipped, domain.StatusDelivered, domain.StatusCompleted:
		return true
	}
	return false
}

// checkOrderAgreesWithStock: once the managers are idle, what each order line says it got is
// what the SKU's stream holds for the order.
func (w *world) checkOrderAgreesWithStock(o domain.Order, stocks map[string]domain.Stock) {
	for _, l := range o.Lines {
		s := stocks[l.SKU]
		var waiting int64
		for _, b := range s.Backorders() {
			if b.OrderID == o.ID {
				waiting = b.Quantity
			}
		}
		reserved, backordered := l.Reserved, l.Backordered
		if o.Status == domain.StatusCancelled || l.Shipped > 0 {
			reserved, backordered = 0, 0
		}
		if s.ReservedFor(o.ID) != reserved || waiting != backordered {
			w.t.Fatalf("%s (%s) %s: the order says reserved %d backordered %d, stock holds %d and queues %d",
				o.ID, o.Status, l.SKU, reserved, backordered, s.ReservedFor(o.ID), waiting)
		}
	}
}

// checkOrderSettled: once the managers are idle, every order's status follows from its lines
// and every document it is owed has been issued.
func (w *world) checkOrderSettled(o domain.Order) {
	t := w.t
	if o.Status == domain.StatusCancelled {
		if o.Invoiced() && countCredits(o, domain.CreditForCancellation) != 1 {
			t.Fatalf("%s: cancelled after invoice %s, credit notes %+v", o.ID, o.InvoiceNumber, o.CreditNotes)
		}
		return
	}
	short := false
	for _, l := range o.Lines {
		if l.Reserved+l.Backordered != l.Quantity {
			t.Fatalf("%s %s: allocation not recorded: reserved %d backordered %d of %d", o.ID, l.SKU, l.Reserved, l.Backordered, l.Quantity)
		}
		short = short || l.Backordered > 0
	}
	switch {
	case o.Status == domain.StatusPending:
		t.Fatalf("%s still pending with every line allocated", o.ID)
	case short != (o.Status == domain.StatusBackordered):
		t.Fatalf("%s is %s, a line short: %v", o.ID, o.Status, short)
	case afterConfirmation(o.Status) && !o.Invoiced():
		t.Fatalf("%s is %s and not invoiced", o.ID, o.Status)
	}
	for id := range returnIDs(w.logs[domain.OrderStream(o.ID)]) {
		found := 0
		for _, cn := range o.CreditNotes {
			if cn.Reason == domain.CreditForReturn && cn.ReturnID == id {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("%s: return %s has %d credit notes", o.ID, id, found)
		}
	}
}

func countCredits(o domain.Order, reason string) int {
	n := 0
	for _, cn := range o.CreditNotes {
		if cn.Reason == reason {
			n++
		}
	}
	return n
}

func returnIDs(log []domain.Event) map[string]bool {
	ids := map[string]bool{}
	for _, e := range log {
		if r, ok := e.(domain.OrderReturned); ok {
			ids[r.ReturnID] = true
		}
	}
	return ids
}

// checkSeries: the numbers a series gave are exactly 1..count, in order, one per document.
func (w *world) checkSeries(stream string, count int64) {
	keys := map[string]bool{}
	log := w.logs[stream]
	for i, e := range log {
		var n int64
		var key string
		switch e := e.(type) {
		case domain.InvoiceNumberAssigned:
			n, key = e.Number, domain.InvoiceKey(e.OrderID)
		case domain.CreditNoteNumberAssigned:
			n, key = e.Number, domain.CreditNoteKey(e.OrderID, e.Reason, e.ReturnID)
		}
		if n != int64(i+1) || keys[key] {
			w.t.Fatalf("%s: event %d gives number %d to %s (seen before: %v)", stream, i, n, key, keys[key])
		}
		keys[key] = true
	}
	if count != int64(len(log)) {
		w.t.Fatalf("%s: count %d after %d numbers", stream, count, len(log))
	}
}

// checkSeriesRecorded: once the managers are idle, no number was taken and left unused.
func (w *world) checkSeriesRecorded() {
	for _, e := range w.logs[domain.InvoiceSeriesStream] {
		a := e.(domain.InvoiceNumberAssigned)
		if got := w.order(a.OrderID).InvoiceNumber; got != domain.InvoiceNumber(a.Number) {
			w.t.Fatalf("invoice %d went to %s, which records %q", a.Number, a.OrderID, got)
		}
	}
	for _, e := range w.logs[domain.CreditNoteSeriesStream] {
		a := e.(domain.CreditNoteNumberAssigned)
		found := false
		for _, cn := range w.order(a.OrderID).CreditNotes {
			found = found || cn.Number == domain.CreditNoteNumber(a.Number)
		}
		if !found {
			w.t.Fatalf("credit note %d went to %s, which does not record it", a.Number, a.OrderID)
		}
	}
}

// checkPurchaseOrdersRaised: every replenishment a SKU decided has its purchase order.
func (w *world) checkPurchaseOrdersRaised() {
	for _, id := range w.purchases {
		p := fold(domain.EvolvePurchaseOrder, w.logs[domain.PurchaseOrderStream(id)])
		if !p.Raised || p.Quantity <= 0 {
			w.t.Fatalf("purchase order %s: %+v", id, p)
		}
	}
}
