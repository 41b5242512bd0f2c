package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/projections"
)

// Waiter waits until projectors include a position; *projections.Runner is one.
type Waiter interface {
	WaitFor(ctx context.Context, pos eventstore.Position, projectors ...string) error
}

// DefaultAfterTimeout is how long a read waits for ?after= (docs/api.md: at most 10 s).
const DefaultAfterTimeout = 10 * time.Second

// API serves the read routes.
type API struct {
	read         *projections.ReadStore
	events       eventstore.Store
	waiter       Waiter
	afterTimeout time.Duration
	// baseCurrency is the currency a read that takes ?currency= answers in without one, and
	// the one of a customer's lifetime_value and outstanding_balance.
	baseCurrency string
	// seesPersonalData reports whether the caller of a request may see personal data.
	seesPersonalData func(*http.Request) bool
}

// DefaultBaseCurrency is the base currency unless WithBaseCurrency names another.
const DefaultBaseCurrency = "EUR"

// Option configures an API.
type Option func(*API)

// WithAfterTimeout sets how long a read waits for ?after= before answering 504.
func WithAfterTimeout(d time.Duration) Option { return func(a *API) { a.afterTimeout = d } }

// WithPersonalData sets who may see personal data: callers for which sees returns false get
// it as null. By default everyone sees it.
func WithPersonalData(sees func(*http.Request) bool) Option {
	return func(a *API) { a.seesPersonalData = sees }
}

// WithBaseCurrency sets the base currency (serve --base-currency).
func WithBaseCurrency(c string) Option { return func(a *API) { a.baseCurrency = c } }

// New serves the read models of read, the order histories of events, and waits for ?after=
// with waiter.
func New(read *projections.ReadStore, events eventstore.Store, waiter Waiter, opts ...Option) *API {
	a := &API{read: read, events: events, waiter: waiter, afterTimeout: DefaultAfterTimeout, baseCurrency: DefaultBaseCurrency,
		seesPersonalData: func(*http.Request) bool { return true }}
	for _, o := range opts {
		o(a)
	}
	return a
}

// route is a read route: the projector whose read model it reads ("" when it reads the event
// store), the query parameters it takes besides after, and what it answers.
type route struct {
	path      string
	projector string
	params    []string
	answer    func(ctx context.Context, r *http.Request, q query) (any, error)
	// redact, when set, nulls the personal data of the route's JSON answer.
	redact func(body []byte) []byte
}

// Register mounts every read route on r, for GET.
func (a *API) Register(r *mux.Router) {
	for _, rt := range a.routes() {
		r.Handle(rt.path, a.handler(rt)).Methods(http.MethodGet)
	}
}

func (a *API) routes() []route {
	return []route{
		{path: "/v1/orders", projector: "orders", params: []string{"customer_id", "status", "channel", "limit", "cursor"}, answer: a.orders},
		{path: "/v1/orders/{id}", projector: "orders", params: []string{"as_of"}, answer: a.order},
		{path: "/v1/orders/{id}/history", answer: a.history, redact: redactHistory},
		{path: "/v1/customers", projector: "customers", params: []string{"sort", "limit", "cursor"}, answer: a.customers, redact: redactCustomers},
		{path: "/v1/customers/{id}", projector: "customers", answer: a.customer, redact: redactCustomer},
		{path: "/v1/customers/{id}/personal-data", projector: "customers", answer: a.personalData},
		{path: "/v1/inventory", projector: "inventory", params: []string{"low_stock", "limit", "cursor"}, answer: a.inventory},
		{path: "/v1/inventory/{sku}", projector: "inventory", params: []string{"as_of"}, answer: a.stockLevel},
		{path: "/v1/purchase-orders", projector: "inventory", params: []string{"sku", "status", "limit", "cursor"}, answer: a.purchaseOrders},
		{path: "/v1/sales/summary", projector: "sales", params: []string{"currency", "from", "to"}, answer: a.salesSummary},
		{path: "/v1/sales/daily", projector: "sales", params: []string{"currency", "from", "to"}, answer: a.salesDaily},
		{path: "/v1/ledger/trial-balance", projector: "ledger", params: []string{"currency", "to"}, answer: a.trialBalance},
		{path: "/v1/ledger/entries", projector: "ledger", params: []string{"order_id", "currency", "limit", "cursor"}, answer: a.ledgerEntries},
		{path: "/v1/ledger/currencies", projector: "ledger", answer: a.ledgerCurrencies},
		{path: "/v1/ledger/journal", projector: "ledger", params: []string{"currency", "from", "to", "format"}, answer: a.journal},
	}
}

