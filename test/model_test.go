package e2e

import (
	"fmt"
	"slices"
)

// model is what the server must hold after the requests a test sent, worked out from those
// requests and the rules of docs/api.md alone: totals, allocation, backorders served oldest first,
// replenishment, invoice and credit-note numbering, completion. It is the test's own account
// of the order-to-cash cycle, written without the server's code, for a script that lets the
// automation finish each step before it takes the next (so the numbering is determined).
type model struct {
	customers   map[string]*mCustomer
	orders      map[string]*mOrder
	placed      []*mOrder // in the order they were placed
	stock       map[string]*mStock
	pos         []*mPO // in the order they were raised
	invoices    int    // numbers taken from the INV series
	creditNotes int    // numbers taken from the CN series
}

func newModel() *model {
	return &model{customers: map[string]*mCustomer{}, orders: map[string]*mOrder{}, stock: map[string]*mStock{}}
}

type mCustomer struct {
	id, name, email, phone, preference string
}

type mLine struct {
	sku                   string
	quantity, unitPrice   int64
	reserved, backordered int64
	shipped, returned     int64
}

// mDocument is a payment or refund: its ID (answered by the server) and amount.
type mDocument struct {
	id     string
	amount int64
}

type mCreditNote struct {
	number, reason, returnID string
	net, tax, total          int64
}

type mOrder struct {
	id, customer, channel, currency string
	taxRateBps                      int64
	lines                           []*mLine
	subtotal, tax, total            int64
	status                          string
	invoice                         string
	payments, refunds               []mDocument
	creditNotes                     []mCreditNote
	carrier, tracking               string
	// types are the event types the order's stream must hold, in order.
	types []string
}

func (o *mOrder) paid() int64     { return sumDocuments(o.payments) }
func (o *mOrder) refunded() int64 { return sumDocuments(o.refunds) }
func (o *mOrder) credited() int64 {
	var n int64
	for _, cn := range o.creditNotes {
		n += cn.total
	}
	return n
}

// outstanding is docs/read-models.md's total − credited − paid + refunded.
func (o *mOrder) outstanding() int64 { return o.total - o.credited() - o.paid() + o.refunded() }

func (o *mOrder) line(sku string) *mLine {
	for _, l := range o.lines {
		if l.sku == sku {
			return l
		}
	}
	panic(fmt.Sprintf("order %s has no line of %s", o.id, sku))
}

func (o *mOrder) allReserved() bool {
	for _, l := range o.lines {
		if l.reserved != l.quantity {
			return false
		}
	}
	return true
}

func sumDocuments(docs []mDocument) int64 {
	var n int64
	for _, d := range docs {
		n += d.amount
	}
	return n
}

type mBackorder struct {
	order    string
	quantity int64
}

type mPolicy struct {
	point, quantity int64
	supplier        string
}

type mStock struct {
	sku                        string
	onHand, reserved, incoming int64
	queue                      []mBackorder // oldest first
	reservedFor                map[string]int64
	policy                     *mPolicy
}

func (s *mStock) available() int64 { return s.onHand - s.reserved }

func (s *mStock) backordered() int64 {
	var n int64
	for _, b := range s.queue {
		n += b.quantity
	}
	return n
}

type mPO struct {
	id       string // learnt from the server when it is raised
	sku      string
	supplier string
	quantity int64
	received bool
}

// roundHalfUp is docs/api.md's rounding of amount × bps / 10000 for non-negative amounts.
func roundHalfUp(amount, bps int64) int64 { return (amount*bps + 5000) / 10000 }

func (m *model) register(c *mCustomer) { m.customers[c.id] = c }

func (m *model) receive(sku string, quantity int64) {
	s := m.stock[sku]
	if s == nil {
		s = &mStock{sku: sku, reservedFor: map[string]int64{}}
		m.stock[sku] = s
	}
	s.onHand += quantity
	m.followUps(s)
}

func (m *model) setPolicy(sku string, p mPolicy) {
	s := m.stock[sku]
	s.policy = &p
	m.followUps(s)
}

// place records an order and what the allocation does to it: each line reserves what is
// available unless older backorders wait, the rest is backordered; a fully reserved order is
// confirmed and invoiced.
func (m *model) place(o *mOrder) {
	for _, l := range o.lines {
		o.subtotal += l.quantity * l.unitPrice
	}
	o.tax = roundHalfUp(o.subtotal, o.taxRateBps)
	o.total = o.subtotal + o.tax
	o.status = "pending"
	o.types = []string{"OrderPlaced.v1"}
	m.orders[o.id] = o
	m.placed = append(m.placed, o)
	for _, l := range o.lines {
		s := m.stock[l.sku]
		reserve := min(l.quantity, max(s.available(), 0))
		if len(s.queue) > 0 {
			reserve = 0
		}
		l.reserved, l.backordered = reserve, l.quantity-reserve
		s.reserved += reserve
		s.reservedFor[o.id] += reserve
		if l.backordered > 0 {
			s.queue = append(s.queue, mBackorder{o.id, l.backordered})
		}
		o.types = append(o.types, "OrderLineAllocated.v1")
		m.followUps(s)
	}
	if o.allReserved() {
		m.confirm(o)
		return
	}
	o.status = "backordered"
	o.types = append(o.types, "OrderBackordered.v1")
}

func (m *model) confirm(o *mOrder) {
	o.status = "confirmed"
	m.invoices++
	o.invoice = fmt.Sprintf("INV-%d", m.invoices)
	o.types = append(o.types, "OrderConfirmed.v1", "OrderInvoiced.v1")
}

