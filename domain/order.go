package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// OrderStatus is where an order stands in its life (docs/api.md, "Orders").
type OrderStatus string

// Order statuses: pending → (backordered →) confirmed → shipped → delivered → completed, or
// cancelled before shipping.
const (
	StatusPending     OrderStatus = "pending"
	StatusBackordered OrderStatus = "backordered"
	StatusConfirmed   OrderStatus = "confirmed"
	StatusShipped     OrderStatus = "shipped"
	StatusDelivered   OrderStatus = "delivered"
	StatusCompleted   OrderStatus = "completed"
	StatusCancelled   OrderStatus = "cancelled"
)

// OrderStatuses are every order status, in the order of an order's life.
var OrderStatuses = []OrderStatus{
	StatusPending, StatusBackordered, StatusConfirmed, StatusShipped, StatusDelivered, StatusCompleted, StatusCancelled,
}

// Channels an order comes in through.
var channels = map[string]bool{"web": true, "store": true, "phone": true}

// ValidChannel reports whether c is web, store or phone.
func ValidChannel(c string) bool { return channels[c] }

// MaxOrderLines bounds an order's lines.
const MaxOrderLines = 500

// Order is the folded state of an order stream: what was ordered, allocated, invoiced, paid,
// shipped, returned and credited. Build it only with EvolveOrder.
type Order struct {
	ID              string
	CustomerID      string
	Channel         string
	Currency        string
	Lines           []LineState
	TaxRateBps      int64
	Subtotal        int64
	Tax             int64
	Total           int64
	PaymentMethod   string
	ShippingAddress string
	Status          OrderStatus
	InvoiceNumber   string
	Paid            int64
	Refunded        int64
	Credited        int64
	CreditNotes     []CreditNote
	Carrier         string
	TrackingNumber  string
	PlacedAt        time.Time
	UpdatedAt       time.Time

	payments map[string]bool
	refunds  map[string]bool
	returns  map[string]OrderReturned
}

// LineState is one order line with what stock did for it.
type LineState struct {
	SKU         string
	Quantity    int64
	UnitPrice   int64
	Reserved    int64
	Backordered int64
	Shipped     int64
	Returned    int64
}

// CreditNote is an issued credit note.
type CreditNote struct {
	Number   string
	Reason   string
	ReturnID string
	Net      int64
	Tax      int64
	Total    int64
	IssuedAt time.Time
}

// Payment statuses.
const (
	PaymentUnpaid            = "unpaid"
	PaymentPartiallyPaid     = "partially_paid"
	PaymentPaid              = "paid"
	PaymentPartiallyRefunded = "partially_refunded"
	PaymentRefunded          = "refunded"
)

// PaymentStatus is the rule behind an order's payment_status, as order systems (Shopify,
// Medusa, Saleor) mean it; the first that matches wins:
//
//	refunded            refunded > 0 and refunded ≥ paid
//	partially_refunded  refunded > 0
//	paid                paid ≥ total − credited (so a zero-total order is paid)
//	partially_paid      paid > 0
//	unpaid              otherwise
func PaymentStatus(total, credited, paid, refunded int64) string {
	switch {
	case refunded > 0 && refunded >= paid:
		return PaymentRefunded
	case refunded > 0:
		return PaymentPartiallyRefunded
	case paid >= total-credited:
		return PaymentPaid
	case paid > 0:
		return PaymentPartiallyPaid
	}
	return PaymentUnpaid
}

// Exists reports whether the order was placed.
func (o Order) Exists() bool { return o.Status != "" }

// Invoiced reports whether an invoice was issued.
func (o Order) Invoiced() bool { return o.InvoiceNumber != "" }

// Outstanding is total − credited − paid + refunded.
func (o Order) Outstanding() int64 { return o.Total - o.Credited - o.Paid + o.Refunded }

// ReturnByID returns a recorded return.
func (o Order) ReturnByID(id string) (OrderReturned, bool) {
	r, ok := o.returns[id]
	return r, ok
}

func (o Order) cancelled() bool { return o.Status == StatusCancelled }

// shippedAlready reports a status at or after shipment.
func (o Order) shippedAlready() bool {
	return o.Status == StatusShipped || o.Status == StatusDelivered || o.Status == StatusCompleted
}

