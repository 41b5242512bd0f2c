package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// SalesSummary is the document of GET /v1/sales/summary.
type SalesSummary struct {
	Orders    int64          `json:"orders"`
	Invoiced  int64          `json:"invoiced"`
	Credited  int64          `json:"credited"`
	NetSales  int64          `json:"net_sales"`
	Tax       int64          `json:"tax"`
	Payments  int64          `json:"payments"`
	Refunds   int64          `json:"refunds"`
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
	Orders   int64 `json:"orders"`
	NetSales int64 `json:"net_sales"`
}

// SalesDay is one UTC day of GET /v1/sales/daily.
type SalesDay struct {
	Date     string `json:"date"`
	Orders   int64  `json:"orders"`
	Invoiced int64  `json:"invoiced"`
	Credited int64  `json:"credited"`
	Payments int64  `json:"payments"`
}

// Period bounds a sales query: From inclusive, To exclusive; a zero bound is open.
type Period struct {
	From, To time.Time
}

// salesFact is a row of rm_sales_facts: what one dated document adds to the sales figures.
type salesFact struct {
	id                    string
	at                    time.Time
	channel               string
	orders                int64
	invoiced, credited    int64
	invoiceTax, creditTax int64
	payments, refunds     int64
}

var salesFactsTable = table{name: "rm_sales_facts", key: 1, columns: []string{
	"fact_id", "occurred_at", "day", "channel", "orders", "invoiced", "credited", "invoice_tax", "credit_tax", "payments", "refunds",
}}

var salesChannelsTable = table{name: "rm_sales_order_channels", key: 1, columns: []string{"order_id", "channel"}}

// salesProjector keeps one fact per order placed, invoice, credit note, payment and refund,
// dated by the document, with the order's channel (rm_sales_order_channels remembers it).
type salesProjector struct{}

var salesEventTypes = typesOf(domain.OrderPlaced{}, domain.OrderInvoiced{}, domain.CreditNoteIssued{}, domain.PaymentReceived{}, domain.RefundIssued{})

func (salesProjector) name() string          { return "sales" }
func (salesProjector) tables() []string      { return []string{"rm_sales_facts", "rm_sales_order_channels"} }
func (salesProjector) handles(t string) bool { return salesEventTypes[t] }
func (salesProjector) newBatch(d dialect) batch {
	return &salesBatch{d: d, channels: map[string]string{}}
}

type salesBatch struct {
	d        dialect
	channels map[string]string
	placed   [][]any
	facts    [][]any
}

func (b *salesBatch) load(ctx context.Context, q queryer, events []envelope) error {
	var ids keySet
	for _, e := range events {
		id := orderIDOf(e.data)
		if _, placed := e.data.(domain.OrderPlaced); !placed && b.channels[id] == "" {
			ids.add(id)
		}
	}
	return selectIn(ctx, q, b.d, "SELECT order_id, channel FROM rm_sales_order_channels WHERE order_id IN ({keys})", ids.keys, func(r *sql.Rows) error {
		var id, channel string
		err := r.Scan(&id, &channel)
		b.channels[id] = channel
		return err
	})
}

func (b *salesBatch) apply(env envelope) error {
	f := salesFact{id: env.meta.ID.String()}
	if e, ok := env.data.(domain.OrderPlaced); ok {
		if _, exists := b.channels[e.OrderID]; exists {
			return fmt.Errorf("order %s is placed a second time", e.OrderID)
		}
		b.channels[e.OrderID] = e.Channel
		b.placed = append(b.placed, []any{e.OrderID, e.Channel})
		f.at, f.orders = e.PlacedAt, 1
	}
	id := orderIDOf(env.data)
	channel, ok := b.channels[id]
	if !ok {
		return fmt.Errorf("order %s: %w", id, errNotPlaced)
	}
	f.channel = channel
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
	b.facts = append(b.facts, []any{f.id, at.UnixMicro(), at.Format(time.DateOnly), f.channel, f.orders,
		f.invoiced, f.credited, f.invoiceTax, f.creditTax, f.payments, f.refunds})
	return nil
}

func (b *salesBatch) written() int {
	b.placed, b.facts = nil, nil
	return len(b.channels)
}

func (b *salesBatch) flush(ctx context.Context, tx execer) error {
	if err := salesChannelsTable.insert(ctx, tx, b.d, b.placed); err != nil {
		return err
	}
	return salesFactsTable.insert(ctx, tx, b.d, b.facts)
}

// periodWhere is the condition for facts within p.
func periodWhere(p Period) (string, []any) {
	var (
		where []string
		args  []any
	)
	if !p.From.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, p.From.UnixMicro())
	}
	if !p.To.IsZero() {
		where, args = append(where, "occurred_at < ?"), append(args, p.To.UnixMicro())
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// SalesSummary sums the facts dated within p.
func (s *ReadStore) SalesSummary(ctx context.Context, p Period) (SalesSummary, error) {
	where, args := periodWhere(p)
	var sum SalesSummary
	err := queryRows(ctx, s.reads, s.dialect, `SELECT channel, COALESCE(SUM(orders), 0), COALESCE(SUM(invoiced), 0),
		COALESCE(SUM(credited), 0), COALESCE(SUM(invoice_tax), 0), COALESCE(SUM(credit_tax), 0),
		COALESCE(SUM(payments), 0), COALESCE(SUM(refunds), 0)
		FROM rm_sales_facts`+where+` GROUP BY channel`, args, func(r *sql.Rows) error {
		var (
			channel                                                              string
			orders, invoiced, credited, invoiceTax, creditTax, payments, refunds int64
		)
		if err := r.Scan(&channel, &orders, &invoiced, &credited, &invoiceTax, &creditTax, &payments, &refunds); err != nil {
			return err
		}
		sum.Orders += orders
		sum.Invoiced += invoiced
		sum.Credited += credited
		sum.Tax += invoiceTax - creditTax
		sum.Payments += payments
		sum.Refunds += refunds
		cs := ChannelSales{Orders: orders, NetSales: invoiced - credited}
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
	sum.NetSales = sum.Invoiced - sum.Credited
	return sum, err
}

// SalesDaily sums the facts dated within p per UTC day, oldest first; days without any are
// left out.
func (s *ReadStore) SalesDaily(ctx context.Context, p Period) ([]SalesDay, error) {
	where, args := periodWhere(p)
	days := []SalesDay{}
	err := queryRows(ctx, s.reads, s.dialect, `SELECT day, COALESCE(SUM(orders), 0), COALESCE(SUM(invoiced), 0),
		COALESCE(SUM(credited), 0), COALESCE(SUM(payments), 0)
		FROM rm_sales_facts`+where+` GROUP BY day ORDER BY day`, args, func(r *sql.Rows) error {
		var d SalesDay
		err := r.Scan(&d.Date, &d.Orders, &d.Invoiced, &d.Credited, &d.Payments)
		days = append(days, d)
		return err
	})
	return days, err
}