// followUps hands what is available to the oldest backorders, then raises a purchase order
// when the forecast falls below the reorder point.
func (m *model) followUps(s *mStock) {
	for len(s.queue) > 0 && s.available() > 0 {
		b := &s.queue[0]
		fill := min(b.quantity, s.available())
		b.quantity -= fill
		s.reserved += fill
		s.reservedFor[b.order] += fill
		o := m.orders[b.order]
		l := o.line(s.sku)
		l.reserved += fill
		l.backordered -= fill
		o.types = append(o.types, "OrderLineAllocated.v1")
		if b.quantity == 0 {
			s.queue = s.queue[1:]
		}
		if o.allReserved() {
			m.confirm(o)
		}
	}
	if s.policy == nil {
		return
	}
	if forecast := s.available() + s.incoming - s.backordered(); forecast < s.policy.point {
		po := &mPO{sku: s.sku, supplier: s.policy.supplier, quantity: max(s.policy.quantity, s.policy.point-forecast)}
		m.pos = append(m.pos, po)
		s.incoming += po.quantity
	}
}

func (m *model) receivePO(po *mPO) {
	po.received = true
	s := m.stock[po.sku]
	s.onHand += po.quantity
	s.incoming -= po.quantity
	m.followUps(s)
}

func (m *model) pay(o *mOrder, p mDocument) {
	o.payments = append(o.payments, p)
	o.types = append(o.types, "PaymentReceived.v1")
	m.complete(o)
}

func (m *model) refund(o *mOrder, r mDocument) {
	o.refunds = append(o.refunds, r)
	o.types = append(o.types, "RefundIssued.v1")
	m.complete(o)
}

func (m *model) ship(o *mOrder, carrier, tracking string) {
	o.status, o.carrier, o.tracking = "shipped", carrier, tracking
	o.types = append(o.types, "OrderShipped.v1")
	for _, l := range o.lines {
		s := m.stock[l.sku]
		s.onHand -= l.quantity
		s.reserved -= l.quantity
		s.reservedFor[o.id] -= l.quantity
		l.shipped = l.quantity
	}
}

func (m *model) deliver(o *mOrder) {
	o.status = "delivered"
	o.types = append(o.types, "OrderDelivered.v1")
	m.complete(o)
}

// complete: a delivered, invoiced order with nothing outstanding is completed.
func (m *model) complete(o *mOrder) {
	if o.status == "delivered" && o.invoice != "" && o.outstanding() == 0 {
		o.status = "completed"
		o.types = append(o.types, "OrderCompleted.v1")
	}
}

// cancel releases what the order holds, which goes to the oldest backorders, and reverses
// an issued invoice with a credit note.
func (m *model) cancel(o *mOrder) {
	o.status = "cancelled"
	o.types = append(o.types, "OrderCancelled.v1")
	for _, l := range o.lines {
		// The order's lines hold nothing any more; the stock goes back to the SKU.
		l.reserved, l.backordered = 0, 0
		s := m.stock[l.sku]
		s.reserved -= s.reservedFor[o.id]
		delete(s.reservedFor, o.id)
		s.queue = slices.DeleteFunc(s.queue, func(b mBackorder) bool { return b.order == o.id })
		m.followUps(s)
	}
	if o.invoice != "" {
		m.creditNote(o, mCreditNote{reason: "cancellation", net: o.subtotal, tax: o.tax, total: o.total})
	}
}

// returnItems restocks the units (backorders first) and credits them: net = Σ quantity ×
// unit_price, tax rounded half up.
func (m *model) returnItems(o *mOrder, returnID string, quantities map[string]int64) {
	o.types = append(o.types, "OrderReturned.v1")
	cn := mCreditNote{reason: "return", returnID: returnID}
	for _, l := range o.lines {
		q := quantities[l.sku]
		if q == 0 {
			continue
		}
		l.returned += q
		cn.net += q * l.unitPrice
		s := m.stock[l.sku]
		s.onHand += q
		m.followUps(s)
	}
	// Cumulative rounding: the tax of every return so far, less what returns took before.
	var netBefore, taxBefore int64
	for _, c := range o.creditNotes {
		if c.reason == "return" {
			netBefore += c.net
			taxBefore += c.tax
		}
	}
	cn.tax = roundHalfUp(netBefore+cn.net, o.taxRateBps) - taxBefore
	cn.total = cn.net + cn.tax
	m.creditNote(o, cn)
}

func (m *model) creditNote(o *mOrder, cn mCreditNote) {
	m.creditNotes++
	cn.number = fmt.Sprintf("CN-%d", m.creditNotes)
	o.creditNotes = append(o.creditNotes, cn)
	o.types = append(o.types, "CreditNoteIssued.v1")
	m.complete(o)
}

// paymentStatus, first match wins: refunded (refunded > 0 and refunded ≥ paid);
// partially_refunded (refunded > 0); paid (paid ≥ total − credited, so a zero-total order is
// paid); partially_paid (paid > 0); unpaid.
func (o *mOrder) paymentStatus() string {
	paid, refunded := o.paid(), o.refunded()
	switch {
	case refunded > 0 && refunded >= paid:
		return "refunded"
	case refunded > 0:
		return "partially_refunded"
	case paid >= o.total-o.credited():
		return "paid"
	case paid > 0:
		return "partially_paid"
	}
	return "unpaid"
}

// fulfillmentStatus: unfulfilled until shipped; returned when every unit shipped came back,
// partially returned when some did; else delivered once delivered, or shipped.
func (o *mOrder) fulfillmentStatus() string {
	var shipped, returned int64
	for _, l := range o.lines {
		shipped += l.shipped
		returned += l.returned
	}
	switch {
	case shipped == 0:
		return "unfulfilled"
	case returned >= shipped:
		return "returned"
	case returned > 0:
		return "partially_returned"
	case o.status == "delivered" || o.status == "completed":
		return "delivered"
	}
	return "shipped"
}