// Order commands.
type (
	PlaceOrder struct {
		OrderID         string
		CustomerID      string
		Channel         string
		Currency        string
		Lines           []OrderLine
		TaxRateBps      int64
		PaymentMethod   string
		ShippingAddress string
		At              time.Time
	}
	// RecordLineAllocation is sent by the allocation process manager with the deltas a stock
	// stream decided for one line.
	RecordLineAllocation struct {
		OrderID     string
		SKU         string
		Reserved    int64
		Backordered int64
		At          time.Time
	}
	// RecordLineAllocations records the news of several lines at once, as the allocation
	// process manager has it when the reservations of an order's lines come back together.
	RecordLineAllocations struct {
		Lines []RecordLineAllocation
	}
	RecordInvoice struct {
		OrderID       string
		InvoiceNumber string
		At            time.Time
	}
	RecordPayment struct {
		OrderID   string
		PaymentID string
		Amount    int64
		Method    string
		Reference string
		At        time.Time
	}
	IssueRefund struct {
		OrderID   string
		RefundID  string
		Amount    int64
		Reference string
		At        time.Time
	}
	ShipOrder struct {
		OrderID        string
		Carrier        string
		TrackingNumber string
		At             time.Time
	}
	DeliverOrder struct {
		OrderID string
		At      time.Time
	}
	CancelOrder struct {
		OrderID string
		Reason  string
		At      time.Time
	}
	ReturnItems struct {
		OrderID  string
		ReturnID string
		Lines    []ShippedLine
		Reason   string
		At       time.Time
	}
	RecordCreditNote struct {
		OrderID          string
		CreditNoteNumber string
		Reason           string // CreditForCancellation or CreditForReturn
		ReturnID         string
		At               time.Time
	}
)

