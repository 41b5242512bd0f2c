package readapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/projections"
)

// Page is a list answer with a cursor: pass next_cursor as ?cursor= for the next page; it is
// null on the last page.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// List is a list answer without paging.
type List[T any] struct {
	Items []T `json:"items"`
}

// notFound turns the read store's ErrNotFound into the domain's not-found error for the
// resource, which the error table answers with 404.
func notFound(err error, sentinel error, id string) error {
	if errors.Is(err, projections.ErrNotFound) {
		return fmt.Errorf("%w: %s", sentinel, id)
	}
	return err
}

// pathID returns a path identifier; one that does not match the identifier pattern is a 400
// naming the parameter, as on the write routes; a well-formed one that names nothing is a 404.
func pathID(r *http.Request, name string) (string, error) {
	id := mux.Vars(r)[name]
	// A path addresses something that may exist, perhaps made by an older version under the
	// old rule, so it is checked as a reference.
	if !domain.ValidReference(id) {
		return "", httpx.BadRequest("%s in the path must match ^[A-Za-z0-9._-]{1,64}$, got %q", name, httpx.Clip(id))
	}
	return id, nil
}

// idParam reads an optional identifier parameter.
func (q query) idParam(name string) (string, error) {
	raw, ok := q.get(name)
	if ok && !domain.ValidReference(raw) {
		return "", httpx.BadRequest("parameter %s must match ^[A-Za-z0-9._-]{1,64}$, got %q", name, raw)
	}
	return raw, nil
}

// GET /v1/orders/{id}[?as_of=]
func (a *API) order(ctx context.Context, r *http.Request, q query) (any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	at, asOf, err := q.asOf()
	if err != nil {
		return nil, err
	}
	if asOf {
		o, err := projections.OrderAsOf(ctx, a.events, id, at)
		return o, notFoundAsOf(err, domain.ErrOrderNotFound, id, at)
	}
	o, err := a.read.Order(ctx, id)
	return o, notFound(err, domain.ErrOrderNotFound, id)
}

// notFoundAsOf is notFound for a document as of a time: the resource may exist now.
func notFoundAsOf(err error, sentinel error, id string, at time.Time) error {
	if errors.Is(err, projections.ErrNotFound) {
		return fmt.Errorf("%w: %s did not exist yet at %s", sentinel, id, at.Format(time.RFC3339Nano))
	}
	return err
}

// orderStatuses are the values ?status= takes.
var orderStatuses = func() []string {
	out := make([]string, len(domain.OrderStatuses))
	for i, s := range domain.OrderStatuses {
		out[i] = string(s)
	}
	return out
}()

// GET /v1/orders: newest placed first (ties by order_id, descending).
func (a *API) orders(ctx context.Context, _ *http.Request, q query) (any, error) {
	var (
		f   projections.OrderFilter
		err error
	)
	if f.CustomerID, err = q.idParam("customer_id"); err != nil {
		return nil, err
	}
	status, err := q.oneOf("status", orderStatuses...)
	if err != nil {
		return nil, err
	}
	f.Status = domain.OrderStatus(status)
	if f.Channel, err = q.oneOf("channel", "web", "store", "phone"); err != nil {
		return nil, err
	}
	if f.Limit, err = q.limit(); err != nil {
		return nil, err
	}
	if raw, ok := q.get("cursor"); ok {
		at, id, err := decodeCursor(orderCursor, raw)
		if err != nil {
			return nil, err
		}
		f.After = &projections.OrderKey{PlacedAt: at, OrderID: id}
	}
	items, next, err := a.read.Orders(ctx, f)
	if err != nil {
		return nil, err
	}
	page := Page[projections.Order]{Items: items}
	if next != nil {
		c := encodeCursor(orderCursor, next.PlacedAt, next.OrderID)
		page.NextCursor = &c
	}
	return page, nil
}

// Cursors name the last item of a page: its sort key and identifier, behind a prefix saying
// which listing they belong to, base64url-encoded so that clients treat them as opaque.
const (
	orderCursor         = "o1"
	ledgerCursor        = "l1"
	purchaseOrderCursor = "p1"
	stockCursor         = "s1"
	customerCursor      = "c1"
)

func encodeCursor(kind string, at time.Time, id string) string {
	return encodeKey(kind, strconv.FormatInt(at.UnixMicro(), 10), id)
}

func decodeCursor(kind, raw string) (time.Time, string, error) {
	parts, err := decodeKey(kind, raw, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	us, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return time.Time{}, "", badCursor
	}
	return time.UnixMicro(us).UTC(), parts[1], nil
}

