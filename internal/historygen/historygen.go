package historygen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Record is a generated event and the stream it belongs to.
type Record struct {
	Stream string
	Event  domain.Event
}

// Generator makes a history step by step. The same Config makes the same history.
type Generator struct {
	rng *rand.Rand
	now time.Time

	customers []string
	skus      []string
	stock     map[string]domain.Stock
	orders    map[string]domain.Order
	pos       map[string]domain.PurchaseOrder
	invoices  domain.Series
	credits   domain.Series

	toShip, toDeliver, toPay, toReturn, toCancel, toReceive pool

	nOrders, nPayments, nRefunds, nReturns int
	out                                    []Record
}

// Config sizes a generated business.
type Config struct {
	Seed      uint64
	Start     time.Time
	Customers int // registered up front
	SKUs      int // received and given a replenishment policy up front
}

// New starts a history: customers registered, SKUs stocked. Step returns these events first.
func New(cfg Config) *Generator {
	g := &Generator{
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		now:    cfg.Start.UTC(),
		stock:  map[string]domain.Stock{},
		orders: map[string]domain.Order{},
		pos:    map[string]domain.PurchaseOrder{},
	}
	for i := range max(cfg.Customers, 1) {
		g.registerCustomer("C" + strconv.Itoa(i+1))
	}
	for i := range max(cfg.SKUs, 1) {
		sku := "SKU-" + strconv.Itoa(i+1)
		g.skus = append(g.skus, sku)
		g.stockEvents(sku, must(domain.DecideReceiveStock(g.stock[sku], domain.ReceiveStock{SKU: sku, Quantity: int64(20 + g.rng.IntN(200)), Reference: "opening", At: g.tick()})))
		g.stockEvents(sku, must(domain.DecideSetReplenishmentPolicy(g.stock[sku], domain.SetReplenishmentPolicy{
			SKU: sku, ReorderPoint: int64(5 + g.rng.IntN(20)), ReorderQuantity: int64(50 + g.rng.IntN(200)),
			Supplier: "supplier-" + strconv.Itoa(1+i%7), At: g.tick(),
		})))
	}
	return g
}

// Step moves the business on by one action (an order, a payment, a shipment…) and returns
// the events it made, in the order the write side would have appended them.
func (g *Generator) Step() []Record {
	g.tick()
	switch n := g.rng.IntN(100); {
	case n < 2 && g.toReceive.len() > 0:
		g.receivePurchaseOrder()
	case n < 4 && g.toCancel.len() > 0:
		g.cancel()
	case n < 8 && g.toReturn.len() > 0:
		g.returnItems()
	case n < 30 && g.toPay.len() > 0:
		g.pay()
	case n < 50 && g.toShip.len() > 0:
		g.ship()
	case n < 68 && g.toDeliver.len() > 0:
		g.deliver()
	case n < 69:
		g.registerCustomer("C" + strconv.Itoa(len(g.customers)+1))
	case n < 70:
		g.changeCustomer()
	default:
		g.placeOrder()
	}
	out := g.out
	g.out = nil
	return out
}

// Orders returns the state of every order generated, folded as the write side folds it.
func (g *Generator) Orders() map[string]domain.Order { return g.orders }

func (g *Generator) tick() time.Time {
	g.now = g.now.Add(time.Duration(1+g.rng.IntN(90)) * time.Second)
	return g.now
}

func must(events []domain.Event, err error) []domain.Event {
	if err != nil {
		panic(fmt.Sprintf("historygen: the generated history broke a rule: %v", err))
	}
	return events
}

func (g *Generator) emit(stream string, e domain.Event) {
	g.out = append(g.out, Record{Stream: stream, Event: e})
}

func (g *Generator) registerCustomer(id string) {
	g.customers = append(g.customers, id)
	for _, e := range must(domain.DecideRegisterCustomer(domain.Customer{}, domain.RegisterCustomer{
		CustomerID: id, Name: "Customer " + id, Email: id + "@example.com", PaymentPreference: "card", At: g.now,
	})) {
		g.emit(domain.CustomerStream(id), e)
	}
}

func (g *Generator) changeCustomer() {
	id := g.customers[g.rng.IntN(len(g.customers))]
	phone := "+1 555 " + strconv.Itoa(1000+g.rng.IntN(9000))
	g.emit(domain.CustomerStream(id), domain.CustomerDetailsChanged{CustomerID: id, Phone: &phone, ChangedAt: g.now})
}