// EvolveOrder applies one event. It takes ownership of o: callers use the returned value only.
func EvolveOrder(o Order, e Event) Order {
	switch e := e.(type) {
	case OrderPlaced:
		o = Order{
			ID: e.OrderID, CustomerID: e.CustomerID, Channel: e.Channel, Currency: e.Currency,
			TaxRateBps: e.TaxRateBps, Subtotal: e.Subtotal, Tax: e.Tax, Total: e.Total,
			PaymentMethod: e.PaymentMethod, ShippingAddress: e.ShippingAddress,
			Status: StatusPending, PlacedAt: e.PlacedAt, UpdatedAt: e.PlacedAt,
			payments: map[string]bool{}, refunds: map[string]bool{}, returns: map[string]OrderReturned{},
		}
		o.Lines = make([]LineState, len(e.Lines))
		for i, l := range e.Lines {
			o.Lines[i] = LineState{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
		}
	case OrderLineAllocated:
		if i := o.lineIndex(e.SKU); i >= 0 {
			o.Lines[i].Reserved += e.Reserved
			o.Lines[i].Backordered += e.Backordered
		}
		o.UpdatedAt = e.AllocatedAt
	case OrderBackordered:
		o.Status, o.UpdatedAt = StatusBackordered, e.BackorderedAt
	case OrderConfirmed:
		o.Status, o.UpdatedAt = StatusConfirmed, e.ConfirmedAt
	case OrderInvoiced:
		o.InvoiceNumber, o.UpdatedAt = e.InvoiceNumber, e.InvoicedAt
	case PaymentReceived:
		o.payments[e.PaymentID] = true
		o.Paid += e.Amount
		o.UpdatedAt = e.ReceivedAt
	case RefundIssued:
		o.refunds[e.RefundID] = true
		o.Refunded += e.Amount
		o.UpdatedAt = e.RefundedAt
	case OrderShipped:
		o.Status, o.Carrier, o.TrackingNumber, o.UpdatedAt = StatusShipped, e.Carrier, e.TrackingNumber, e.ShippedAt
		for _, l := range e.Lines {
			if i := o.lineIndex(l.SKU); i >= 0 {
				o.Lines[i].Shipped += l.Quantity
			}
		}
	case OrderDelivered:
		o.Status, o.UpdatedAt = StatusDelivered, e.DeliveredAt
	case OrderCompleted:
		o.Status, o.UpdatedAt = StatusCompleted, e.CompletedAt
	case OrderCancelled:
		o.Status, o.UpdatedAt = StatusCancelled, e.CancelledAt
		// Cancelling releases what the lines held in stock: they hold nothing any more.
		for i := range o.Lines {
			o.Lines[i].Reserved, o.Lines[i].Backordered = 0, 0
		}
	case OrderReturned:
		o.returns[e.ReturnID] = e
		for _, l := range e.Lines {
			if i := o.lineIndex(l.SKU); i >= 0 {
				o.Lines[i].Returned += l.Quantity
			}
		}
		o.UpdatedAt = e.ReturnedAt
	case CreditNoteIssued:
		o.CreditNotes = append(o.CreditNotes, CreditNote{
			Number: e.CreditNoteNumber, Reason: e.Reason, ReturnID: e.ReturnID,
			Net: e.Net, Tax: e.Tax, Total: e.Total, IssuedAt: e.IssuedAt,
		})
		o.Credited += e.Total
		o.UpdatedAt = e.IssuedAt
	}
	return o
}

func (o Order) lineIndex(sku string) int {
	for i, l := range o.Lines {
		if l.SKU == sku {
			return i
		}
	}
	return -1
}

// ValidatePlaceOrder checks a PlaceOrder command on its own, before any state is read, and
// returns the lines' subtotal, tax and total.
func ValidatePlaceOrder(cmd PlaceOrder) (subtotal, tax, total int64, err error) {
	if err := checkNewID("order_id", cmd.OrderID); err != nil {
		return 0, 0, 0, err
	}
	if err := checkID("customer_id", cmd.CustomerID); err != nil {
		return 0, 0, 0, err
	}
	if !ValidChannel(cmd.Channel) {
		return 0, 0, 0, invalid("channel", "must be one of web, store, phone, got %q", truncate(cmd.Channel, 40))
	}
	if !ValidCurrency(cmd.Currency) {
		return 0, 0, 0, invalid("currency", "must be an active ISO 4217 code such as EUR, USD or JPY, got %q", truncate(cmd.Currency, 40))
	}
	if cmd.TaxRateBps < 0 || cmd.TaxRateBps > MaxTaxRateBps {
		return 0, 0, 0, invalid("tax_rate_bps", "must be 0..10000, got %d", cmd.TaxRateBps)
	}
	if len(cmd.Lines) == 0 || len(cmd.Lines) > MaxOrderLines {
		return 0, 0, 0, invalid("lines", "must have 1..%d lines, got %d", MaxOrderLines, len(cmd.Lines))
	}
	if chars(cmd.PaymentMethod) > 40 {
		return 0, 0, 0, invalid("payment_method", "must be at most 40 characters")
	}
	if chars(cmd.ShippingAddress) > 1000 {
		return 0, 0, 0, invalid("shipping_address", "must be at most 1000 characters")
	}
	seen := make(map[string]int, len(cmd.Lines))
	for i, l := range cmd.Lines {
		field := fmt.Sprintf("lines[%d]", i)
		if err := checkID(field+".sku", l.SKU); err != nil {
			return 0, 0, 0, err
		}
		if first, dup := seen[l.SKU]; dup {
			return 0, 0, 0, invalid(field+".sku", "repeats SKU %s of lines[%d]; put the whole quantity on one line", l.SKU, first)
		}
		seen[l.SKU] = i
		if l.Quantity <= 0 {
			return 0, 0, 0, invalid(field+".quantity", "must be > 0, got %d", l.Quantity)
		}
		if l.UnitPrice < 0 {
			return 0, 0, 0, invalid(field+".unit_price", "must be ≥ 0, got %d", l.UnitPrice)
		}
		if err := checkAmountCap(field+".unit_price", l.UnitPrice, MaxAmount); err != nil {
			return 0, 0, 0, err
		}
		amount, err := MulAmount(l.Quantity, l.UnitPrice)
		if err != nil || amount > MaxOrderTotal {
			return 0, 0, 0, fmt.Errorf("%w: %s quantity × unit_price (%d × %d) is above the order total's cap of %d minor units", ErrAmountTooLarge, field, l.Quantity, l.UnitPrice, int64(MaxOrderTotal))
		}
		// After the product, so that a product beyond int64 is reported as docs/api.md says.
		if l.Quantity > MaxQuantity {
			return 0, 0, 0, invalid(field+".quantity", "must be at most %d, got %d", MaxQuantity, l.Quantity)
		}
		// Both terms are at most the cap, so the sum cannot overflow.
		if subtotal += amount; subtotal > MaxOrderTotal {
			return 0, 0, 0, fmt.Errorf("%w: the subtotal of lines[0..%d] is above the order total's cap of %d minor units", ErrAmountTooLarge, i, int64(MaxOrderTotal))
		}
	}
	if tax, err = Tax(subtotal, cmd.TaxRateBps); err != nil {
		return 0, 0, 0, err
	}
	// The tax is at most the subtotal: the sum is at most twice the cap.
	total = subtotal + tax
	if err := checkAmountCap("total", total, MaxOrderTotal); err != nil {
		return 0, 0, 0, err
	}
	return subtotal, tax, total, nil
}

// DecidePlaceOrder places a new order. That the customer and SKUs exist is checked by the
// caller, which reads their streams.
func DecidePlaceOrder(o Order, cmd PlaceOrder) ([]Event, error) {
	subtotal, tax, total, err := ValidatePlaceOrder(cmd)
	if err != nil {
		return nil, err
	}
	if o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderExists, cmd.OrderID)
	}
	return []Event{OrderPlaced{
		OrderID: cmd.OrderID, CustomerID: cmd.CustomerID, Channel: cmd.Channel, Currency: cmd.Currency,
		Lines: append([]OrderLine(nil), cmd.Lines...), TaxRateBps: cmd.TaxRateBps,
		Subtotal: subtotal, Tax: tax, Total: total,
		PaymentMethod: cmd.PaymentMethod, ShippingAddress: cmd.ShippingAddress, PlacedAt: cmd.At,
	}}, nil
}