var badCursor = httpx.BadRequest("parameter cursor is not a cursor this listing gave out; pass next_cursor as it came")

// encodeKey makes a cursor of kind from parts, the last of which is an identifier.
func encodeKey(kind string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strings.Join(parts, ":")))
}

// decodeKey reads a cursor of kind made of n parts; the last must be a valid identifier.
func decodeKey(kind, raw string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, badCursor
	}
	parts := strings.SplitN(string(b), ":", n+1)
	if len(parts) != n+1 || parts[0] != kind || !domain.ValidReference(parts[n]) {
		return nil, badCursor
	}
	return parts[1:], nil
}

// HistoryEvent is an event of an order's stream as GET /v1/orders/{id}/history shows it.
type HistoryEvent struct {
	Position   eventstore.Position `json:"position"`
	Version    uint64              `json:"version"`
	Type       string              `json:"type"`
	RecordedAt time.Time           `json:"recorded_at"`
	// Actor is who caused the event: the name of the token (or OpenID Connect identity) of the
	// request, "anonymous" in open mode, or the automation's name; null when none was recorded.
	Actor *string         `json:"actor"`
	Data  json.RawMessage `json:"data"`
}

// historyPage is how many events one read of the stream takes.
const historyPage = 1000

// GET /v1/orders/{id}/history, from the event store.
func (a *API) history(ctx context.Context, r *http.Request, _ query) (any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	stored, err := OrderEvents(ctx, a.events, id)
	if err != nil {
		return nil, err
	}
	events := make([]HistoryEvent, 0, len(stored))
	for _, e := range stored {
		ev := HistoryEvent{Position: e.Position, Version: e.Version, Type: e.Type, RecordedAt: e.RecordedAt.UTC(), Data: e.Data}
		if e.Metadata.Actor != "" {
			actor := e.Metadata.Actor
			ev.Actor = &actor
		}
		events = append(events, ev)
	}
	return struct {
		Events []HistoryEvent `json:"events"`
	}{events}, nil
}

// OrderEvents reads every event of an order's stream, oldest first; an order with none is
// domain.ErrOrderNotFound. The history route and the dashboard's timeline show them.
func OrderEvents(ctx context.Context, store eventstore.Store, id string) ([]eventstore.Event, error) {
	var events []eventstore.Event
	for from := uint64(0); ; {
		batch, err := store.ReadStream(ctx, domain.OrderStream(id), from, historyPage)
		if err != nil {
			return nil, err
		}
		events = append(events, batch...)
		if len(batch) < historyPage {
			break
		}
		from = batch[len(batch)-1].Version + 1
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: %s", domain.ErrOrderNotFound, id)
	}
	return events, nil
}

// GET /v1/customers/{id}
func (a *API) customer(ctx context.Context, r *http.Request, _ query) (any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	render := func() ([]byte, error) {
		c, err := a.read.Customer(ctx, id, a.baseCurrency)
		if err != nil {
			return nil, err
		}
		return render(c)
	}
	// The document's figures are in the base currency: only one base currency's documents
	// are cached.
	if !a.read.CacheVariant("customers", a.baseCurrency) {
		doc, err := render()
		return rendered(doc), notFound(err, domain.ErrCustomerNotFound, id)
	}
	doc, err := a.read.CachedDocument("customers", id, render)
	return rendered(doc), notFound(err, domain.ErrCustomerNotFound, id)
}

// GET /v1/customers?sort=lifetime_value&limit=&cursor=: highest lifetime value first.
func (a *API) customers(ctx context.Context, _ *http.Request, q query) (any, error) {
	if _, err := q.oneOf("sort", "lifetime_value"); err != nil {
		return nil, err
	}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	var after *projections.CustomerKey
	if raw, ok := q.get("cursor"); ok {
		parts, err := decodeKey(customerCursor, raw, 2)
		if err != nil {
			return nil, err
		}
		value, ok := new(big.Int).SetString(parts[0], 10)
		if !ok {
			return nil, badCursor
		}
		amount, err := projections.AmountFromBig(value)
		if err != nil {
			return nil, badCursor
		}
		after = &projections.CustomerKey{LifetimeValue: amount, CustomerID: parts[1]}
	}
	items, next, err := a.read.CustomersByLifetimeValue(ctx, a.baseCurrency, limit, after)
	if err != nil {
		return nil, err
	}
	page := Page[projections.Customer]{Items: items}
	if next != nil {
		c := encodeKey(customerCursor, next.LifetimeValue.String(), next.CustomerID)
		page.NextCursor = &c
	}
	return page, nil
}

