package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Event is a domain event. Its type name carries a version ("OrderPlaced.v1") and is listed in
// the registry below; renaming a Go type never changes what is stored.
type Event interface {
	EventType() string
}

// AboutOrder is an event that is part of one order's life, wherever it is stored (the order's
// own stream, a SKU's stream, a numbering series): AboutOrder names the order. Followers that
// handle an order's events together (the orders projection, the automation's lanes) ask the
// event, rather than each keeping a switch over the types.
type AboutOrder interface {
	Event
	AboutOrder() string
}

// AboutPurchaseOrder is an event that is part of one purchase order's life: AboutPurchaseOrder
// names it. (StockReceived only refers to a purchase order, when it was one that arrived: it
// belongs to the SKU's life.)
type AboutPurchaseOrder interface {
	Event
	AboutPurchaseOrder() string
}

func (e StockAllocated) AboutOrder() string           { return e.OrderID }
func (e BackorderFilled) AboutOrder() string          { return e.OrderID }
func (e StockReleased) AboutOrder() string            { return e.OrderID }
func (e StockShipped) AboutOrder() string             { return e.OrderID }
func (e StockRestocked) AboutOrder() string           { return e.OrderID }
func (e OrderPlaced) AboutOrder() string              { return e.OrderID }
func (e OrderLineAllocated) AboutOrder() string       { return e.OrderID }
func (e OrderBackordered) AboutOrder() string         { return e.OrderID }
func (e OrderConfirmed) AboutOrder() string           { return e.OrderID }
func (e OrderInvoiced) AboutOrder() string            { return e.OrderID }
func (e PaymentReceived) AboutOrder() string          { return e.OrderID }
func (e RefundIssued) AboutOrder() string             { return e.OrderID }
func (e OrderShipped) AboutOrder() string             { return e.OrderID }
func (e OrderDelivered) AboutOrder() string           { return e.OrderID }
func (e OrderCompleted) AboutOrder() string           { return e.OrderID }
func (e OrderCancelled) AboutOrder() string           { return e.OrderID }
func (e OrderReturned) AboutOrder() string            { return e.OrderID }
func (e CreditNoteIssued) AboutOrder() string         { return e.OrderID }
func (e InvoiceNumberAssigned) AboutOrder() string    { return e.OrderID }
func (e CreditNoteNumberAssigned) AboutOrder() string { return e.OrderID }

func (e ReplenishmentRequested) AboutPurchaseOrder() string { return e.PurchaseOrderID }
func (e PurchaseOrderRaised) AboutPurchaseOrder() string    { return e.PurchaseOrderID }
func (e PurchaseOrderReceived) AboutPurchaseOrder() string  { return e.PurchaseOrderID }

// Stream names: "<category>-<id>".
func CustomerStream(id string) string      { return "customer-" + id }
func StockStream(sku string) string        { return "stock-" + sku }
func OrderStream(id string) string         { return "order-" + id }
func PurchaseOrderStream(id string) string { return "purchase_order-" + id }

const (
	InvoiceSeriesStream    = "invoice_series-INV"
	CreditNoteSeriesStream = "credit_note_series-CN"
)

// Customer events.

// CustomerRegistered: a customer was created, with the details given then.
type CustomerRegistered struct {
	CustomerID        string    `json:"customer_id"`
	Name              string    `json:"name"`
	Email             string    `json:"email"`
	Phone             string    `json:"phone,omitempty"`
	PaymentPreference string    `json:"payment_preference,omitempty"`
	RegisteredAt      time.Time `json:"registered_at"`
}

// CustomerDetailsChanged carries only the fields that changed.
type CustomerDetailsChanged struct {
	CustomerID        string    `json:"customer_id"`
	Name              *string   `json:"name,omitempty"`
	Email             *string   `json:"email,omitempty"`
	Phone             *string   `json:"phone,omitempty"`
	PaymentPreference *string   `json:"payment_preference,omitempty"`
	ChangedAt         time.Time `json:"changed_at"`
}