// DecideRecordLineAllocation records what stock did for a line and, once every line is
// decided, confirms the order (all reserved) or marks it backordered. A cancelled or shipped
// order ignores late news from stock.
func DecideRecordLineAllocation(o Order, cmd RecordLineAllocation) ([]Event, error) {
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.cancelled() || o.shippedAlready() {
		return nil, nil
	}
	i := o.lineIndex(cmd.SKU)
	if i < 0 {
		return nil, invalid("sku", "%s is not a line of order %s", cmd.SKU, o.ID)
	}
	l := o.Lines[i]
	reserved, backordered := l.Reserved+cmd.Reserved, l.Backordered+cmd.Backordered
	if reserved < 0 || backordered < 0 || reserved+backordered > l.Quantity {
		return nil, invalid("allocation", "of %s for order %s would be reserved %d, backordered %d of %d", cmd.SKU, o.ID, reserved, backordered, l.Quantity)
	}
	events := []Event{OrderLineAllocated{OrderID: o.ID, SKU: cmd.SKU, Reserved: cmd.Reserved, Backordered: cmd.Backordered, AllocatedAt: cmd.At}}
	decided, allReserved := true, true
	for j, line := range o.Lines {
		if j == i {
			line.Reserved, line.Backordered = reserved, backordered
		}
		decided = decided && line.Reserved+line.Backordered == line.Quantity
		allReserved = allReserved && line.Reserved == line.Quantity
	}
	switch {
	case decided && allReserved:
		events = append(events, OrderConfirmed{OrderID: o.ID, ConfirmedAt: cmd.At})
	case decided && o.Status == StatusPending:
		events = append(events, OrderBackordered{OrderID: o.ID, BackorderedAt: cmd.At})
	}
	return events, nil
}

// DecideRecordLineAllocations decides the allocations of cmd in turn, each on the order as
// the ones before leave it, and returns what each records: what DecideRecordLineAllocation
// one after another, each on the order with the events before it, would record. They come
// apart, one list per allocation, since each is recorded under the ID of the command that
// brought its news. An allocation refused refuses them all.
func DecideRecordLineAllocations(o Order, cmd RecordLineAllocations) ([][]Event, error) {
	// The allocation events change only the lines, the status and the time: a copy of the
	// lines keeps o, which the caller's cache may hold, as it was.
	o.Lines = slices.Clone(o.Lines)
	recorded := make([][]Event, len(cmd.Lines))
	for i, line := range cmd.Lines {
		events, err := DecideRecordLineAllocation(o, line)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			o = EvolveOrder(o, e)
		}
		recorded[i] = events
	}
	return recorded, nil
}

