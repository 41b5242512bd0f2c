package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// SalesSummary is the document of GET /v1/sales/summary: one currency's figures.
type SalesSummary struct {
	Currency  string         `json:"currency"`
	Orders    int64          `json:"orders"`
	Invoiced  Amount         `json:"invoiced"`
	Credited  Amount         `json:"credited"`
	NetSales  Amount         `json:"net_sales"`
	Tax       Amount         `json:"tax"`
	Payments  Amount         `json:"payments"`
	Refunds   Amount         `json:"refunds"`
	ByChannel ChannelSummary `json:"by_channel"`
}

// ChannelSummary splits orders and net sales by channel.
type ChannelSummary struct {
	Web   ChannelSales `json:"web"`
	Store ChannelSales `json:"store"`
	Phone ChannelSales `json:"phone"`
}

// ChannelSales is one channel's part of a summary.
type ChannelSales struct {
	Orders   int64  `json:"orders"`
	NetSales Amount `json:"net_sales"`
}

// SalesDay is one UTC day of GET /v1/sales/daily.
type SalesDay struct {
	Date     string `json:"date"`
	Orders   int64  `json:"orders"`
	Invoiced Amount `json:"invoiced"`
	Credited Amount `json:"credited"`
	Payments Amount `json:"payments"`
}

// Period bounds a sales query: From inclusive, To exclusive; a zero bound is open.
type Period struct {
	From, To time.Time
}

// salesFact is a row of rm_sales_facts: what one dated document adds to the sales figures.
type salesFact struct {
	id                    string
	at                    time.Time
	channel, currency     string
	orders                int64
	invoiced, credited    int64
	invoiceTax, creditTax int64
	payments, refunds     int64
}

var salesFactsTable = table{name: "rm_sales_facts", key: 1, columns: []string{
	"fact_id", "occurred_at", "day", "currency", "channel", "orders", "invoiced", "credited", "invoice_tax", "credit_tax", "payments", "refunds",
}}

var salesChannelsTable = table{name: "rm_sales_order_channels", key: 1, columns: []string{"order_id", "channel", "currency"}}

// salesProjector keeps one fact per order placed, invoice, credit note, payment and refund,
// dated by the document, with the order's channel and currency (rm_sales_order_channels
// remembers them).
type salesProjector struct{}

var salesEventTypes = typesOf(domain.OrderPlaced{}, domain.OrderInvoiced{}, domain.CreditNoteIssued{}, domain.PaymentReceived{}, domain.RefundIssued{})

func (salesProjector) name() string          { return "sales" }
func (salesProjector) tables() []string      { return []string{"rm_sales_facts", "rm_sales_order_channels"} }
func (salesProjector) handles(t string) bool { return salesEventTypes[t] }
func (salesProjector) newBatch(d dialect) batch {
	return &salesBatch{d: d, orders: map[string]salesOrder{}}
}

// salesOrder is what the sales projector remembers of an order.
type salesOrder struct{ channel, currency string }

type salesBatch struct {
	d      dialect
	orders map[string]salesOrder
	placed [][]any
	facts  [][]any
}

func (b *salesBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var ids keySet
	for _, e := range events {
		id := orderIDOf(e.data)
		if _, placed := e.data.(domain.OrderPlaced); !placed && b.orders[id].channel == "" {
			ids.add(id)
		}
	}
	return selectIn(ctx, q, b.d, "SELECT order_id, channel, currency FROM rm_sales_order_channels WHERE order_id IN ({keys})", ids.keys, func(r *sql.Rows) error {
		var (
			id string
			o  salesOrder
		)
		err := r.Scan(&id, &o.channel, &o.currency)
		b.orders[id] = o
		return err
	})
}

func (b *salesBatch) apply(env envelope) error {
	f := salesFact{id: env.meta.ID.String()}
	if e, ok := env.data.(domain.OrderPlaced); ok {
		if _, exists := b.orders[e.OrderID]; exists {
			return fmt.Errorf("order %s is placed a second time", e.OrderID)
		}
		b.orders[e.OrderID] = salesOrder{channel: e.Channel, currency: e.Currency}
		b.placed = append(b.placed, []any{e.OrderID, e.Channel, e.Currency})
		f.at, f.orders = e.PlacedAt, 1
	}
	id := orderIDOf(env.data)
	o, ok := b.orders[id]
	if !ok {
		return fmt.Errorf("order %s: %w", id, errNotPlaced)
	}
	f.channel, f.currency = o.channel, o.currency
	switch e := env.data.(type) {
	case domain.OrderInvoiced:
		f.at, f.invoiced, f.invoiceTax = e.InvoicedAt, e.Total, e.Tax
	case domain.CreditNoteIssued:
		f.at, f.credited, f.creditTax = e.IssuedAt, e.Total, e.Tax
	case domain.PaymentReceived:
		f.at, f.payments = e.ReceivedAt, e.Amount
	case domain.RefundIssued:
		f.at, f.refunds = e.RefundedAt, e.Amount
	}
	at := f.at.UTC()
	b.facts = append(b.facts, []any{f.id, at.UnixMicro(), at.Format(time.DateOnly), f.currency, f.channel, f.orders,
		f.invoiced, f.credited, f.invoiceTax, f.creditTax, f.payments, f.refunds})
	return nil
}