// stockEvents records a SKU's events and plays the process managers that follow them:
// allocations reach their orders, replenishments become purchase orders.
func (g *Generator) stockEvents(sku string, events []domain.Event) {
	for _, e := range events {
		g.stock[sku] = domain.EvolveStock(g.stock[sku], e)
		g.emit(domain.StockStream(sku), e)
	}
	for _, e := range events {
		switch e := e.(type) {
		case domain.StockAllocated:
			g.recordAllocation(e.OrderID, sku, e.Reserved, e.Backordered)
		case domain.BackorderFilled:
			g.recordAllocation(e.OrderID, sku, e.Quantity, -e.Quantity)
		case domain.ReplenishmentRequested:
			po := g.pos[e.PurchaseOrderID]
			for _, pe := range must(domain.DecideRaisePurchaseOrder(po, domain.RaisePurchaseOrder{
				PurchaseOrderID: e.PurchaseOrderID, SKU: sku, Supplier: e.Supplier, Quantity: e.Quantity, At: g.now,
			})) {
				po = domain.EvolvePurchaseOrder(po, pe)
				g.emit(domain.PurchaseOrderStream(e.PurchaseOrderID), pe)
			}
			g.pos[e.PurchaseOrderID] = po
			g.toReceive.add(e.PurchaseOrderID)
		}
	}
}

func (g *Generator) orderEvents(id string, events []domain.Event) {
	o := g.orders[id]
	for _, e := range events {
		o = domain.EvolveOrder(o, e)
		g.emit(domain.OrderStream(id), e)
	}
	g.orders[id] = o
}

func (g *Generator) recordAllocation(orderID, sku string, reserved, backordered int64) {
	before := g.orders[orderID].Status
	g.orderEvents(orderID, must(domain.DecideRecordLineAllocation(g.orders[orderID], domain.RecordLineAllocation{
		OrderID: orderID, SKU: sku, Reserved: reserved, Backordered: backordered, At: g.now,
	})))
	if g.orders[orderID].Status == domain.StatusConfirmed && before != domain.StatusConfirmed {
		g.toShip.add(orderID)
		g.invoice(orderID)
	}
}

func (g *Generator) invoice(orderID string) {
	for _, e := range must(domain.DecideAssignInvoiceNumber(g.invoices, domain.AssignInvoiceNumber{OrderID: orderID, At: g.now})) {
		g.invoices = domain.EvolveSeries(g.invoices, e)
		g.emit(domain.InvoiceSeriesStream, e)
	}
	n, _ := g.invoices.NumberFor(domain.InvoiceKey(orderID))
	g.orderEvents(orderID, must(domain.DecideRecordInvoice(g.orders[orderID], domain.RecordInvoice{OrderID: orderID, InvoiceNumber: domain.InvoiceNumber(n), At: g.now})))
	if g.orders[orderID].Outstanding() > 0 {
		g.toPay.add(orderID)
	}
}

func (g *Generator) placeOrder() {
	g.nOrders++
	id := "O" + strconv.Itoa(g.nOrders)
	lines := make([]domain.OrderLine, min(1+g.rng.IntN(3), len(g.skus)))
	used := map[string]bool{}
	for i := range lines {
		sku := g.skus[g.rng.IntN(len(g.skus))]
		for used[sku] {
			sku = g.skus[g.rng.IntN(len(g.skus))]
		}
		used[sku] = true
		lines[i] = domain.OrderLine{SKU: sku, Quantity: int64(1 + g.rng.IntN(5)), UnitPrice: int64(100 * (1 + g.rng.IntN(200)))}
	}
	g.orderEvents(id, must(domain.DecidePlaceOrder(domain.Order{}, domain.PlaceOrder{
		OrderID: id, CustomerID: g.customers[g.rng.IntN(len(g.customers))],
		Channel: []string{"web", "web", "store", "phone"}[g.rng.IntN(4)], Currency: "EUR", Lines: lines,
		TaxRateBps: []int64{0, 700, 1900, 2000}[g.rng.IntN(4)], At: g.now,
	})))
	g.toCancel.add(id)
	for _, l := range lines {
		g.stockEvents(l.SKU, must(domain.DecideReserveStock(g.stock[l.SKU], domain.ReserveStock{SKU: l.SKU, OrderID: id, Quantity: l.Quantity, At: g.now})))
	}
}

func (g *Generator) pay() {
	id := g.toPay.pick(g.rng)
	o := g.orders[id]
	amount := o.Outstanding()
	if g.rng.IntN(5) == 0 && amount > 1 {
		amount /= 2 // a part payment; the rest comes later
	}
	g.nPayments++
	g.orderEvents(id, must(domain.DecideRecordPayment(o, domain.RecordPayment{
		OrderID: id, PaymentID: "P" + strconv.Itoa(g.nPayments), Amount: amount, Method: "card", At: g.now,
	})))
	if g.orders[id].Outstanding() <= 0 {
		g.toPay.remove(id)
	}
}

func (g *Generator) ship() {
	id := g.toShip.pick(g.rng)
	g.toShip.remove(id)
	g.toCancel.remove(id)
	o := g.orders[id]
	g.orderEvents(id, must(domain.DecideShipOrder(o, domain.ShipOrder{OrderID: id, Carrier: "DHL", TrackingNumber: "T" + id, At: g.now})))
	for _, l := range o.Lines {
		g.stockEvents(l.SKU, must(domain.DecideShipStock(g.stock[l.SKU], domain.ShipStock{SKU: l.SKU, OrderID: id, Quantity: l.Quantity, At: g.now})))
	}
	g.toDeliver.add(id)
}