// DecideRecordInvoice records the invoice number the series assigned to this order. A number
// taken is always recorded, even if the order was cancelled meanwhile: a gapless series has
// no unused numbers, and the cancellation is then reversed by a credit note.
func DecideRecordInvoice(o Order, cmd RecordInvoice) ([]Event, error) {
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.Invoiced() {
		if o.InvoiceNumber == cmd.InvoiceNumber {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: order %s has invoice %s, not %s", ErrDocumentMismatch, o.ID, o.InvoiceNumber, cmd.InvoiceNumber)
	}
	if o.Status == StatusPending || o.Status == StatusBackordered {
		return nil, fmt.Errorf("%w: order %s is %s", ErrOrderNotConfirmed, o.ID, o.Status)
	}
	events := []Event{OrderInvoiced{
		OrderID: o.ID, CustomerID: o.CustomerID, InvoiceNumber: cmd.InvoiceNumber,
		Subtotal: o.Subtotal, Tax: o.Tax, Total: o.Total, InvoicedAt: cmd.At,
	}}
	o2 := o
	o2.InvoiceNumber = cmd.InvoiceNumber
	return append(events, o2.completion(cmd.At)...), nil
}

// DecideRecordPayment takes a payment of at most the outstanding amount.
func DecideRecordPayment(o Order, cmd RecordPayment) ([]Event, error) {
	// The ID is what tells a repeat from a new payment, so it must be one.
	if err := checkNewID("payment_id", cmd.PaymentID); err != nil {
		return nil, err
	}
	if cmd.Amount <= 0 {
		return nil, invalid("amount", "must be > 0, got %d", cmd.Amount)
	}
	if err := checkAmountCap("amount", cmd.Amount, MaxAmount); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cmd.Method) == "" || chars(cmd.Method) > 40 {
		return nil, invalid("method", "must be 1..40 characters")
	}
	if chars(cmd.Reference) > 200 {
		return nil, invalid("reference", "must be at most 200 characters")
	}
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.payments[cmd.PaymentID] {
		return nil, nil
	}
	if o.cancelled() {
		return nil, fmt.Errorf("%w: order %s takes no payment", ErrOrderCancelled, o.ID)
	}
	if cmd.Amount > o.Outstanding() {
		return nil, fmt.Errorf("%w: payment of %d, outstanding %d", ErrOverpayment, cmd.Amount, o.Outstanding())
	}
	events := []Event{PaymentReceived{OrderID: o.ID, PaymentID: cmd.PaymentID, Amount: cmd.Amount, Method: cmd.Method, Reference: cmd.Reference, ReceivedAt: cmd.At}}
	o2 := o
	o2.Paid += cmd.Amount
	return append(events, o2.completion(cmd.At)...), nil
}

// DecideIssueRefund refunds at most what was paid less what was refunded, completing a
// delivered, invoiced order it leaves with nothing outstanding.
func DecideIssueRefund(o Order, cmd IssueRefund) ([]Event, error) {
	if err := checkNewID("refund_id", cmd.RefundID); err != nil {
		return nil, err
	}
	if cmd.Amount <= 0 {
		return nil, invalid("amount", "must be > 0, got %d", cmd.Amount)
	}
	if err := checkAmountCap("amount", cmd.Amount, MaxAmount); err != nil {
		return nil, err
	}
	if chars(cmd.Reference) > 200 {
		return nil, invalid("reference", "must be at most 200 characters")
	}
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.refunds[cmd.RefundID] {
		return nil, nil
	}
	if refundable := o.Paid - o.Refunded; cmd.Amount > refundable {
		return nil, fmt.Errorf("%w: refund of %d, paid %d, refunded %d", ErrRefundExceedsPaid, cmd.Amount, o.Paid, o.Refunded)
	}
	events := []Event{RefundIssued{OrderID: o.ID, RefundID: cmd.RefundID, Amount: cmd.Amount, Reference: cmd.Reference, RefundedAt: cmd.At}}
	// A refund of what a credit note left overpaid can be what settles a delivered order.
	o2 := o
	o2.Refunded += cmd.Amount
	return append(events, o2.completion(cmd.At)...), nil
}