// CustomerErased records that the customer's personal data was erased (GDPR Art. 17): their
// data key is destroyed, so every personal field sealed under it reads as null from now on,
// and no personal data may be added to them again.
type CustomerErased struct {
	CustomerID string    `json:"customer_id"`
	ErasedAt   time.Time `json:"erased_at"`
}

// Stock events: the SKU's stream owns on hand, reservations, the backorder queue and
// replenishment, so every stock invariant is decided in one place.

// StockReceived: units arrived at the warehouse (a delivery, or a purchase order received).
type StockReceived struct {
	SKU             string    `json:"sku"`
	Quantity        int64     `json:"quantity"`
	Reference       string    `json:"reference,omitempty"`
	PurchaseOrderID string    `json:"purchase_order_id,omitempty"`
	ReceivedAt      time.Time `json:"received_at"`
}

// StockAdjusted: on hand was corrected by a count (positive or negative), with a reason.
type StockAdjusted struct {
	SKU        string    `json:"sku"`
	Delta      int64     `json:"delta"`
	Reason     string    `json:"reason"`
	AdjustedAt time.Time `json:"adjusted_at"`
}

// ReplenishmentPolicySet: the SKU's reorder point, reorder quantity and supplier were set.
type ReplenishmentPolicySet struct {
	SKU             string    `json:"sku"`
	ReorderPoint    int64     `json:"reorder_point"`
	ReorderQuantity int64     `json:"reorder_quantity"`
	Supplier        string    `json:"supplier"`
	SetAt           time.Time `json:"set_at"`
}

// StockAllocated answers an order line's request: what was reserved from available stock
// and what joined the backorder queue.
type StockAllocated struct {
	SKU         string    `json:"sku"`
	OrderID     string    `json:"order_id"`
	Requested   int64     `json:"requested"`
	Reserved    int64     `json:"reserved"`
	Backordered int64     `json:"backordered"`
	AllocatedAt time.Time `json:"allocated_at"`
}

// BackorderFilled moves units from arriving stock to the oldest backorder.
type BackorderFilled struct {
	SKU      string    `json:"sku"`
	OrderID  string    `json:"order_id"`
	Quantity int64     `json:"quantity"`
	FilledAt time.Time `json:"filled_at"`
}

// StockReleased frees a cancelled order's reservation and removes its backorder.
type StockReleased struct {
	SKU         string    `json:"sku"`
	OrderID     string    `json:"order_id"`
	Reserved    int64     `json:"reserved"`
	Backordered int64     `json:"backordered"`
	ReleasedAt  time.Time `json:"released_at"`
}

// StockShipped takes reserved units out of stock.
type StockShipped struct {
	SKU       string    `json:"sku"`
	OrderID   string    `json:"order_id"`
	Quantity  int64     `json:"quantity"`
	ShippedAt time.Time `json:"shipped_at"`
}

// StockRestocked puts returned units back on hand.
type StockRestocked struct {
	SKU         string    `json:"sku"`
	OrderID     string    `json:"order_id"`
	ReturnID    string    `json:"return_id"`
	Quantity    int64     `json:"quantity"`
	RestockedAt time.Time `json:"restocked_at"`
}

// ReplenishmentRequested is the SKU's decision that a purchase order is due.
type ReplenishmentRequested struct {
	SKU             string    `json:"sku"`
	PurchaseOrderID string    `json:"purchase_order_id"`
	Supplier        string    `json:"supplier"`
	Quantity        int64     `json:"quantity"`
	RequestedAt     time.Time `json:"requested_at"`
}

// Order events.

// OrderLine is one line of an order: a SKU, a quantity and its unit price in minor units.
type OrderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// OrderPlaced: an order was taken, with its lines, prices and tax rate; it starts pending.
type OrderPlaced struct {
	OrderID         string      `json:"order_id"`
	CustomerID      string      `json:"customer_id"`
	Channel         string      `json:"channel"`
	Currency        string      `json:"currency"`
	Lines           []OrderLine `json:"lines"`
	TaxRateBps      int64       `json:"tax_rate_bps"`
	Subtotal        int64       `json:"subtotal"`
	Tax             int64       `json:"tax"`
	Total           int64       `json:"total"`
	PaymentMethod   string      `json:"payment_method,omitempty"`
	ShippingAddress string      `json:"shipping_address,omitempty"`
	PlacedAt        time.Time   `json:"placed_at"`
}

