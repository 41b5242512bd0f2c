package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/readapi"
)

// health is what the overview and the audit page say of the followers of this process.
type health struct {
	Projections *projections.Status
	Automation  *automation.Status
}

func (d *Dashboard) health() health {
	var h health
	if d.src.Projections != nil {
		st := d.src.Projections()
		h.Projections = &st
	}
	if d.src.Automation != nil {
		st := d.src.Automation()
		h.Automation = &st
	}
	return h
}

// chart is a daily series for uPlot: x in Unix seconds, one series per figure, in major units.
type chart struct {
	Currency string      `json:"currency"`
	X        []int64     `json:"x"`
	Series   []chartLine `json:"series"`
}

type chartLine struct {
	Label  string    `json:"label"`
	Values []float64 `json:"values"`
}

// dailyChart charts days from first to last (UTC dates), a day without sales as zeros.
func dailyChart(currency string, first, last time.Time, days []projections.SalesDay) (template.JS, error) {
	c := chart{Currency: currency, X: []int64{}, Series: []chartLine{{Label: "Invoiced"}, {Label: "Credited"}, {Label: "Payments"}}}
	byDate := make(map[string]projections.SalesDay, len(days))
	for _, day := range days {
		byDate[day.Date] = day
	}
	for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
		day := byDate[t.Format(time.DateOnly)]
		c.X = append(c.X, t.Unix())
		c.Series[0].Values = append(c.Series[0].Values, asFloat(day.Invoiced, currency))
		c.Series[1].Values = append(c.Series[1].Values, asFloat(day.Credited, currency))
		c.Series[2].Values = append(c.Series[2].Values, asFloat(day.Payments, currency))
	}
	b, err := json.Marshal(c)
	return template.JS(b), err
}

type overviewData struct {
	Currency     string
	Today        string
	ByStatus     []statusCount
	OrdersToday  int64
	Summary      projections.SalesSummary
	Chart        template.JS
	LowStock     []projections.StockLevel
	RecentOrders []projections.Order
	Health       health
}

type statusCount struct {
	Status string
	Count  int64
}

func (overviewData) title() string { return "Overview" }

// GET /: today's orders by status, sales by day, low stock, recent orders, health.
func (d *Dashboard) overview(ctx context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	now := d.src.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	data := overviewData{Currency: d.src.BaseCurrency, Today: today.Format(time.DateOnly), Health: d.health()}
	counts, err := d.src.Read.OrderCountsByStatus(ctx, today)
	if err != nil {
		return "", nil, err
	}
	for _, s := range orderStatuses {
		data.ByStatus = append(data.ByStatus, statusCount{Status: s, Count: counts[s]})
		data.OrdersToday += counts[s]
	}
	if data.Summary, err = d.src.Read.SalesSummary(ctx, data.Currency, projections.Period{From: today}); err != nil {
		return "", nil, err
	}
	days, err := d.src.Read.SalesDaily(ctx, data.Currency, projections.Period{From: today.AddDate(0, 0, -29)})
	if err != nil {
		return "", nil, err
	}
	if data.Chart, err = dailyChart(data.Currency, today.AddDate(0, 0, -29), today, days); err != nil {
		return "", nil, err
	}
	low := true
	if data.LowStock, _, err = d.src.Read.StockLevels(ctx, projections.StockFilter{LowStock: &low, Limit: 10}); err != nil {
		return "", nil, err
	}
	if data.RecentOrders, _, err = d.src.Read.Orders(ctx, projections.OrderFilter{Limit: 10}); err != nil {
		return "", nil, err
	}
	return "overview", data, nil
}

type ordersData struct {
	Status, Channel, CustomerID string
	Orders                      []projections.Order
	Next                        string
	Paged                       bool
}

func (ordersData) title() string { return "Orders" }

