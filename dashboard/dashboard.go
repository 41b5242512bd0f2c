package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/commands/automation"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/projections"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Sources are what the dashboard reads.
type Sources struct {
	Read   *projections.ReadStore
	Events eventstore.Store
	// Projections reports this process's projectors; nil when it runs none.
	Projections func() projections.Status
	// Automation reports this process's automation; nil when it runs none.
	Automation func() automation.Status
	// BaseCurrency is the currency the overview's figures are in.
	BaseCurrency string
	// Now is the clock ("today" on the overview); time.Now when nil.
	Now func() time.Time
	// Sessions are the logins of the dashboard; nil: no login (the pages are open to whoever
	// the guard in front lets through).
	Sessions *Sessions
	// Open reports whether open mode holds (no token ever created): no login is needed.
	Open func() bool
	// Allows reports whether role may use a route; nil: every role may use every route.
	Allows func(role access.Role, method, template string) bool
}

// Dashboard serves the pages.
type Dashboard struct {
	src      Sources
	pages    map[string]*template.Template
	log      *slog.Logger
	sessions *Sessions
}

// pageNames are the templates that are whole pages; each is parsed with layout.html.
var pageNames = []string{"overview", "orders", "order", "stock", "purchase-orders", "customers", "sales", "ledger", "audit", "error", "login"}

// pagePaths are the routes of the pages, which people open: without a credential the guard
// sends them to the login page.
var pagePaths = []string{"/", "/ui/orders", "/ui/orders/{id}", "/ui/stock", "/ui/purchase-orders", "/ui/customers",
	"/ui/sales", "/ui/ledger", "/ui/audit", "/ui/audit/verify", "/ui/audit/digest"}

// IsPage reports whether the route template is a page of the dashboard.
func IsPage(template string) bool { return slices.Contains(pagePaths, template) }

// New returns the dashboard over src.
func New(src Sources, log *slog.Logger) *Dashboard {
	if src.Now == nil {
		src.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Dashboard{src: src, pages: map[string]*template.Template{}, log: log, sessions: src.Sessions}
	if d.sessions == nil {
		d.sessions = NewSessions(noLogins{}, src.Now)
	}
	for _, name := range pageNames {
		d.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/shared.html", "templates/"+name+".html"))
	}
	return d
}

// Register mounts the pages and the static assets on r, for GET.
func (d *Dashboard) Register(r *mux.Router) {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	assets := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	r.Handle("/ui/static/{file}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Versioned names (htmx-2.0.8.min.js) never change content; the project's own
		// files change with the binary, so they are revalidated.
		if strings.Contains(mux.Vars(r)["file"], "-") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Del("Content-Security-Policy")
		assets.ServeHTTP(w, r)
	})).Methods(http.MethodGet)
	r.HandleFunc(LoginPath, func(w http.ResponseWriter, r *http.Request) {
		if _, err := parseQuery(r); err != nil {
			d.write(w, r, http.StatusBadRequest, view{Page: "error", Title: "Bad Request", Error: err.Error(), Now: d.src.Now().UTC()})
			return
		}
		d.renderLogin(w, r, http.StatusOK, "")
	}).Methods(http.MethodGet)
	r.HandleFunc(LoginPath, d.login).Methods(http.MethodPost)
	r.HandleFunc("/ui/logout", d.logout).Methods(http.MethodPost)
	for path, h := range map[string]func(context.Context, *http.Request) (string, any, error){
		"/":                   d.overview,
		"/ui/orders":          d.orders,
		"/ui/orders/{id}":     d.order,
		"/ui/stock":           d.stock,
		"/ui/purchase-orders": d.purchaseOrders,
		"/ui/customers":       d.customers,
		"/ui/sales":           d.sales,
		"/ui/ledger":          d.ledger,
		"/ui/audit":           d.audit,
		"/ui/audit/verify":    d.verify,
		"/ui/audit/digest":    d.digest,
	} {
		r.Handle(path, d.page(h)).Methods(http.MethodGet)
	}
}

// view is what every page template gets.
type view struct {
	Page  string // the page's template, and the navigation item shown as current
	Title string
	Path  string // the request's path and query, which a live region fetches again
	Data  any
	Now   time.Time
	Error string
	// User and Role name who is logged in, and CSRF is their session's token for the logout
	// form; all empty without a session.
	User, Role, CSRF string
}

