package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/dashboard"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// newDashboard serves the pages over the scripted history, as recorded (March 2025), with the
// clock on the 3rd.
func newDashboard(t *testing.T) *mux.Router {
	t.Helper()
	env := projectionstest.OpenSQLite(t)
	head := projectionstest.AppendAsRecorded(t, env.Store, projectionstest.ScriptedHistory())
	runner := projectionstest.StartRunner(t, env)
	projectionstest.CatchUp(t, runner, head)
	router := mux.NewRouter()
	dashboard.New(dashboard.Sources{
		Read: env.Read, Events: env.Store, Projections: runner.Status, BaseCurrency: "USD",
		Now: func() time.Time { return projectionstest.Day(3, 18, 0) },
	}, nil).Register(router)
	return router
}

func get(t *testing.T, router http.Handler, target string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusNotFound && !strings.HasPrefix(ct, "text/") {
		t.Errorf("GET %s: content type %q", target, ct)
	}
	return w.Code, w.Body.String()
}

// TestPagesShowTheReadModels: every page answers 200 with the figures of the scripted history.
func TestPagesShowTheReadModels(t *testing.T) {
	router := newDashboard(t)
	for _, c := range []struct {
		target string
		want   []string
	}{
		{"/", []string{"Orders today", `data-testid="orders-today">1<`, "order-3", "SKU-B", "Read models", "Sales by day"}},
		{"/ui/orders", []string{"order-1", "order-2", "order-3", "38.50 USD", "8.40 EUR"}},
		{"/ui/orders?status=confirmed", []string{"order-2"}},
		{"/ui/orders?customer_id=bob", []string{"order-2"}},
		{"/ui/orders/order-1", []string{"Order order-1", "OrderPlaced.v1", "Timeline", "INV-1", "view as of this"}},
		{"/ui/stock", []string{"Low on stock", "SKU-A", "SKU-B", "Bolt", "PO-SKU-B-1"}},
		{"/ui/purchase-orders", []string{"PO-SKU-A-1", "PO-SKU-B-1", "received", "open"}},
		{"/ui/purchase-orders?status=open", []string{"PO-SKU-B-1"}},
		{"/ui/customers", []string{"alice", "Alice Archer", "27.50", "bob"}},
		{"/ui/sales", []string{"in USD", "2025-03-01", "38.50"}},
		{"/ui/sales?currency=EUR", []string{"in EUR", "8.40"}},
		{"/ui/ledger", []string{"Trial balance in EUR<", "Trial balance in USD", "accounts_receivable", "124.00", "/v1/ledger/journal?currency=USD", "balances"}},
		{"/ui/audit", []string{"Verify now", "Take a digest", "inventory"}},
		{"/ui/audit/verify", []string{`data-testid="verify-ok"`}},
		{"/ui/audit/digest", []string{"oldigest1:"}},
	} {
		code, body := get(t, router, c.target)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", c.target, code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in the page", c.target, w)
			}
		}
	}
	if _, body := get(t, router, "/ui/ledger"); strings.Count(body, "Trial balance in ") != 2 {
		t.Errorf("/ui/ledger shows %d trial balances, want EUR and USD", strings.Count(body, "Trial balance in "))
	}
	// Filters keep out what they do not select.
	if _, body := get(t, router, "/ui/orders?status=confirmed"); strings.Contains(body, `href="/ui/orders/order-1"`) {
		t.Errorf("/ui/orders?status=confirmed lists order-1")
	}
}

// TestOrderAsOf: each timeline link shows the order as it was then; the events after the
// instant are marked as later.
func TestOrderAsOf(t *testing.T) {
	router := newDashboard(t)
	_, body := get(t, router, "/ui/orders/order-1")
	links := regexp.MustCompile(`href="(/ui/orders/order-1\?as_of=[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(links) < 3 {
		t.Fatalf("%d as-of links on the order page", len(links))
	}
	code, first := get(t, router, strings.ReplaceAll(links[0][1], "&#43;", "+"))
	if code != http.StatusOK || !strings.Contains(first, "Shown as it was at") || strings.Contains(first, `status s-completed">completed`) {
		t.Fatalf("as of the first event: %d\n%s", code, first[strings.Index(first, "<h1"):][:300])
	}
	// Several events share the first instant; the ones after it are later.
	if later := strings.Count(first, `class="later"`); later == 0 || later >= len(links) {
		t.Errorf("as of the first event, %d of %d events are marked later", later, len(links))
	}
	if _, now := get(t, router, "/ui/orders/order-1"); strings.Contains(now, `class="later"`) || strings.Contains(now, "Shown as it was at") {
		t.Errorf("the order now shows events as later")
	}
	code, before := get(t, router, "/ui/orders/order-1?as_of=2025-02-01T00:00")
	if code != http.StatusNotFound || !strings.Contains(before, "did not exist yet") {
		t.Errorf("as of before it was placed: %d, want 404 saying it did not exist yet", code)
	}
}

// TestBadParameters: a malformed or unknown parameter is a 400 page naming it, an unknown
// order a 404 page.
func TestBadParameters(t *testing.T) {
	router := newDashboard(t)
	for target, param := range map[string]string{
		"/ui/orders?status=lost":               "status",
		"/ui/orders?channel=fax":               "channel",
		"/ui/orders?customer_id=a%20b":         "customer_id",
		"/ui/orders?cursor=nonsense":           "cursor",
		"/ui/orders?colour=red":                "colour",
		"/ui/orders/order-1?as_of=yesterday":   "as_of",
		"/ui/orders/bad!id":                    "id",
		"/ui/customers?cursor=ten|alice":       "cursor",
		"/ui/stock?cursor=sku|a%20b":           "cursor",
		"/ui/purchase-orders?status=closed":    "status",
		"/ui/purchase-orders?cursor=x|PO-1":    "cursor",
		"/ui/sales?currency=euro":              "currency",
		"/?debug=1":                            "debug",
		"/ui/ledger?currency=EUR":              "currency",
		"/ui/orders?status=open&status=closed": "status",
	} {
		code, body := get(t, router, target)
		if code != http.StatusBadRequest || !strings.Contains(body, param) {
			t.Errorf("GET %s: %d, want a 400 page naming %s:\n%s", target, code, param, body)
		}
	}
	if code, _ := get(t, router, "/ui/orders/order-9"); code != http.StatusNotFound {
		t.Errorf("GET /ui/orders/order-9: %d, want 404", code)
	}
}

// TestAssetsAreEmbedded: the pages name only assets this server serves, and it serves them.
func TestAssetsAreEmbedded(t *testing.T) {
	router := newDashboard(t)
	_, body := get(t, router, "/")
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(body, -1)
	assets := 0
	for _, ref := range refs {
		u := ref[1]
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("the overview refers to %s, which is not on this server", u)
			continue
		}
		if strings.HasPrefix(u, "/ui/static/") {
			assets++
			if code, _ := get(t, router, u); code != http.StatusOK {
				t.Errorf("GET %s: %d", u, code)
			}
		}
	}
	if assets < 4 {
		t.Errorf("the overview loads %d assets, want htmx, uPlot, its stylesheet and the page script", assets)
	}
	for _, licence := range []string{"/ui/static/htmx-2.0.8.LICENSE", "/ui/static/uPlot-1.6.32.LICENSE"} {
		if code, body := get(t, router, licence); code != http.StatusOK || !strings.Contains(body, "Permission is hereby granted") && !strings.Contains(body, "BSD") {
			t.Errorf("GET %s: %d %.80s", licence, code, body)
		}
	}
}