// GET /ui/orders?status=&channel=&customer_id=&cursor=
func (d *Dashboard) orders(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "status", "channel", "customer_id", "cursor")
	if err != nil {
		return "", nil, err
	}
	var data ordersData
	f := projections.OrderFilter{Limit: pageSize}
	status, err := q.oneOf("status", orderStatuses...)
	if err != nil {
		return "", nil, err
	}
	f.Status = domain.OrderStatus(status)
	if f.Channel, err = q.oneOf("channel", "web", "store", "phone"); err != nil {
		return "", nil, err
	}
	if f.CustomerID, err = q.id("customer_id"); err != nil {
		return "", nil, err
	}
	at, id, err := q.timeCursor()
	if err != nil {
		return "", nil, err
	}
	if at != nil {
		f.After = &projections.OrderKey{PlacedAt: *at, OrderID: id}
		data.Paged = true
	}
	items, next, err := d.src.Read.Orders(ctx, f)
	if err != nil {
		return "", nil, err
	}
	data.Status, data.Channel, data.CustomerID, data.Orders = status, f.Channel, f.CustomerID, items
	if next != nil {
		data.Next = cursor(next.PlacedAt.Format(time.RFC3339Nano), next.OrderID)
	}
	return "orders", data, nil
}

type orderData struct {
	Personal bool // the caller may see the events' data, which may hold personal data
	Order    projections.Order
	AsOf     *time.Time
	Events   []timelineEvent
	Postings []projections.LedgerEntry
}

func (o orderData) title() string { return "Order " + o.Order.OrderID }

// timelineEvent is an event of the order's stream as the timeline shows it.
type timelineEvent struct {
	Version    uint64
	Type       string
	RecordedAt time.Time
	Actor      string
	Data       string
	// Later is true when the page shows the order as of an instant before this event.
	Later bool
}

// GET /ui/orders/{id}?as_of=: the order now or as of an instant, its events and postings.
func (d *Dashboard) order(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "as_of")
	if err != nil {
		return "", nil, err
	}
	id := mux.Vars(r)["id"]
	if !domain.ValidReference(id) {
		return "", nil, httpx.BadRequest("id in the path must match ^[A-Za-z0-9._-]{1,64}$, got %q", httpx.Clip(id))
	}
	data := orderData{Personal: seesPersonalData(ctx)}
	if raw := strings.TrimSpace(q["as_of"]); raw != "" {
		at, err := parseInstant(raw)
		if err != nil {
			return "", nil, err
		}
		data.AsOf = &at
		data.Order, err = projections.OrderAsOf(ctx, d.src.Events, id, at)
		if err != nil {
			if errors.Is(err, projections.ErrNotFound) {
				return "", nil, httpx.Errorf(http.StatusNotFound, "order_not_found", "order %s did not exist yet at %s", id, at.Format(time.RFC3339Nano))
			}
			return "", nil, err
		}
	} else if data.Order, err = d.src.Read.Order(ctx, id); err != nil {
		return "", nil, notFound(err, domain.ErrOrderNotFound, id)
	}
	events, err := readapi.OrderEvents(ctx, d.src.Events, id)
	if err != nil {
		return "", nil, err
	}
	for _, e := range events {
		data.Events = append(data.Events, timelineEvent{
			Version: e.Version, Type: e.Type, RecordedAt: e.RecordedAt.UTC(), Actor: e.Metadata.Actor,
			Data: string(e.Data), Later: data.AsOf != nil && e.RecordedAt.After(*data.AsOf),
		})
	}
	postings, _, err := d.src.Read.LedgerEntries(ctx, projections.LedgerFilter{OrderID: id, Limit: 500})
	if err != nil {
		return "", nil, err
	}
	for _, p := range postings {
		if data.AsOf == nil || !p.PostedAt.After(*data.AsOf) {
			data.Postings = append(data.Postings, p)
		}
	}
	return "order", data, nil
}