// OrderLineAllocated records, as deltas, what the SKU's stream reserved or backordered for
// a line.
type OrderLineAllocated struct {
	OrderID     string    `json:"order_id"`
	SKU         string    `json:"sku"`
	Reserved    int64     `json:"reserved"`
	Backordered int64     `json:"backordered"`
	AllocatedAt time.Time `json:"allocated_at"`
}

// OrderBackordered: some of the order's units wait for stock.
type OrderBackordered struct {
	OrderID       string    `json:"order_id"`
	BackorderedAt time.Time `json:"backordered_at"`
}

// OrderConfirmed: every unit of the order is reserved; it can be invoiced and shipped.
type OrderConfirmed struct {
	OrderID     string    `json:"order_id"`
	ConfirmedAt time.Time `json:"confirmed_at"`
}

// OrderInvoiced: the order's invoice was issued under its gapless number.
type OrderInvoiced struct {
	OrderID       string    `json:"order_id"`
	CustomerID    string    `json:"customer_id"`
	InvoiceNumber string    `json:"invoice_number"`
	Subtotal      int64     `json:"subtotal"`
	Tax           int64     `json:"tax"`
	Total         int64     `json:"total"`
	InvoicedAt    time.Time `json:"invoiced_at"`
}

// PaymentReceived: money came in against the order.
type PaymentReceived struct {
	OrderID    string    `json:"order_id"`
	PaymentID  string    `json:"payment_id"`
	Amount     int64     `json:"amount"`
	Method     string    `json:"method"`
	Reference  string    `json:"reference,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// RefundIssued: money went back to the customer against the order.
type RefundIssued struct {
	OrderID    string    `json:"order_id"`
	RefundID   string    `json:"refund_id"`
	Amount     int64     `json:"amount"`
	Reference  string    `json:"reference,omitempty"`
	RefundedAt time.Time `json:"refunded_at"`
}

// ShippedLine is one line of a shipment.
type ShippedLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// OrderShipped: the carrier took the order's lines.
type OrderShipped struct {
	OrderID        string        `json:"order_id"`
	Carrier        string        `json:"carrier"`
	TrackingNumber string        `json:"tracking_number"`
	Lines          []ShippedLine `json:"lines"`
	ShippedAt      time.Time     `json:"shipped_at"`
}

// OrderDelivered: the carrier delivered the order.
type OrderDelivered struct {
	OrderID     string    `json:"order_id"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// OrderCompleted: the order was delivered and invoiced with nothing outstanding; nothing more
// is expected of it.
type OrderCompleted struct {
	OrderID     string    `json:"order_id"`
	CompletedAt time.Time `json:"completed_at"`
}

// OrderCancelled lists the SKUs whose stock streams must release the order, and whether an
// invoice had been issued (then a credit note follows).
type OrderCancelled struct {
	OrderID     string        `json:"order_id"`
	Reason      string        `json:"reason"`
	Lines       []ShippedLine `json:"lines"`
	Invoiced    bool          `json:"invoiced"`
	CancelledAt time.Time     `json:"cancelled_at"`
}

// ReturnedLine is one line of a return.
type ReturnedLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// OrderReturned: the customer sent back units of a delivered order.
type OrderReturned struct {
	OrderID    string         `json:"order_id"`
	ReturnID   string         `json:"return_id"`
	Lines      []ReturnedLine `json:"lines"`
	Reason     string         `json:"reason"`
	Net        int64          `json:"net"`
	Tax        int64          `json:"tax"`
	Total      int64          `json:"total"`
	ReturnedAt time.Time      `json:"returned_at"`
}

// Credit note reasons.
const (
	CreditForCancellation = "cancellation"
	CreditForReturn       = "return"
)

// CreditNoteIssued: a credit note reversed part or all of the order's invoice (a return or a cancellation).
type CreditNoteIssued struct {
	OrderID          string    `json:"order_id"`
	CustomerID       string    `json:"customer_id"`
	CreditNoteNumber string    `json:"credit_note_number"`
	Reason           string    `json:"reason"`
	ReturnID         string    `json:"return_id,omitempty"`
	Net              int64     `json:"net"`
	Tax              int64     `json:"tax"`
	Total            int64     `json:"total"`
	IssuedAt         time.Time `json:"issued_at"`
}

// Numbering series events: the series stream's version + 1 is the number.

// InvoiceNumberAssigned: the invoice series gave an order its number (stored in the series' stream).
type InvoiceNumberAssigned struct {
	Number     int64     `json:"number"`
	OrderID    string    `json:"order_id"`
	AssignedAt time.Time `json:"assigned_at"`
}

// CreditNoteNumberAssigned: the credit note series gave a credit note its number.
type CreditNoteNumberAssigned struct {
	Number     int64     `json:"number"`
	OrderID    string    `json:"order_id"`
	Reason     string    `json:"reason"`
	ReturnID   string    `json:"return_id,omitempty"`
	AssignedAt time.Time `json:"assigned_at"`
}

// Purchase order events.

// PurchaseOrderRaised: a purchase order went to the supplier for a SKU below its reorder point.
type PurchaseOrderRaised struct {
	PurchaseOrderID string    `json:"purchase_order_id"`
	SKU             string    `json:"sku"`
	Supplier        string    `json:"supplier"`
	Quantity        int64     `json:"quantity"`
	RaisedAt        time.Time `json:"raised_at"`
}

// PurchaseOrderReceived: the supplier's delivery for a purchase order arrived.
type PurchaseOrderReceived struct {
	PurchaseOrderID string    `json:"purchase_order_id"`
	SKU             string    `json:"sku"`
	Quantity        int64     `json:"quantity"`
	ReceivedAt      time.Time `json:"received_at"`
}

// IdempotentRequestRecorded keeps the answer to a request made with an Idempotency-Key, in
// the stream "idempotency-<hash of the key>", so a repeat gets the same answer after a restart.
type IdempotentRequestRecorded struct {
	Key         string          `json:"key"`
	RequestHash string          `json:"request_hash"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
	RecordedAt  time.Time       `json:"recorded_at"`
}

func (CustomerRegistered) EventType() string        { return "CustomerRegistered.v1" }
func (CustomerDetailsChanged) EventType() string    { return "CustomerDetailsChanged.v1" }
func (CustomerErased) EventType() string            { return "CustomerErased.v1" }
func (StockReceived) EventType() string             { return "StockReceived.v1" }
func (StockAdjusted) EventType() string             { return "StockAdjusted.v1" }
func (ReplenishmentPolicySet) EventType() string    { return "ReplenishmentPolicySet.v1" }
func (StockAllocated) EventType() string            { return "StockAllocated.v1" }
func (BackorderFilled) EventType() string           { return "BackorderFilled.v1" }
func (StockReleased) EventType() string             { return "StockReleased.v1" }
func (StockShipped) EventType() string              { return "StockShipped.v1" }
func (StockRestocked) EventType() string            { return "StockRestocked.v1" }
func (ReplenishmentRequested) EventType() string    { return "ReplenishmentRequested.v1" }
func (OrderPlaced) EventType() string               { return "OrderPlaced.v1" }
func (OrderLineAllocated) EventType() string        { return "OrderLineAllocated.v1" }
func (OrderBackordered) EventType() string          { return "OrderBackordered.v1" }
func (OrderConfirmed) EventType() string            { return "OrderConfirmed.v1" }
func (OrderInvoiced) EventType() string             { return "OrderInvoiced.v1" }
func (PaymentReceived) EventType() string           { return "PaymentReceived.v1" }
func (RefundIssued) EventType() string              { return "RefundIssued.v1" }
func (OrderShipped) EventType() string              { return "OrderShipped.v1" }
func (OrderDelivered) EventType() string            { return "OrderDelivered.v1" }
func (OrderCompleted) EventType() string            { return "OrderCompleted.v1" }
func (OrderCancelled) EventType() string            { return "OrderCancelled.v1" }
func (OrderReturned) EventType() string             { return "OrderReturned.v1" }
func (CreditNoteIssued) EventType() string          { return "CreditNoteIssued.v1" }
func (InvoiceNumberAssigned) EventType() string     { return "InvoiceNumberAssigned.v1" }
func (CreditNoteNumberAssigned) EventType() string  { return "CreditNoteNumberAssigned.v1" }
func (PurchaseOrderRaised) EventType() string       { return "PurchaseOrderRaised.v1" }
func (PurchaseOrderReceived) EventType() string     { return "PurchaseOrderReceived.v1" }
func (IdempotentRequestRecorded) EventType() string { return "IdempotentRequestRecorded.v1" }

// registry maps each stored type name to its decoder. It is written out by hand on purpose:
// no reflection on Go type names, so renaming a struct cannot break replay.
var registry = map[string]func([]byte) (Event, error){
	"CustomerRegistered.v1":        decoder[CustomerRegistered](),
	"CustomerDetailsChanged.v1":    decoder[CustomerDetailsChanged](),
	"CustomerErased.v1":            decoder[CustomerErased](),
	"StockReceived.v1":             decoder[StockReceived](),
	"StockAdjusted.v1":             decoder[StockAdjusted](),
	"ReplenishmentPolicySet.v1":    decoder[ReplenishmentPolicySet](),
	"StockAllocated.v1":            decoder[StockAllocated](),
	"BackorderFilled.v1":           decoder[BackorderFilled](),
	"StockReleased.v1":             decoder[StockReleased](),
	"StockShipped.v1":              decoder[StockShipped](),
	"StockRestocked.v1":            decoder[StockRestocked](),
	"ReplenishmentRequested.v1":    decoder[ReplenishmentRequested](),
	"OrderPlaced.v1":               decoder[OrderPlaced](),
	"OrderLineAllocated.v1":        decoder[OrderLineAllocated](),
	"OrderBackordered.v1":          decoder[OrderBackordered](),
	"OrderConfirmed.v1":            decoder[OrderConfirmed](),
	"OrderInvoiced.v1":             decoder[OrderInvoiced](),
	"PaymentReceived.v1":           decoder[PaymentReceived](),
	"RefundIssued.v1":              decoder[RefundIssued](),
	"OrderShipped.v1":              decoder[OrderShipped](),
	"OrderDelivered.v1":            decoder[OrderDelivered](),
	"OrderCompleted.v1":            decoder[OrderCompleted](),
	"OrderCancelled.v1":            decoder[OrderCancelled](),
	"OrderReturned.v1":             decoder[OrderReturned](),
	"CreditNoteIssued.v1":          decoder[CreditNoteIssued](),
	"InvoiceNumberAssigned.v1":     decoder[InvoiceNumberAssigned](),
	"CreditNoteNumberAssigned.v1":  decoder[CreditNoteNumberAssigned](),
	"PurchaseOrderRaised.v1":       decoder[PurchaseOrderRaised](),
	"PurchaseOrderReceived.v1":     decoder[PurchaseOrderReceived](),
	"IdempotentRequestRecorded.v1": decoder[IdempotentRequestRecorded](),
}

// decoder parses JSON strictly into E: unknown fields are an error, because a reader must
// never silently misread history.
func decoder[E Event]() func([]byte) (Event, error) {
	return func(data []byte) (Event, error) {
		var e E
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		// Decode stops after the first value; anything but white space after it is data
		// this reader would otherwise drop unseen.
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("data continues after the event's JSON object")
		}
		return e, nil
	}
}

// EventTypes lists every registered type name.
func EventTypes() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	return names
}

// KnownEventType reports whether name is registered.
func KnownEventType(name string) bool {
	_, ok := registry[name]
	return ok
}

// EncodeEvent returns an event's type name and JSON data.
func EncodeEvent(e Event) (string, []byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), data, nil
}

// DecodeEvent parses stored data of a registered type into its value type.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	decode, ok := registry[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	e, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