func (b *salesBatch) written() int {
	b.placed, b.facts = nil, nil
	return len(b.orders)
}

func (b *salesBatch) flush(ctx context.Context, tx execer) error {
	if err := salesChannelsTable.insert(ctx, tx, b.d, b.placed); err != nil {
		return err
	}
	return salesFactsTable.insert(ctx, tx, b.d, b.facts)
}

// periodWhere is the condition for a currency's facts within p.
func periodWhere(currency string, p Period) (string, []any) {
	where, args := []string{"currency = ?"}, []any{currency}
	if !p.From.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, p.From.UnixMicro())
	}
	if !p.To.IsZero() {
		where, args = append(where, "occurred_at < ?"), append(args, p.To.UnixMicro())
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// SalesSummary sums a currency's facts dated within p, exactly.
func (s *ReadStore) SalesSummary(ctx context.Context, currency string, p Period) (SalesSummary, error) {
	where, args := periodWhere(currency, p)
	sum := SalesSummary{Currency: currency}
	var invoiceTax, creditTax Amount
	err := queryRows(ctx, s.reads, s.dialect, `SELECT channel, COALESCE(SUM(orders), 0), `+
		sumSplit("invoiced")+`, `+sumSplit("credited")+`, `+sumSplit("invoice_tax")+`, `+sumSplit("credit_tax")+`, `+
		sumSplit("payments")+`, `+sumSplit("refunds")+`
		FROM rm_sales_facts`+where+` GROUP BY channel`, args, func(r *sql.Rows) error {
		var (
			channel                                                          string
			orders                                                           int64
			invoiced, credited, chInvoiceTax, chCreditTax, payments, refunds Amount
		)
		sums := []*splitSum{{into: &invoiced}, {into: &credited}, {into: &chInvoiceTax}, {into: &chCreditTax}, {into: &payments}, {into: &refunds}}
		dest := []any{&channel, &orders}
		for _, s := range sums {
			dest = append(dest, s.targets()...)
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		for _, s := range sums {
			s.done()
		}
		sum.Orders += orders
		sum.Invoiced = sum.Invoiced.Plus(invoiced)
		sum.Credited = sum.Credited.Plus(credited)
		invoiceTax = invoiceTax.Plus(chInvoiceTax)
		creditTax = creditTax.Plus(chCreditTax)
		sum.Payments = sum.Payments.Plus(payments)
		sum.Refunds = sum.Refunds.Plus(refunds)
		cs := ChannelSales{Orders: orders, NetSales: invoiced.Minus(credited)}
		switch channel {
		case "web":
			sum.ByChannel.Web = cs
		case "store":
			sum.ByChannel.Store = cs
		case "phone":
			sum.ByChannel.Phone = cs
		}
		return nil
	})
	sum.NetSales = sum.Invoiced.Minus(sum.Credited)
	sum.Tax = invoiceTax.Minus(creditTax)
	return sum, err
}

// SalesDaily sums a currency's facts dated within p per UTC day, oldest first; days without
// any are left out.
func (s *ReadStore) SalesDaily(ctx context.Context, currency string, p Period) ([]SalesDay, error) {
	where, args := periodWhere(currency, p)
	days := []SalesDay{}
	err := queryRows(ctx, s.reads, s.dialect, `SELECT day, COALESCE(SUM(orders), 0), `+
		sumSplit("invoiced")+`, `+sumSplit("credited")+`, `+sumSplit("payments")+`
		FROM rm_sales_facts`+where+` GROUP BY day ORDER BY day`, args, func(r *sql.Rows) error {
		var d SalesDay
		sums := []*splitSum{{into: &d.Invoiced}, {into: &d.Credited}, {into: &d.Payments}}
		dest := []any{&d.Date, &d.Orders}
		for _, s := range sums {
			dest = append(dest, s.targets()...)
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		for _, s := range sums {
			s.done()
		}
		days = append(days, d)
		return nil
	})
	return days, err
}