// parseInstant reads an instant: RFC 3339, or a browser's datetime-local value
// (2025-03-01T10:30 or with seconds), taken as UTC.
func parseInstant(raw string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, raw); err == nil {
			return t, nil
		}
	}
	return time.Time{}, httpx.BadRequest("parameter as_of must be an instant such as 2025-03-01T10:30:00Z, got %q", httpx.Clip(raw))
}

type stockData struct {
	LowStock []projections.StockLevel
	All      []projections.StockLevel
	Next     string
	Paged    bool
	Open     []projections.PurchaseOrder
}

func (stockData) title() string { return "Stock" }

// GET /ui/stock?cursor=: low stock first, then every SKU a page at a time, and what is coming.
func (d *Dashboard) stock(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "cursor")
	if err != nil {
		return "", nil, err
	}
	var data stockData
	_, after, paged, err := q.cursor()
	if err != nil {
		return "", nil, err
	}
	data.Paged = paged
	low := true
	if data.LowStock, _, err = d.src.Read.StockLevels(ctx, projections.StockFilter{LowStock: &low, Limit: 500}); err != nil {
		return "", nil, err
	}
	all, next, err := d.src.Read.StockLevels(ctx, projections.StockFilter{AfterSKU: after, Limit: pageSize})
	if err != nil {
		return "", nil, err
	}
	data.All = all
	if next != nil {
		data.Next = cursor("sku", *next)
	}
	if data.Open, _, err = d.src.Read.PurchaseOrders(ctx, projections.PurchaseOrderFilter{Status: projections.PurchaseOrderOpen, Limit: 100}); err != nil {
		return "", nil, err
	}
	return "stock", data, nil
}

type purchaseOrdersData struct {
	Status, SKU string
	Items       []projections.PurchaseOrder
	Next        string
	Paged       bool
}

func (purchaseOrdersData) title() string { return "Purchase orders" }

// GET /ui/purchase-orders?status=&sku=&cursor=
func (d *Dashboard) purchaseOrders(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "status", "sku", "cursor")
	if err != nil {
		return "", nil, err
	}
	f := projections.PurchaseOrderFilter{Limit: pageSize}
	if f.Status, err = q.oneOf("status", projections.PurchaseOrderOpen, projections.PurchaseOrderReceived); err != nil {
		return "", nil, err
	}
	if f.SKU, err = q.id("sku"); err != nil {
		return "", nil, err
	}
	at, id, err := q.timeCursor()
	if err != nil {
		return "", nil, err
	}
	data := purchaseOrdersData{Status: f.Status, SKU: f.SKU, Paged: at != nil}
	if at != nil {
		f.After = &projections.PurchaseOrderKey{RaisedAt: *at, PurchaseOrderID: id}
	}
	items, next, err := d.src.Read.PurchaseOrders(ctx, f)
	if err != nil {
		return "", nil, err
	}
	data.Items = items
	if next != nil {
		data.Next = cursor(next.RaisedAt.Format(time.RFC3339Nano), next.PurchaseOrderID)
	}
	return "purchase-orders", data, nil
}

type customersData struct {
	Personal bool // the caller may see names and e-mail addresses
	Currency string
	Items    []projections.Customer
	Next     string
	Paged    bool
	Offset   int
}

func (customersData) title() string { return "Customers" }

// GET /ui/customers?cursor=: best first, by lifetime value in the base currency.
func (d *Dashboard) customers(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "cursor")
	if err != nil {
		return "", nil, err
	}
	key, id, paged, err := q.cursor()
	if err != nil {
		return "", nil, err
	}
	var after *projections.CustomerKey
	if paged {
		var value projections.Amount
		if err := json.Unmarshal([]byte(key), &value); err != nil {
			return "", nil, errCursor
		}
		after = &projections.CustomerKey{LifetimeValue: value, CustomerID: id}
	}
	items, next, err := d.src.Read.CustomersByLifetimeValue(ctx, d.src.BaseCurrency, pageSize, after)
	if err != nil {
		return "", nil, err
	}
	data := customersData{Personal: seesPersonalData(ctx), Currency: d.src.BaseCurrency, Items: items, Paged: paged}
	if next != nil {
		data.Next = cursor(next.LifetimeValue.String(), next.CustomerID)
	}
	return "customers", data, nil
}