// handler checks the query, waits for ?after=, and answers the route's document as JSON or the
// error as problem+json.
func (a *API) handler(rt route) http.Handler {
	allowed := append([]string{"after"}, rt.params...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.RawQuery, allowed)
		projector := rt.projector
		if _, asOf := q.get("as_of"); asOf {
			// The document comes from the event store, which shows an append as soon as it
			// has answered: ?after= is checked but there is nothing to wait for.
			projector = ""
		}
		if err == nil {
			err = a.waitAfter(r.Context(), q, projector)
		}
		var doc any
		if err == nil {
			doc, err = rt.answer(r.Context(), r, q)
		}
		switch {
		case err != nil && r.Context().Err() != nil:
			// The client has gone: there is no one to answer.
			return
		case err != nil:
			httpx.WriteError(w, r, err)
			return
		}
		if body, ok := doc.(streamed); ok {
			w.Header().Set("Content-Type", body.contentType)
			w.WriteHeader(http.StatusOK)
			// The status is out: a failure from here on can only cut the body short.
			if err := body.write(r.Context(), w); err != nil && r.Context().Err() == nil {
				slog.ErrorContext(r.Context(), "read route: writing the answer failed", "path", r.URL.Path, "err", err)
			}
			return
		}
		if rt.redact != nil && !a.seesPersonalData(r) {
			body, ok := doc.(rendered)
			if !ok {
				if body, err = render(doc); err != nil {
					httpx.WriteError(w, r, err)
					return
				}
			}
			doc = rendered(append(rt.redact(body), '\n'))
		}
		if body, ok := doc.(rendered); ok {
			w.Header()["Content-Type"] = jsonContentType
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, doc)
	})
}

// streamed is an answer that is not JSON, written straight to the response.
type streamed struct {
	contentType string
	write       func(ctx context.Context, w io.Writer) error
}

// rendered is a document already encoded as httpx.WriteJSON would encode it.
type rendered []byte

// render encodes v as httpx.WriteJSON does.
func render(v any) (rendered, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(body, '\n'), nil
}

// jsonContentType is the Content-Type of a rendered document, set without canonicalizing the
// header name on every answer; net/http only reads it.
var jsonContentType = []string{"application/json"}

// waitAfter waits until the projector includes ?after=. A route that reads the event store
// has nothing to wait for: an append is readable once it has answered.
func (a *API) waitAfter(ctx context.Context, q query, projector string) error {
	raw, ok := q.get("after")
	if !ok {
		return nil
	}
	pos, err := eventstore.ParsePosition(raw)
	if err != nil {
		return httpx.BadRequest("parameter after: %v; pass the position a write answered with", err)
	}
	if projector == "" {
		return nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, a.afterTimeout)
	defer cancel()
	err = a.waiter.WaitFor(waitCtx, pos, projector)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return httpx.Errorf(http.StatusGatewayTimeout, "timeout",
			"the %s read model did not reach position %s within %s; retry later", projector, pos, a.afterTimeout)
	case errors.Is(err, projections.ErrProjectorStopped):
		return httpx.Errorf(http.StatusServiceUnavailable, "unavailable",
			"the %s read model cannot reach position %s: %v", projector, pos, err)
	}
	return err
}

// query is a request's query parameters, each given at most once.
type query map[string]string

// parseQuery accepts only the named parameters, each at most once.
func parseQuery(raw string, allowed []string) (query, error) {
	if raw == "" {
		// Most reads have no parameters: nothing to parse, and a nil query reads as empty.
		return nil, nil
	}
	q, err := httpx.Query(raw, allowed...)
	return query(q), err
}

func (q query) get(name string) (string, bool) {
	v, ok := q[name]
	return v, ok
}

// Limits of the list routes.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// limit reads ?limit=, 1..500, default 50.
func (q query) limit() (int, error) {
	raw, ok := q.get("limit")
	if !ok {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || strconv.Itoa(n) != raw || n < 1 || n > maxLimit {
		return 0, httpx.BadRequest("parameter limit must be an integer from 1 to %d, got %q", maxLimit, raw)
	}
	return n, nil
}

// asOf reads ?as_of=, an RFC 3339 time in UTC or with an offset. A "+" left unencoded in a
// query string arrives as a space, which RFC 3339 does not allow: the 400 says to send %2B.
func (q query) asOf() (time.Time, bool, error) {
	raw, ok := q.get("as_of")
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil && strings.Contains(raw, " ") {
		return time.Time{}, false, httpx.BadRequest("parameter as_of must be an RFC 3339 time; got a space, which is how an unencoded + arrives: send the offset's + as %%2B (2025-03-01T10:30:00%%2B01:00)")
	}
	if err != nil {
		return time.Time{}, false, httpx.BadRequest("parameter as_of must be an RFC 3339 time such as 2025-03-01T09:30:00Z or 2025-03-01T10:30:00%%2B01:00, got %q", httpx.Clip(raw))
	}
	return t, true, nil
}

// oneOf reads an optional parameter that must be one of values.
func (q query) oneOf(name string, values ...string) (string, error) {
	raw, ok := q.get(name)
	if !ok {
		return "", nil
	}
	if !slices.Contains(values, raw) {
		return "", httpx.BadRequest("parameter %s must be one of %s, got %q", name, strings.Join(values, ", "), raw)
	}
	return raw, nil
}