// GET /v1/inventory/{sku}[?as_of=]
func (a *API) stockLevel(ctx context.Context, r *http.Request, q query) (any, error) {
	sku, err := pathID(r, "sku")
	if err != nil {
		return nil, err
	}
	at, asOf, err := q.asOf()
	if err != nil {
		return nil, err
	}
	if asOf {
		level, err := projections.StockLevelAsOf(ctx, a.events, sku, at)
		return level, notFoundAsOf(err, domain.ErrSKUNotFound, sku, at)
	}
	doc, err := a.read.CachedDocument("inventory", sku, func() ([]byte, error) {
		level, err := a.read.StockLevel(ctx, sku)
		if err != nil {
			return nil, err
		}
		return render(level)
	})
	return rendered(doc), notFound(err, domain.ErrSKUNotFound, sku)
}

// GET /v1/inventory?low_stock=&limit=&cursor=: SKUs in order, all or only those that are
// (true) or are not (false) low on stock.
func (a *API) inventory(ctx context.Context, _ *http.Request, q query) (any, error) {
	var (
		f   projections.StockFilter
		err error
	)
	if raw, ok := q.get("low_stock"); ok {
		b, err := strconv.ParseBool(raw)
		if err != nil || (raw != "true" && raw != "false") {
			return nil, httpx.BadRequest("parameter low_stock must be true or false, got %q", raw)
		}
		f.LowStock = &b
	}
	if f.Limit, err = q.limit(); err != nil {
		return nil, err
	}
	if raw, ok := q.get("cursor"); ok {
		parts, err := decodeKey(stockCursor, raw, 1)
		if err != nil {
			return nil, err
		}
		f.AfterSKU = parts[0]
	}
	items, next, err := a.read.StockLevels(ctx, f)
	if err != nil {
		return nil, err
	}
	page := Page[projections.StockLevel]{Items: items}
	if next != nil {
		c := encodeKey(stockCursor, *next)
		page.NextCursor = &c
	}
	return page, nil
}

// GET /v1/purchase-orders?sku=&status=&limit=&cursor=: most recently raised first.
func (a *API) purchaseOrders(ctx context.Context, _ *http.Request, q query) (any, error) {
	var (
		f   projections.PurchaseOrderFilter
		err error
	)
	if f.SKU, err = q.idParam("sku"); err != nil {
		return nil, err
	}
	if f.Status, err = q.oneOf("status", projections.PurchaseOrderOpen, projections.PurchaseOrderReceived); err != nil {
		return nil, err
	}
	if f.Limit, err = q.limit(); err != nil {
		return nil, err
	}
	if raw, ok := q.get("cursor"); ok {
		at, id, err := decodeCursor(purchaseOrderCursor, raw)
		if err != nil {
			return nil, err
		}
		f.After = &projections.PurchaseOrderKey{RaisedAt: at, PurchaseOrderID: id}
	}
	items, next, err := a.read.PurchaseOrders(ctx, f)
	if err != nil {
		return nil, err
	}
	page := Page[projections.PurchaseOrder]{Items: items}
	if next != nil {
		c := encodeCursor(purchaseOrderCursor, next.RaisedAt, next.PurchaseOrderID)
		page.NextCursor = &c
	}
	return page, nil
}

// period reads ?from= and ?to=. A date (2025-03-01) stands for that whole UTC day: from its
// start for from, to its end for to. A date-time (RFC 3339) is exact: from includes it, to
// does not. An absent bound is open.
func (q query) period() (projections.Period, error) {
	var p projections.Period
	for _, bound := range []struct {
		name  string
		dst   *time.Time
		isEnd bool
	}{{"from", &p.From, false}, {"to", &p.To, true}} {
		raw, ok := q.get(bound.name)
		if !ok {
			continue
		}
		if day, err := time.Parse(time.DateOnly, raw); err == nil {
			if bound.isEnd {
				day = day.AddDate(0, 0, 1)
			}
			*bound.dst = day
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return p, httpx.BadRequest("parameter %s must be a date (2025-03-01) or an RFC 3339 time (2025-03-01T09:30:00Z), got %q", bound.name, raw)
		}
		*bound.dst = t.UTC()
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		return p, httpx.BadRequest("parameter from must be before to")
	}
	return p, nil
}