type salesData struct {
	Currency   string
	Currencies []string
	From       string
	Summary    projections.SalesSummary
	Days       []projections.SalesDay
	Chart      template.JS
}

func (salesData) title() string { return "Sales" }

// salesDays is how far back the sales page looks.
const salesDays = 90

// GET /ui/sales?currency=: the last 90 days in one currency, as a chart and a table.
func (d *Dashboard) sales(ctx context.Context, r *http.Request) (string, any, error) {
	q, err := parseQuery(r, "currency")
	if err != nil {
		return "", nil, err
	}
	data := salesData{}
	if data.Currency, err = q.currency(d.src.BaseCurrency); err != nil {
		return "", nil, err
	}
	if data.Currencies, err = d.currencies(ctx, data.Currency); err != nil {
		return "", nil, err
	}
	today := d.src.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, 1-salesDays)
	data.From = from.Format(time.DateOnly)
	p := projections.Period{From: from}
	if data.Summary, err = d.src.Read.SalesSummary(ctx, data.Currency, p); err != nil {
		return "", nil, err
	}
	if data.Days, err = d.src.Read.SalesDaily(ctx, data.Currency, p); err != nil {
		return "", nil, err
	}
	if data.Chart, err = dailyChart(data.Currency, from, today, data.Days); err != nil {
		return "", nil, err
	}
	return "sales", data, nil
}

// currencies are the currencies the books hold, with the base currency and also, when given,
// the currency being shown.
func (d *Dashboard) currencies(ctx context.Context, shown string) ([]string, error) {
	held, err := d.src.Read.LedgerCurrencies(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range []string{d.src.BaseCurrency, shown} {
		if c != "" && !slices.Contains(held, c) {
			held = append(held, c)
		}
	}
	slices.Sort(held)
	return held, nil
}

type ledgerData struct {
	Books   []projections.TrialBalance
	Journal bool // the caller may download the journal
}

func (ledgerData) title() string { return "Ledger" }

// GET /ui/ledger: the trial balance of every currency, and the journal to download.
func (d *Dashboard) ledger(ctx context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	currencies, err := d.currencies(ctx, "")
	if err != nil {
		return "", nil, err
	}
	data := ledgerData{Journal: d.allows(ctx, http.MethodGet, "/v1/ledger/journal")}
	for _, c := range currencies {
		tb, err := d.src.Read.TrialBalance(ctx, c, time.Time{})
		if err != nil {
			return "", nil, err
		}
		data.Books = append(data.Books, tb)
	}
	return "ledger", data, nil
}

type auditData struct {
	Health health
}

func (auditData) title() string { return "Audit" }

// GET /ui/audit: each read model's position and lag; verify and digest on request.
func (d *Dashboard) audit(_ context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	return "audit", auditData{Health: d.health()}, nil
}

// GET /ui/audit/verify: the hash chains of the whole log, checked now (a fragment).
func (d *Dashboard) verify(ctx context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	report, err := audit.Verify(ctx, d.src.Events, audit.Options{})
	return "audit#verify-result", report, err
}

// digestData is the digest of the log and what to run to check it later.
type digestData struct {
	Digest   string
	Position eventstore.Position
	Streams  uint64
	Events   uint64
}

// GET /ui/audit/digest: a digest of the log as it is now (a fragment).
func (d *Dashboard) digest(ctx context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	dg, _, err := audit.TakeDigest(ctx, d.src.Events, audit.Options{})
	if err != nil {
		return "", nil, err
	}
	return "audit#digest-result", digestData{Digest: dg.String(), Position: dg.Position, Streams: dg.Streams, Events: dg.Events}, nil
}