func (g *Generator) deliver() {
	id := g.toDeliver.pick(g.rng)
	g.toDeliver.remove(id)
	g.orderEvents(id, must(domain.DecideDeliverOrder(g.orders[id], domain.DeliverOrder{OrderID: id, At: g.now})))
	if g.rng.IntN(8) == 0 {
		g.toReturn.add(id)
	}
}

// returnItems takes back part of a delivered order: restock, credit note, and a refund of
// what was paid beyond what is still owed.
func (g *Generator) returnItems() {
	id := g.toReturn.pick(g.rng)
	g.toReturn.remove(id)
	o := g.orders[id]
	line := o.Lines[g.rng.IntN(len(o.Lines))]
	g.nReturns++
	returnID := "R" + strconv.Itoa(g.nReturns)
	g.orderEvents(id, must(domain.DecideReturnItems(o, domain.ReturnItems{
		OrderID: id, ReturnID: returnID, Lines: []domain.ShippedLine{{SKU: line.SKU, Quantity: 1 + g.rng.Int64N(line.Quantity)}},
		Reason: "did not fit", At: g.now,
	})))
	returned, _ := g.orders[id].ReturnByID(returnID)
	for _, l := range returned.Lines {
		g.stockEvents(l.SKU, must(domain.DecideRestockReturn(g.stock[l.SKU], domain.RestockReturn{SKU: l.SKU, OrderID: id, ReturnID: returnID, Quantity: l.Quantity, At: g.now})))
	}
	g.creditNote(id, domain.CreditForReturn, returnID)
}

func (g *Generator) creditNote(orderID, reason, returnID string) {
	for _, e := range must(domain.DecideAssignCreditNoteNumber(g.credits, domain.AssignCreditNoteNumber{OrderID: orderID, Reason: reason, ReturnID: returnID, At: g.now})) {
		g.credits = domain.EvolveSeries(g.credits, e)
		g.emit(domain.CreditNoteSeriesStream, e)
	}
	n, _ := g.credits.NumberFor(domain.CreditNoteKey(orderID, reason, returnID))
	g.orderEvents(orderID, must(domain.DecideRecordCreditNote(g.orders[orderID], domain.RecordCreditNote{
		OrderID: orderID, CreditNoteNumber: domain.CreditNoteNumber(n), Reason: reason, ReturnID: returnID, At: g.now,
	})))
	o := g.orders[orderID]
	if over := -o.Outstanding(); over > 0 && o.Paid-o.Refunded > 0 {
		g.nRefunds++
		g.orderEvents(orderID, must(domain.DecideIssueRefund(o, domain.IssueRefund{
			OrderID: orderID, RefundID: "F" + strconv.Itoa(g.nRefunds), Amount: min(over, o.Paid-o.Refunded), At: g.now,
		})))
	}
	if g.orders[orderID].Outstanding() <= 0 {
		g.toPay.remove(orderID)
	}
}

func (g *Generator) cancel() {
	id := g.toCancel.pick(g.rng)
	g.toCancel.remove(id)
	g.toShip.remove(id)
	o := g.orders[id]
	g.orderEvents(id, must(domain.DecideCancelOrder(o, domain.CancelOrder{OrderID: id, Reason: "changed my mind", At: g.now})))
	for _, l := range o.Lines {
		g.stockEvents(l.SKU, must(domain.DecideReleaseStock(g.stock[l.SKU], domain.ReleaseStock{SKU: l.SKU, OrderID: id, At: g.now})))
	}
	if o.Invoiced() {
		g.creditNote(id, domain.CreditForCancellation, "")
	}
	g.toPay.remove(id)
}

func (g *Generator) receivePurchaseOrder() {
	id := g.toReceive.pick(g.rng)
	g.toReceive.remove(id)
	po := g.pos[id]
	for _, e := range must(domain.DecideReceivePurchaseOrder(po, domain.ReceivePurchaseOrder{PurchaseOrderID: id, At: g.now})) {
		po = domain.EvolvePurchaseOrder(po, e)
		g.emit(domain.PurchaseOrderStream(id), e)
	}
	g.pos[id] = po
	g.stockEvents(po.SKU, must(domain.DecideReceiveStock(g.stock[po.SKU], domain.ReceiveStock{
		SKU: po.SKU, Quantity: po.Quantity, PurchaseOrderID: id, Reference: id, At: g.now,
	})))
}

// pool is a set to draw random members from.
type pool struct {
	items []string
	index map[string]int
}

func (p *pool) len() int { return len(p.items) }

func (p *pool) add(id string) {
	if p.index == nil {
		p.index = map[string]int{}
	}
	if _, ok := p.index[id]; ok {
		return
	}
	p.index[id] = len(p.items)
	p.items = append(p.items, id)
}

func (p *pool) remove(id string) {
	i, ok := p.index[id]
	if !ok {
		return
	}
	last := p.items[len(p.items)-1]
	p.items[i], p.index[last] = last, i
	p.items = p.items[:len(p.items)-1]
	delete(p.index, id)
}

func (p *pool) pick(rng *rand.Rand) string { return p.items[rng.IntN(len(p.items))] }