// pagePolicy lets a page load only what this server serves: no request leaves the machine.
// Styles may be set inline because uPlot sizes its canvas through style attributes.
const pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// page answers a page handler's template and data as HTML, or its error as an error page with
// the status the JSON routes would answer.
func (d *Dashboard) page(h func(context.Context, *http.Request) (string, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, data, err := h(r.Context(), r)
		status := http.StatusOK
		v := view{Page: name, Path: r.URL.RequestURI(), Data: data, Now: d.src.Now().UTC()}
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			var code string
			status, code = httpx.Classify(err)
			v.Page, v.Title, v.Error = "error", http.StatusText(status), err.Error()
			if status >= 500 {
				d.log.ErrorContext(r.Context(), "dashboard: page failed", "path", r.URL.Path, "code", code, "err", err)
				v.Error = "the server could not answer this page (" + code + "); its log has the details"
			}
		}
		if t, ok := data.(titled); ok && err == nil {
			v.Title = t.title()
		}
		if p, ok := access.PrincipalFrom(r.Context()); ok {
			if v.CSRF = d.sessions.csrf(r); v.CSRF != "" {
				v.User, v.Role = p.Name, string(p.Role)
			}
		}
		d.write(w, r, status, v)
	})
}

// write renders v with status. "page#fragment" is a part of a page answered alone (the audit
// page's verification and digest).
func (d *Dashboard) write(w http.ResponseWriter, r *http.Request, status int, v view) {
	pageName, target, fragment := strings.Cut(v.Page, "#")
	if !fragment {
		target = "layout.html"
	}
	var body bytes.Buffer
	if err := d.pages[pageName].ExecuteTemplate(&body, target, v); err != nil {
		d.log.ErrorContext(r.Context(), "dashboard: rendering failed", "path", r.URL.Path, "err", err)
		http.Error(w, "rendering the page failed; the server log has the details", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("Vary", "HX-Request")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// noLogins authenticates no token: the dashboard without sessions.
type noLogins struct{}

func (noLogins) Authenticate(context.Context, string) (access.Principal, error) {
	return access.Principal{}, access.ErrUnauthenticated
}

// seesPersonalData reports whether the caller may see customers' personal data: a viewer may
// not. Without a guard in front (no principal) the pages show what the read models hold.
func seesPersonalData(ctx context.Context) bool {
	p, ok := access.PrincipalFrom(ctx)
	return !ok || p.SeesPersonalData()
}

// allows reports whether the caller may use the route method template.
func (d *Dashboard) allows(ctx context.Context, method, template string) bool {
	p, ok := access.PrincipalFrom(ctx)
	return !ok || d.src.Allows == nil || d.src.Allows(p.Role, method, template)
}

// titled is page data that names its page.
type titled interface{ title() string }

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"money":     money,
	"amount":    func(a projections.Amount, currency string) string { return domain.MajorUnits(a.String(), currency) },
	"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"whenms":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"whenp":     whenPtr,
	"instant":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"day":       func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"deref":     func(s *string) string { return derefOr(s, "") },
	"derefInt":  func(p *int64) string { return derefInt(p) },
	"query":     queryWith,
	"statuses":  func() []string { return orderStatuses },
	"channels":  func() []string { return []string{"web", "store", "phone"} },
	"pct":       func(part, whole int64) int64 { return percent(part, whole) },
	"navItems":  func() []navItem { return nav },
	"liveTypes": func() string { return strings.Join(domain.EventTypes(), " ") },
	"dict":      dict,
	"list":      func(items ...string) []string { return items },
}

// navItem is an entry of the navigation bar.
type navItem struct{ Page, Href, Label string }

var nav = []navItem{
	{"overview", "/", "Overview"},
	{"orders", "/ui/orders", "Orders"},
	{"stock", "/ui/stock", "Stock"},
	{"purchase-orders", "/ui/purchase-orders", "Purchase orders"},
	{"customers", "/ui/customers", "Customers"},
	{"sales", "/ui/sales", "Sales"},
	{"ledger", "/ui/ledger", "Ledger"},
	{"audit", "/ui/audit", "Audit"},
}

// dict builds a map from key, value pairs, for a template that takes several values.
func dict(pairs ...any) (map[string]any, error) {
	if len(pairs)%2 != 0 {
		return nil, errors.New("dict takes key, value pairs")
	}
	m := make(map[string]any, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		key, ok := pairs[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", pairs[i])
		}
		m[key] = pairs[i+1]
	}
	return m, nil
}

func money(minor int64, currency string) string { return domain.FormatAmount(minor, currency) }

func whenPtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func derefOr(s *string, or string) string {
	if s == nil {
		return or
	}
	return *s
}

func derefInt(p *int64) string {
	if p == nil {
		return "—"
	}
	return strconv.FormatInt(*p, 10)
}

func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return part * 100 / whole
}

// queryWith returns path with its query's key set to value (removed when value is empty),
// and the cursor dropped unless key is the cursor: a new filter starts at the first page.
func queryWith(path, key, value string) string {
	u, err := url.Parse(path)
	if err != nil {
		return path
	}
	q := u.Query()
	if key != "cursor" {
		q.Del("cursor")
	}
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
	return u.RequestURI()
}

// orderStatuses are the statuses an order may be in, in the order of its life.
var orderStatuses = func() []string {
	var out []string
	for _, s := range []domain.OrderStatus{
		domain.StatusPending, domain.StatusBackordered, domain.StatusConfirmed, domain.StatusShipped,
		domain.StatusDelivered, domain.StatusCompleted, domain.StatusCancelled,
	} {
		out = append(out, string(s))
	}
	return out
}()

// query is a page's query parameters, checked as the JSON routes check theirs.
type query map[string]string

func parseQuery(r *http.Request, allowed ...string) (query, error) {
	q, err := httpx.Query(r.URL.RawQuery, allowed...)
	return query(q), err
}

// oneOf reads an optional parameter that must be one of values; "" is the same as absent,
// as a form's empty choice sends it.
func (q query) oneOf(name string, values ...string) (string, error) {
	raw := q[name]
	if raw == "" {
		return "", nil
	}
	for _, v := range values {
		if raw == v {
			return raw, nil
		}
	}
	return "", httpx.BadRequest("parameter %s must be one of %s, got %q", name, strings.Join(values, ", "), httpx.Clip(raw))
}

// id reads an optional identifier parameter.
func (q query) id(name string) (string, error) {
	raw := strings.TrimSpace(q[name])
	if raw != "" && !domain.ValidReference(raw) {
		return "", httpx.BadRequest("parameter %s must match ^[A-Za-z0-9._-]{1,64}$, got %q", name, httpx.Clip(raw))
	}
	return raw, nil
}

// currency reads ?currency=, the base currency when absent.
func (q query) currency(base string) (string, error) {
	raw := q["currency"]
	if raw == "" {
		return base, nil
	}
	if len(raw) != 3 || strings.ToUpper(raw) != raw || strings.ContainsFunc(raw, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return "", httpx.BadRequest("parameter currency must be an ISO 4217 code such as EUR, got %q", httpx.Clip(raw))
	}
	return raw, nil
}

// Page cursors: the key of the last item shown, as "<key>|<id>", which the next page's query
// carries. Opaque to the user; a cursor that does not parse is a 400 naming the parameter.
func cursor(key, id string) string { return key + "|" + id }

var errCursor = httpx.BadRequest("parameter cursor is not one this page gave out; follow the page's links")

func (q query) cursor() (key, id string, ok bool, err error) {
	raw, given := q["cursor"]
	if !given || raw == "" {
		return "", "", false, nil
	}
	key, id, found := strings.Cut(raw, "|")
	if !found || !domain.ValidReference(id) {
		return "", "", false, errCursor
	}
	return key, id, true, nil
}

func (q query) timeCursor() (*time.Time, string, error) {
	key, id, ok, err := q.cursor()
	if !ok || err != nil {
		return nil, "", err
	}
	t, err := time.Parse(time.RFC3339Nano, key)
	if err != nil {
		return nil, "", errCursor
	}
	return &t, id, nil
}

// pageSize is how many rows a listing shows at once.
const pageSize = 50

// asFloat is an Amount in major units as a float, for a chart's scale only: tables print the
// exact figures.
func asFloat(a projections.Amount, currency string) float64 {
	f, _ := new(big.Float).SetInt(a.Big()).Float64()
	for range domain.CurrencyDigits(currency) {
		f /= 10
	}
	return f
}

// notFound turns the read store's ErrNotFound into the domain's not-found error.
func notFound(err error, sentinel error, id string) error {
	if errors.Is(err, projections.ErrNotFound) {
		return fmt.Errorf("%w: %s", sentinel, id)
	}
	return err
}