// DecideShipOrder ships every line of a confirmed order.
func DecideShipOrder(o Order, cmd ShipOrder) ([]Event, error) {
	if strings.TrimSpace(cmd.Carrier) == "" || chars(cmd.Carrier) > 100 {
		return nil, invalid("carrier", "must be 1..100 characters")
	}
	if strings.TrimSpace(cmd.TrackingNumber) == "" || chars(cmd.TrackingNumber) > 100 {
		return nil, invalid("tracking_number", "must be 1..100 characters")
	}
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	switch {
	case o.shippedAlready():
		return nil, fmt.Errorf("%w: order %s is %s", ErrOrderAlreadyShipped, o.ID, o.Status)
	case o.cancelled():
		return nil, fmt.Errorf("%w: order %s cannot be shipped", ErrOrderCancelled, o.ID)
	case o.Status != StatusConfirmed:
		return nil, fmt.Errorf("%w: order %s is %s", ErrOrderNotConfirmed, o.ID, o.Status)
	}
	lines := make([]ShippedLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = ShippedLine{SKU: l.SKU, Quantity: l.Quantity}
	}
	return []Event{OrderShipped{OrderID: o.ID, Carrier: cmd.Carrier, TrackingNumber: cmd.TrackingNumber, Lines: lines, ShippedAt: cmd.At}}, nil
}

// DecideDeliverOrder records delivery of a shipped order, completing it if nothing is owed.
func DecideDeliverOrder(o Order, cmd DeliverOrder) ([]Event, error) {
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.Status != StatusShipped {
		return nil, fmt.Errorf("%w: order %s is %s", ErrOrderNotShipped, o.ID, o.Status)
	}
	o2 := o
	o2.Status = StatusDelivered
	return append([]Event{OrderDelivered{OrderID: o.ID, DeliveredAt: cmd.At}}, o2.completion(cmd.At)...), nil
}

// DecideCancelOrder cancels an order that has not shipped.
func DecideCancelOrder(o Order, cmd CancelOrder) ([]Event, error) {
	if strings.TrimSpace(cmd.Reason) == "" || chars(cmd.Reason) > 500 {
		return nil, invalid("reason", "must be 1..500 characters")
	}
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if o.cancelled() {
		return nil, fmt.Errorf("%w: order %s is already cancelled", ErrOrderCancelled, o.ID)
	}
	if o.shippedAlready() {
		return nil, fmt.Errorf("%w: order %s is %s and can no longer be cancelled", ErrOrderAlreadyShipped, o.ID, o.Status)
	}
	lines := make([]ShippedLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = ShippedLine{SKU: l.SKU, Quantity: l.Quantity}
	}
	return []Event{OrderCancelled{OrderID: o.ID, Reason: cmd.Reason, Lines: lines, Invoiced: o.Invoiced(), CancelledAt: cmd.At}}, nil
}

