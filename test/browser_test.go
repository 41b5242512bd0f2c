package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserPath finds Chromium. Without it the browser tests skip, saying why; under CI=true
// they fail, since .ci/run installs it.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH (chromium, chromium-browser, google-chrome); .ci/run installs Debian's chromium")
	}
	t.Skip("no Chromium on PATH (chromium, chromium-browser, google-chrome): the dashboard's browser tests need one (apt-get install chromium)")
	return ""
}

// browser is one headless Chromium tab that records every request it makes.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	requests []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// The subscription starts the browser and opens the tab; network events are on from then.
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs steps, within a minute.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs an action that answers something, within a minute.
func value[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// elsewhere lists the requests that went anywhere but base.
func (b *browser) elsewhere(base string) (all int, outside []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.requests {
		if !strings.HasPrefix(r, base+"/") && r != base && !strings.HasPrefix(r, "data:") {
			outside = append(outside, r)
		}
	}
	return len(b.requests), outside
}

// runDemo drives the demo against srv: customers, stock and a dozen orders through the cycle.
func runDemo(t *testing.T, srv *server, headers ...string) {
	t.Helper()
	args := []string{"demo", "--url", srv.base, "--orders", "12", "--seed", "16"}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), headers...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("orderledger demo: %v\n%s", err, out)
	}
}