// currency reads ?currency=, the base currency when absent. Any three capital letters are
// taken, so that books in a code an older version accepted can still be read; a currency the
// books do not hold answers zeros.
func (a *API) currency(q query) (string, error) {
	raw, ok := q.get("currency")
	if !ok {
		return a.baseCurrency, nil
	}
	if !currencyPattern.MatchString(raw) {
		return "", httpx.BadRequest("parameter currency must be an ISO 4217 code such as EUR, got %q", raw)
	}
	return raw, nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// closingBound reads a bound of the books: see projections.ParseBooksBound.
func (q query) closingBound(name string, isEnd bool) (time.Time, error) {
	raw, ok := q.get(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := projections.ParseBooksBound(raw, isEnd)
	if err != nil {
		return time.Time{}, httpx.BadRequest("parameter %s: %v", name, err)
	}
	return t, nil
}

// GET /v1/sales/summary?currency=&from=&to=
func (a *API) salesSummary(ctx context.Context, _ *http.Request, q query) (any, error) {
	currency, err := a.currency(q)
	if err != nil {
		return nil, err
	}
	p, err := q.period()
	if err != nil {
		return nil, err
	}
	return a.read.SalesSummary(ctx, currency, p)
}

// GET /v1/sales/daily?currency=&from=&to=: UTC days oldest first; days without sales are
// left out.
func (a *API) salesDaily(ctx context.Context, _ *http.Request, q query) (any, error) {
	currency, err := a.currency(q)
	if err != nil {
		return nil, err
	}
	p, err := q.period()
	if err != nil {
		return nil, err
	}
	days, err := a.read.SalesDaily(ctx, currency, p)
	return struct {
		Currency string                 `json:"currency"`
		Days     []projections.SalesDay `json:"days"`
	}{currency, days}, err
}

// GET /v1/ledger/trial-balance?currency=&to=
func (a *API) trialBalance(ctx context.Context, _ *http.Request, q query) (any, error) {
	currency, err := a.currency(q)
	if err != nil {
		return nil, err
	}
	to, err := q.closingBound("to", true)
	if err != nil {
		return nil, err
	}
	return a.read.TrialBalance(ctx, currency, to)
}

// GET /v1/ledger/currencies: the currencies the books hold.
func (a *API) ledgerCurrencies(ctx context.Context, _ *http.Request, _ query) (any, error) {
	items, err := a.read.LedgerCurrencies(ctx)
	return List[string]{Items: items}, err
}

// GET /v1/ledger/journal?currency=&from=&to=&format=journal|csv
func (a *API) journal(_ context.Context, _ *http.Request, q query) (any, error) {
	var (
		f   projections.JournalFilter
		err error
	)
	if f.Currency, err = a.currency(q); err != nil {
		return nil, err
	}
	if f.From, err = q.closingBound("from", false); err != nil {
		return nil, err
	}
	if f.To, err = q.closingBound("to", true); err != nil {
		return nil, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		return nil, httpx.BadRequest("parameter from must not be after to")
	}
	format, err := q.oneOf("format", projections.JournalText, projections.JournalCSV)
	if err != nil {
		return nil, err
	}
	contentType := "text/plain; charset=utf-8"
	if format == projections.JournalCSV {
		contentType = "text/csv; charset=utf-8"
	} else {
		format = projections.JournalText
	}
	return streamed{contentType: contentType, write: func(ctx context.Context, w io.Writer) error {
		return a.read.WriteJournal(ctx, w, f, format)
	}}, nil
}

// GET /v1/ledger/entries?order_id=&limit=&cursor=: oldest posting first.
func (a *API) ledgerEntries(ctx context.Context, _ *http.Request, q query) (any, error) {
	var (
		f   projections.LedgerFilter
		err error
	)
	if f.OrderID, err = q.idParam("order_id"); err != nil {
		return nil, err
	}
	if _, given := q.get("currency"); given {
		if f.Currency, err = a.currency(q); err != nil {
			return nil, err
		}
	}
	if f.Limit, err = q.limit(); err != nil {
		return nil, err
	}
	if raw, ok := q.get("cursor"); ok {
		at, id, err := decodeCursor(ledgerCursor, raw)
		if err != nil {
			return nil, err
		}
		f.After = &projections.LedgerKey{PostedAt: at, EntryID: id}
	}
	items, next, err := a.read.LedgerEntries(ctx, f)
	if err != nil {
		return nil, err
	}
	page := Page[projections.LedgerEntry]{Items: items}
	if next != nil {
		c := encodeCursor(ledgerCursor, next.PostedAt, next.EntryID)
		page.NextCursor = &c
	}
	return page, nil
}