// DecideReturnItems takes back at most what was shipped less what came back, and prices the
// credit by cumulative rounding, so that the returns of an order never credit more than its
// invoice and returning every unit credits exactly the invoice, net and tax, in any order:
// net = Σ quantity × unit price, and tax = round_half_up(net of every return so far × rate)
// − the tax of the returns before it.
func DecideReturnItems(o Order, cmd ReturnItems) ([]Event, error) {
	if err := checkNewID("return_id", cmd.ReturnID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cmd.Reason) == "" || chars(cmd.Reason) > 500 {
		return nil, invalid("reason", "must be 1..500 characters")
	}
	if len(cmd.Lines) == 0 || len(cmd.Lines) > MaxOrderLines {
		return nil, invalid("lines", "must have 1..%d lines, got %d", MaxOrderLines, len(cmd.Lines))
	}
	seen := make(map[string]bool, len(cmd.Lines))
	for i, l := range cmd.Lines {
		field := fmt.Sprintf("lines[%d]", i)
		if err := checkID(field+".sku", l.SKU); err != nil {
			return nil, err
		}
		if seen[l.SKU] {
			return nil, invalid(field+".sku", "repeats SKU %s", l.SKU)
		}
		seen[l.SKU] = true
		if l.Quantity <= 0 {
			return nil, invalid(field+".quantity", "must be > 0, got %d", l.Quantity)
		}
	}
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	if _, done := o.returns[cmd.ReturnID]; done {
		return nil, nil
	}
	if o.Status != StatusDelivered && o.Status != StatusCompleted {
		return nil, fmt.Errorf("%w: order %s is %s", ErrOrderNotDelivered, o.ID, o.Status)
	}
	returned := OrderReturned{OrderID: o.ID, ReturnID: cmd.ReturnID, Reason: cmd.Reason, ReturnedAt: cmd.At}
	for i, l := range cmd.Lines {
		j := o.lineIndex(l.SKU)
		if j < 0 {
			return nil, fmt.Errorf("%w: lines[%d].sku %s is not in order %s", ErrReturnExceedsShipped, i, l.SKU, o.ID)
		}
		line := o.Lines[j]
		if returnable := line.Shipped - line.Returned; l.Quantity > returnable {
			return nil, fmt.Errorf("%w: lines[%d] returns %d of %s, shipped %d, already returned %d", ErrReturnExceedsShipped, i, l.Quantity, l.SKU, line.Shipped, line.Returned)
		}
		amount, err := MulAmount(l.Quantity, line.UnitPrice)
		if err != nil {
			return nil, err
		}
		if returned.Net, err = AddAmounts(returned.Net, amount); err != nil {
			return nil, err
		}
		returned.Lines = append(returned.Lines, ReturnedLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: line.UnitPrice})
	}
	// What was returned is at most what was shipped, whose net is the subtotal: these sums
	// fit in int64.
	var netBefore, taxBefore int64
	for _, r := range o.returns {
		netBefore += r.Net
		taxBefore += r.Tax
	}
	cumulativeTax, err := Tax(netBefore+returned.Net, o.TaxRateBps)
	if err != nil {
		return nil, err
	}
	// Returns recorded before this rule rounded each on its own and may have taken more tax
	// than the cumulative figure allows: this one then takes none, never a negative amount.
	returned.Tax = max(cumulativeTax-taxBefore, 0)
	if returned.Total, err = AddAmounts(returned.Net, returned.Tax); err != nil {
		return nil, err
	}
	return []Event{returned}, nil
}

// DecideRecordCreditNote records a credit note number the series assigned: for a cancelled
// invoiced order (the whole invoice) or for a return (the return's amounts).
func DecideRecordCreditNote(o Order, cmd RecordCreditNote) ([]Event, error) {
	if !o.Exists() {
		return nil, fmt.Errorf("%w: %s", ErrOrderNotFound, cmd.OrderID)
	}
	for _, cn := range o.CreditNotes {
		if cn.Reason == cmd.Reason && cn.ReturnID == cmd.ReturnID {
			if cn.Number == cmd.CreditNoteNumber {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: order %s already has credit note %s for this %s", ErrDocumentMismatch, o.ID, cn.Number, cmd.Reason)
		}
	}
	note := CreditNoteIssued{OrderID: o.ID, CustomerID: o.CustomerID, CreditNoteNumber: cmd.CreditNoteNumber, Reason: cmd.Reason, ReturnID: cmd.ReturnID, IssuedAt: cmd.At}
	switch cmd.Reason {
	case CreditForCancellation:
		if !o.cancelled() || !o.Invoiced() {
			return nil, fmt.Errorf("%w: order %s is not a cancelled invoiced order", ErrDocumentMismatch, o.ID)
		}
		note.Net, note.Tax, note.Total = o.Subtotal, o.Tax, o.Total
	case CreditForReturn:
		r, ok := o.returns[cmd.ReturnID]
		if !ok {
			return nil, fmt.Errorf("%w: order %s has no return %s", ErrDocumentMismatch, o.ID, cmd.ReturnID)
		}
		note.Net, note.Tax, note.Total = r.Net, r.Tax, r.Total
	default:
		return nil, invalid("reason", "must be %s or %s", CreditForCancellation, CreditForReturn)
	}
	o2 := o
	o2.Credited += note.Total
	return append([]Event{note}, o2.completion(cmd.At)...), nil
}

// completion completes a delivered, invoiced order with nothing outstanding.
func (o Order) completion(at time.Time) []Event {
	if o.Status == StatusDelivered && o.Invoiced() && o.Outstanding() == 0 {
		return []Event{OrderCompleted{OrderID: o.ID, CompletedAt: at}}
	}
	return nil
}