// TestDashboardInBrowser opens every page in a real Chromium over the demo's data: each shows
// it, the order page's timeline and as-of view work, an order placed meanwhile appears on the
// orders page without a reload, and no request leaves the server.
func TestDashboardInBrowser(t *testing.T) {
	b := newBrowser(t)
	srv := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "orderledger.db"))
	runDemo(t, srv)
	var orders struct {
		Items []struct {
			OrderID    string `json:"order_id"`
			CustomerID string `json:"customer_id"`
			Lines      []struct {
				SKU string `json:"sku"`
			} `json:"lines"`
		} `json:"items"`
	}
	if err := json.Unmarshal(srv.getDoc(t, "/v1/orders?limit=5"), &orders); err != nil || len(orders.Items) == 0 {
		t.Fatalf("the demo left no orders (%v)", err)
	}
	first := orders.Items[0]
	shots := os.Getenv("ORDERLEDGER_SCREENSHOTS")

	pages := []struct {
		path, want string
	}{
		{"/", "Orders today"},
		{"/ui/orders", first.OrderID},
		{"/ui/orders/" + first.OrderID, "OrderPlaced.v1"},
		{"/ui/stock", first.Lines[0].SKU},
		{"/ui/purchase-orders", "Purchase orders"},
		{"/ui/customers", first.CustomerID},
		{"/ui/sales", "Day by day"},
		{"/ui/ledger", "accounts_receivable"},
		{"/ui/audit", "Read models"},
	}
	for _, p := range pages {
		b.do(t, "open "+p.path, chromedp.Navigate(srv.base+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		text := value(t, b, "text of "+p.path, chromedp.Text(chromedp.CSS("main")))
		if !strings.Contains(text, p.want) {
			t.Errorf("%s does not show %q:\n%.600s", p.path, p.want, text)
		}
	}

	t.Run("charts are drawn", func(t *testing.T) {
		b.do(t, "overview chart", chromedp.Navigate(srv.base+"/"), chromedp.WaitVisible(chromedp.CSS(".chart .uplot canvas")))
		canvases := value(t, b, "charts", chromedp.Evaluate[int](`document.querySelectorAll(".chart .uplot canvas").length`))
		if canvases == 0 {
			t.Errorf("the overview draws no chart")
		}
		if shots != "" {
			screenshot(t, b, filepath.Join(shots, "dashboard-overview.png"))
		}
	})

	t.Run("order timeline and as-of view", func(t *testing.T) {
		b.do(t, "order page", chromedp.Navigate(srv.base+"/ui/orders/"+first.OrderID), chromedp.WaitVisible(chromedp.CSS("#timeline li")))
		events := value(t, b, "timeline", chromedp.Evaluate[int](`document.querySelectorAll("#timeline li").length`))
		if events < 3 {
			t.Fatalf("the timeline shows %d events", events)
		}
		if shots != "" {
			screenshot(t, b, filepath.Join(shots, "dashboard-order.png"))
		}
		b.do(t, "view as of the first event",
			chromedp.Click(chromedp.CSS("#timeline li:first-child a.asof-link")),
			chromedp.WaitVisible(chromedp.CSS("p.asof")),
		)
		banner := value(t, b, "as-of banner", chromedp.Text(chromedp.CSS("p.asof")))
		status := value(t, b, "status", chromedp.Text(chromedp.CSS("main h1 .status")))
		later := value(t, b, "later events", chromedp.Evaluate[int](`document.querySelectorAll("#timeline li.later").length`))
		if !strings.Contains(banner, "Shown as it was at") || later == 0 || status == "completed" {
			t.Errorf("as of the first event: banner %q, status %q, %d of %d events later", banner, status, later, events)
		}
	})

	if shots != "" {
		b.do(t, "ledger", chromedp.Navigate(srv.base+"/ui/ledger"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		screenshot(t, b, filepath.Join(shots, "dashboard-ledger.png"))
	}

	t.Run("a new order appears without a reload", func(t *testing.T) {
		b.do(t, "orders page, live",
			chromedp.Navigate(srv.base+"/ui/orders"),
			chromedp.WaitVisible(chromedp.CSS(`#live-status[data-state="open"]`)),
		)
		value(t, b, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
		id := fmt.Sprintf("live-%d", time.Now().UnixNano())
		srv.expect(t, 201, "POST", "/v1/orders", map[string]any{
			"order_id": id, "customer_id": first.CustomerID, "channel": "web", "currency": "EUR",
			"lines": []map[string]any{{"sku": first.Lines[0].SKU, "quantity": 1, "unit_price": 800}},
		})
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-order="`+id+`"]`))); err != nil {
			t.Fatalf("order %s did not appear on the orders page within 15 s: %v", id, err)
		}
		if !value(t, b, "still the same page", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
			t.Errorf("the page was reloaded to show the order")
		}
	})

	u, err := url.Parse(srv.base)
	if err != nil {
		t.Fatal(err)
	}
	total, outside := b.elsewhere(u.Scheme + "://" + u.Host)
	if total < len(pages)*4 {
		t.Errorf("only %d requests were counted; the count is not working", total)
	}
	if len(outside) > 0 {
		t.Errorf("the pages made %d requests elsewhere than the server: %v", len(outside), outside)
	}
	t.Logf("%d requests, all to %s", total, srv.base)
}

func screenshot(t *testing.T, b *browser, path string) {
	t.Helper()
	b.do(t, "settle", chromedp.Sleep(300*time.Millisecond))
	png := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// createToken runs `orderledger tokens create` on the store and returns the secret.
func createToken(t *testing.T, events, name, role string) string {
	t.Helper()
	cmd := exec.Command(binary, "tokens", "create", "--events", events, "--name", name, "--role", role)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orderledger tokens create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestDashboardLogin: with tokens on, a page sends the browser to the login form; a token
// opens a session (an HttpOnly, SameSite=Strict cookie) and a 303 to the overview; a viewer
// sees no names; logging out ends the session.
func TestDashboardLogin(t *testing.T) {
	b := newBrowser(t)
	events := "sqlite:" + filepath.Join(t.TempDir(), "orderledger.db")
	admin := createToken(t, events, "admin", "admin")
	viewer := createToken(t, events, "viewer1", "viewer")
	srv := startServer(t, events)
	srv.expect(t, 201, "POST", "/v1/customers", map[string]any{"customer_id": "L-C1", "name": "Ann Lovelace", "email": "ann@example.com"}, "Authorization", "Bearer "+admin)

	b.do(t, "a page without a session", chromedp.Navigate(srv.base+"/ui/customers"), chromedp.WaitVisible(chromedp.CSS("#token")))
	if loc := value(t, b, "location", chromedp.Location()); loc != srv.base+"/ui/login" {
		t.Errorf("without a session /ui/customers went to %s, want %s/ui/login", loc, srv.base)
	}
	b.do(t, "a wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "olt_"+strings.Repeat("x", 43)),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("p.problem")),
	)
	if text := value(t, b, "problem", chromedp.Text(chromedp.CSS("p.problem"))); !strings.Contains(text, "unknown or revoked") {
		t.Errorf("a wrong token says %q", text)
	}
	b.do(t, "log in as a viewer",
		chromedp.SendKeys(chromedp.CSS("#token"), viewer),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("form.session")),
	)
	if loc := value(t, b, "location", chromedp.Location()); loc != srv.base+"/" {
		t.Errorf("after logging in the browser is at %s, want %s/", loc, srv.base)
	}
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cookies.Cookies {
		if c.Name == "orderledger_session" {
			found = true
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie: HttpOnly %v, SameSite %q; want HttpOnly and Strict", c.HTTPOnly, c.SameSite)
			}
		}
	}
	if !found {
		t.Errorf("no session cookie after logging in")
	}
	b.do(t, "customers as a viewer", chromedp.Navigate(srv.base+"/ui/customers"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if text := value(t, b, "customers", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(text, "L-C1") || strings.Contains(text, "Ann Lovelace") || strings.Contains(text, "ann@example.com") {
		t.Errorf("a viewer's customers page:\n%.500s", text)
	}
	b.do(t, "the live feed with the session", chromedp.WaitVisible(chromedp.CSS(`#live-status[data-state="open"]`)))
	b.do(t, "log out",
		chromedp.Click(chromedp.CSS("form.session button")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Navigate(srv.base+"/ui/orders"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	)
}
