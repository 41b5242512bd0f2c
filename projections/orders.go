package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// Order is the document of GET /v1/orders/{id}.
type Order struct {
	OrderID           string             `json:"order_id"`
	CustomerID        string             `json:"customer_id"`
	Channel           string             `json:"channel"`
	Currency          string             `json:"currency"`
	Status            domain.OrderStatus `json:"status"`
	PaymentStatus     string             `json:"payment_status"`
	FulfillmentStatus string             `json:"fulfillment_status"`
	Lines             []OrderLine        `json:"lines"`
	Subtotal          int64              `json:"subtotal"`
	Tax               int64              `json:"tax"`
	Total             int64              `json:"total"`
	Paid              int64              `json:"paid"`
	Refunded          int64              `json:"refunded"`
	Outstanding       int64              `json:"outstanding"`
	InvoiceNumber     *string            `json:"invoice_number"`
	CreditNotes       []CreditNote       `json:"credit_notes"`
	Carrier           *string            `json:"carrier"`
	TrackingNumber    *string            `json:"tracking_number"`
	PlacedAt          time.Time          `json:"placed_at"`
	UpdatedAt         time.Time          `json:"updated_at"`
}

// OrderLine is a line of an order with what stock did for it.
type OrderLine struct {
	SKU         string `json:"sku"`
	Quantity    int64  `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
	Reserved    int64  `json:"reserved"`
	Backordered int64  `json:"backordered"`
}

// CreditNote is a credit note issued against an order.
type CreditNote struct {
	CreditNoteNumber string    `json:"credit_note_number"`
	Reason           string    `json:"reason"`
	ReturnID         *string   `json:"return_id"`
	Net              int64     `json:"net"`
	Tax              int64     `json:"tax"`
	Total            int64     `json:"total"`
	IssuedAt         time.Time `json:"issued_at"`
}

// Payment statuses, as domain.PaymentStatus decides them.
const (
	PaymentUnpaid            = domain.PaymentUnpaid
	PaymentPartiallyPaid     = domain.PaymentPartiallyPaid
	PaymentPaid              = domain.PaymentPaid
	PaymentPartiallyRefunded = domain.PaymentPartiallyRefunded
	PaymentRefunded          = domain.PaymentRefunded
)

// PaymentStatus is domain.PaymentStatus: the rule behind an order's payment_status.
func PaymentStatus(total, credited, paid, refunded int64) string {
	return domain.PaymentStatus(total, credited, paid, refunded)
}

// Fulfillment statuses.
const (
	FulfillmentUnfulfilled       = "unfulfilled"
	FulfillmentShipped           = "shipped"
	FulfillmentDelivered         = "delivered"
	FulfillmentPartiallyReturned = "partially_returned"
	FulfillmentReturned          = "returned"
)

// FulfillmentStatus is the rule behind an order's fulfillment_status: unfulfilled until it
// ships; then returned when every unit shipped came back, partially_returned when some did,
// and otherwise delivered or shipped as the order's status says.
func FulfillmentStatus(status domain.OrderStatus, shippedUnits, returnedUnits int64) string {
	switch {
	case shippedUnits == 0:
		return FulfillmentUnfulfilled
	case returnedUnits >= shippedUnits:
		return FulfillmentReturned
	case returnedUnits > 0:
		return FulfillmentPartiallyReturned
	case status == domain.StatusDelivered || status == domain.StatusCompleted:
		return FulfillmentDelivered
	}
	return FulfillmentShipped
}

// OrderFromDomain is the document of an order folded from its stream, the same as the
// projection shows once it has seen those events; time travel (?as_of=) uses it.
func OrderFromDomain(o domain.Order) Order {
	row := orderRow{
		OrderID: o.ID, CustomerID: o.CustomerID, Channel: o.Channel, Currency: o.Currency, Status: o.Status,
		Subtotal: o.Subtotal, Tax: o.Tax, Total: o.Total, Paid: o.Paid, Refunded: o.Refunded, Credited: o.Credited,
		InvoiceNumber: o.InvoiceNumber, Carrier: o.Carrier, TrackingNumber: o.TrackingNumber,
		PlacedAt: o.PlacedAt.UnixMicro(), UpdatedAt: o.UpdatedAt.UnixMicro(),
	}
	for _, l := range o.Lines {
		row.Lines = append(row.Lines, OrderLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice, Reserved: l.Reserved, Backordered: l.Backordered})
		row.ShippedUnits += l.Shipped
		row.ReturnedUnits += l.Returned
	}
	for _, cn := range o.CreditNotes {
		row.CreditNotes = append(row.CreditNotes, creditNote(cn.Number, cn.Reason, cn.ReturnID, cn.Net, cn.Tax, cn.Total, cn.IssuedAt))
	}
	return row.document()
}

func creditNote(number, reason, returnID string, net, tax, total int64, issuedAt time.Time) CreditNote {
	return CreditNote{CreditNoteNumber: number, Reason: reason, ReturnID: optional(returnID), Net: net, Tax: tax, Total: total, IssuedAt: microsTime(issuedAt.UnixMicro())}
}

// optional maps the empty string to a JSON null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// microsTime turns stored microseconds into the UTC time the API shows.
func microsTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// orderRow is a row of rm_orders in memory.
type orderRow struct {
	OrderID, CustomerID, Channel, Currency string
	Status                                 domain.OrderStatus
	Lines                                  []OrderLine
	Subtotal, Tax, Total                   int64
	Paid, Refunded, Credited               int64
	InvoiceNumber                          string
	CreditNotes                            []CreditNote
	Carrier, TrackingNumber                string
	ShippedUnits, ReturnedUnits            int64
	PlacedAt, UpdatedAt                    int64
}

func (o *orderRow) outstanding() int64 { return o.Total - o.Credited - o.Paid + o.Refunded }

func (o *orderRow) document() Order {
	lines := o.Lines
	if lines == nil {
		lines = []OrderLine{}
	}
	notes := o.CreditNotes
	if notes == nil {
		notes = []CreditNote{}
	}
	return Order{
		OrderID: o.OrderID, CustomerID: o.CustomerID, Channel: o.Channel, Currency: o.Currency,
		Status:            o.Status,
		PaymentStatus:     PaymentStatus(o.Total, o.Credited, o.Paid, o.Refunded),
		FulfillmentStatus: FulfillmentStatus(o.Status, o.ShippedUnits, o.ReturnedUnits),
		Lines:             lines,
		Subtotal:          o.Subtotal, Tax: o.Tax, Total: o.Total, Paid: o.Paid, Refunded: o.Refunded,
		Outstanding:    o.outstanding(),
		InvoiceNumber:  optional(o.InvoiceNumber),
		CreditNotes:    notes,
		Carrier:        optional(o.Carrier),
		TrackingNumber: optional(o.TrackingNumber),
		PlacedAt:       microsTime(o.PlacedAt),
		UpdatedAt:      microsTime(o.UpdatedAt),
	}
}

var ordersTable = table{name: "rm_orders", key: 1, columns: []string{
	"order_id", "customer_id", "channel", "currency", "status", "payment_status", "fulfillment_status",
	"lines", "subtotal", "tax", "total", "paid", "refunded", "credited", "outstanding",
	"invoice_number", "credit_notes", "carrier", "tracking_number", "shipped_units", "returned_units",
	"placed_at", "updated_at",
}}

const orderColumns = `order_id, customer_id, channel, currency, status, lines, subtotal, tax, total,
	paid, refunded, credited, invoice_number, credit_notes, carrier, tracking_number,
	shipped_units, returned_units, placed_at, updated_at`

func scanOrder(r *sql.Rows) (*orderRow, error) {
	var (
		o            orderRow
		lines, notes string
	)
	if err := r.Scan(&o.OrderID, &o.CustomerID, &o.Channel, &o.Currency, &o.Status, &lines,
		&o.Subtotal, &o.Tax, &o.Total, &o.Paid, &o.Refunded, &o.Credited, &o.InvoiceNumber, &notes,
		&o.Carrier, &o.TrackingNumber, &o.ShippedUnits, &o.ReturnedUnits, &o.PlacedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return nil, fmt.Errorf("order %s: lines: %w", o.OrderID, err)
	}
	if err := json.Unmarshal([]byte(notes), &o.CreditNotes); err != nil {
		return nil, fmt.Errorf("order %s: credit notes: %w", o.OrderID, err)
	}
	return &o, nil
}

func (o *orderRow) values() ([]any, error) {
	lines, err := json.Marshal(o.Lines)
	if err != nil {
		return nil, err
	}
	notes := []byte("[]")
	if len(o.CreditNotes) > 0 {
		if notes, err = json.Marshal(o.CreditNotes); err != nil {
			return nil, err
		}
	}
	return []any{
		o.OrderID, o.CustomerID, o.Channel, o.Currency, o.Status,
		PaymentStatus(o.Total, o.Credited, o.Paid, o.Refunded), FulfillmentStatus(o.Status, o.ShippedUnits, o.ReturnedUnits),
		string(lines), o.Subtotal, o.Tax, o.Total, o.Paid, o.Refunded, o.Credited, o.outstanding(),
		o.InvoiceNumber, string(notes), o.Carrier, o.TrackingNumber, o.ShippedUnits, o.ReturnedUnits,
		o.PlacedAt, o.UpdatedAt,
	}, nil
}

// ordersProjector keeps rm_orders: one row per order, as its stream tells it.
type ordersProjector struct{}

var orderEventTypes = typesOf(
	domain.OrderPlaced{}, domain.OrderLineAllocated{}, domain.OrderBackordered{}, domain.OrderConfirmed{},
	domain.OrderInvoiced{}, domain.PaymentReceived{}, domain.RefundIssued{}, domain.OrderShipped{},
	domain.OrderDelivered{}, domain.OrderCompleted{}, domain.OrderCancelled{}, domain.OrderReturned{},
	domain.CreditNoteIssued{},
)

func (ordersProjector) name() string          { return "orders" }
func (ordersProjector) tables() []string      { return []string{"rm_orders"} }
func (ordersProjector) handles(t string) bool { return orderEventTypes[t] }
func (ordersProjector) newBatch(d dialect) batch {
	return &ordersBatch{d: d, rows: map[string]*orderRow{}}
}

type ordersBatch struct {
	d     dialect
	rows  map[string]*orderRow
	dirty keySet
}

// orderIDOf returns the order an event of the projection is about (every type it handles is
// a domain.AboutOrder).
func orderIDOf(e domain.Event) string {
	if o, ok := e.(domain.AboutOrder); ok {
		return o.AboutOrder()
	}
	return ""
}

func (b *ordersBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var ids keySet
	for _, e := range events {
		id := orderIDOf(e.data)
		if _, placed := e.data.(domain.OrderPlaced); !placed && b.rows[id] == nil {
			ids.add(id)
		}
	}
	return selectIn(ctx, q, b.d, "SELECT "+orderColumns+" FROM rm_orders WHERE order_id IN ({keys})", ids.keys, func(r *sql.Rows) error {
		o, err := scanOrder(r)
		if err == nil {
			b.rows[o.OrderID] = o
		}
		return err
	})
}

// errNotPlaced: an order event for an order the projection has not seen placed.
var errNotPlaced = errors.New("the order was never placed")

// apply mirrors domain.EvolveOrder, so that a document folded from the stream
// (OrderFromDomain) equals the projected one.
func (b *ordersBatch) apply(env envelope) error {
	id := orderIDOf(env.data)
	if p, ok := env.data.(domain.OrderPlaced); ok {
		if _, exists := b.rows[id]; exists {
			return fmt.Errorf("order %s is placed a second time", id)
		}
		o := &orderRow{
			OrderID: p.OrderID, CustomerID: p.CustomerID, Channel: p.Channel, Currency: p.Currency,
			Status: domain.StatusPending, Subtotal: p.Subtotal, Tax: p.Tax, Total: p.Total,
			PlacedAt: p.PlacedAt.UnixMicro(), UpdatedAt: p.PlacedAt.UnixMicro(),
			Lines: make([]OrderLine, len(p.Lines)),
		}
		for i, l := range p.Lines {
			o.Lines[i] = OrderLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
		}
		b.rows[id] = o
		b.dirty.add(id)
		return nil
	}
	o, ok := b.rows[id]
	if !ok {
		return fmt.Errorf("order %s: %w", id, errNotPlaced)
	}
	b.dirty.add(id)
	switch e := env.data.(type) {
	case domain.OrderLineAllocated:
		if i := o.lineIndex(e.SKU); i >= 0 {
			o.Lines[i].Reserved += e.Reserved
			o.Lines[i].Backordered += e.Backordered
		}
		o.UpdatedAt = e.AllocatedAt.UnixMicro()
	case domain.OrderBackordered:
		o.Status, o.UpdatedAt = domain.StatusBackordered, e.BackorderedAt.UnixMicro()
	case domain.OrderConfirmed:
		o.Status, o.UpdatedAt = domain.StatusConfirmed, e.ConfirmedAt.UnixMicro()
	case domain.OrderInvoiced:
		o.InvoiceNumber, o.UpdatedAt = e.InvoiceNumber, e.InvoicedAt.UnixMicro()
	case domain.PaymentReceived:
		o.Paid += e.Amount
		o.UpdatedAt = e.ReceivedAt.UnixMicro()
	case domain.RefundIssued:
		o.Refunded += e.Amount
		o.UpdatedAt = e.RefundedAt.UnixMicro()
	case domain.OrderShipped:
		o.Status, o.Carrier, o.TrackingNumber, o.UpdatedAt = domain.StatusShipped, e.Carrier, e.TrackingNumber, e.ShippedAt.UnixMicro()
		for _, l := range e.Lines {
			if o.lineIndex(l.SKU) >= 0 {
				o.ShippedUnits += l.Quantity
			}
		}
	case domain.OrderDelivered:
		o.Status, o.UpdatedAt = domain.StatusDelivered, e.DeliveredAt.UnixMicro()
	case domain.OrderCompleted:
		o.Status, o.UpdatedAt = domain.StatusCompleted, e.CompletedAt.UnixMicro()
	case domain.OrderCancelled:
		o.Status, o.UpdatedAt = domain.StatusCancelled, e.CancelledAt.UnixMicro()
		// Cancelling releases what the lines held in stock, as the order's fold does.
		for i := range o.Lines {
			o.Lines[i].Reserved, o.Lines[i].Backordered = 0, 0
		}
	case domain.OrderReturned:
		for _, l := range e.Lines {
			if o.lineIndex(l.SKU) >= 0 {
				o.ReturnedUnits += l.Quantity
			}
		}
		o.UpdatedAt = e.ReturnedAt.UnixMicro()
	case domain.CreditNoteIssued:
		o.CreditNotes = append(o.CreditNotes, creditNote(e.CreditNoteNumber, e.Reason, e.ReturnID, e.Net, e.Tax, e.Total, e.IssuedAt))
		o.Credited += e.Total
		o.UpdatedAt = e.IssuedAt.UnixMicro()
	}
	return nil
}

func (o *orderRow) lineIndex(sku string) int {
	for i, l := range o.Lines {
		if l.SKU == sku {
			return i
		}
	}
	return -1
}

func (b *ordersBatch) written() int {
	b.dirty = keySet{}
	return len(b.rows)
}

func (b *ordersBatch) flush(ctx context.Context, tx execer) error {
	rows := make([][]any, 0, len(b.dirty.keys))
	for _, id := range b.dirty.keys {
		v, err := b.rows[id].values()
		if err != nil {
			return err
		}
		rows = append(rows, v)
	}
	return ordersTable.upsert(ctx, tx, b.d, rows)
}

// Order returns the document of one order, or ErrNotFound.
func (s *ReadStore) Order(ctx context.Context, id string) (Order, error) {
	var doc *Order
	err := queryRows(ctx, s.reads, s.dialect, "SELECT "+orderColumns+" FROM rm_orders WHERE order_id = ?", []any{id}, func(r *sql.Rows) error {
		o, err := scanOrder(r)
		if err == nil {
			d := o.document()
			doc = &d
		}
		return err
	})
	if err != nil {
		return Order{}, err
	}
	if doc == nil {
		return Order{}, fmt.Errorf("%w: order %s", ErrNotFound, id)
	}
	return *doc, nil
}

// OrderFilter selects orders; empty fields select all.
type OrderFilter struct {
	CustomerID string
	Status     domain.OrderStatus
	Channel    string
	// After continues a listing after this order (exclusive).
	After *OrderKey
	Limit int
}

// OrderKey is an order's place in a listing: newest placed first, then by order_id
// descending among orders placed in the same microsecond.
type OrderKey struct {
	PlacedAt time.Time
	OrderID  string
}

// OrderCountsByStatus counts the orders placed at or after since, by status.
func (s *ReadStore) OrderCountsByStatus(ctx context.Context, since time.Time) (map[string]int64, error) {
	counts := map[string]int64{}
	err := queryRows(ctx, s.reads, s.dialect, "SELECT status, COUNT(*) FROM rm_orders WHERE placed_at >= ? GROUP BY status",
		[]any{since.UnixMicro()}, func(r *sql.Rows) error {
			var (
				status string
				n      int64
			)
			err := r.Scan(&status, &n)
			counts[status] = n
			return err
		})
	return counts, err
}

// Orders lists orders newest first. next is the key to continue after, nil on the last page.
func (s *ReadStore) Orders(ctx context.Context, f OrderFilter) (items []Order, next *OrderKey, err error) {
	var (
		where []string
		args  []any
	)
	if f.CustomerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, f.Channel)
	}
	if f.After != nil {
		where = append(where, "(placed_at, order_id) < (?, ?)")
		args = append(args, f.After.PlacedAt.UnixMicro(), f.After.OrderID)
	}
	q := "SELECT " + orderColumns + " FROM rm_orders"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY placed_at DESC, order_id DESC LIMIT ?"
	args = append(args, f.Limit+1)
	items = []Order{}
	err = queryRows(ctx, s.reads, s.dialect, q, args, func(r *sql.Rows) error {
		o, err := scanOrder(r)
		if err == nil {
			items = append(items, o.document())
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(items) > f.Limit {
		items = items[:f.Limit]
		last := items[len(items)-1]
		next = &OrderKey{PlacedAt: last.PlacedAt, OrderID: last.OrderID}
	}
	return items, next, nil
}
