package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/client"
)

// Config says which server to drive and how much.
type Config struct {
	// BaseURL is the server's, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Orders is how many orders to drive through the cycle (default 50).
	Orders int
	// Concurrency is how many orders are driven at once (default 8).
	Concurrency int
	// Seed makes the choices (customers, lines, fates) repeatable; 0 picks one from the clock.
	Seed uint64
	// Prefix starts every identifier the run creates, so runs against one server do not
	// collide (default "demo-" and the time in base 36).
	Prefix string
	// Wait bounds how long the demo waits for the server to take one step on its own, such as
	// invoicing a confirmed order (default 60 s).
	Wait time.Duration
	// HTTPClient sends the requests (default: one with a 30 s timeout).
	HTTPClient *http.Client
	// Token is sent as a bearer token when the server has tokens on: the demo seeds stock,
	// customers and orders and receives purchase orders, which takes an admin token.
	Token string
	// Out receives the summary; nil discards it.
	Out io.Writer
	// Progress receives a progress bar; nil shows none.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Orders <= 0 {
		c.Orders = 50
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Prefix == "" {
		c.Prefix = "demo-" + strconv.FormatInt(time.Now().Unix(), 36)
	}
	if c.Wait <= 0 {
		c.Wait = 60 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Run drives cfg.Orders orders through the server at cfg.BaseURL, prints the summary to
// cfg.Out and returns it. It stops at the first answer it did not expect, naming the request.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg = cfg.withDefaults()
	if _, err := url.ParseRequestURI(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("demo: base URL %q: %w", cfg.BaseURL, err)
	}
	started := time.Now()
	d := &driver{c: client.New(cfg.BaseURL, client.WithHTTPClient(cfg.HTTPClient), client.WithToken(cfg.Token), client.WithActor("demo")), cfg: cfg}
	plan := newPlan(cfg.Prefix, cfg.Orders, newRand(cfg.Seed))

	if err := d.seed(ctx, plan); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	supplierDone := make(chan struct{})
	var supplier sync.WaitGroup
	supplier.Add(1)
	go func() {
		defer supplier.Done()
		if err := d.supply(ctx, plan, supplierDone); err != nil {
			cancel(err)
		}
	}()

	bar := progressbar.NewOptions(len(plan.orders),
		progressbar.OptionSetWriter(cfg.Progress),
		progressbar.OptionSetDescription("order-to-cash"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(cfg.Progress) }),
	)
	// The orders, cfg.Concurrency at a time; the first that fails stops the others and the
	// supplier.
	orders, octx := errgroup.WithContext(ctx)
	orders.SetLimit(cfg.Concurrency)
	for _, o := range plan.orders {
		if octx.Err() != nil {
			break
		}
		orders.Go(func() error {
			if err := d.drive(octx, o); err != nil {
				return fmt.Errorf("order %s (%s): %w", o.id, o.fate, err)
			}
			_ = bar.Add(1)
			return nil
		})
	}
	if err := orders.Wait(); err != nil {
		cancel(err)
	}
	close(supplierDone)
	supplier.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	_ = bar.Finish()
	if err := d.receiveRest(ctx, plan); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	s, err := d.summarize(ctx, plan)
	if err != nil {
		return nil, fmt.Errorf("demo: summary: %w", err)
	}
	s.Elapsed = time.Since(started)
	s.Print(cfg.Out)
	return s, nil
}

// The plan: what the run creates and what happens to each order.

type product struct {
	sku                         string
	name                        string
	unitPrice                   int64 // cents
	opening                     int64
	reorderPoint, reorderAmount int64
}

type customer struct {
	id, name, email, payment string
}

// demoCurrency is the currency of the demo's orders and of the books its summary shows.
const demoCurrency = "EUR"

// Fates of an order.
const (
	fateComplete    = "paid, shipped and delivered"
	fateReturn      = "delivered, then partly returned and refunded"
	fateCancelEarly = "cancelled as soon as it was allocated"
	fateCancelLate  = "cancelled after it was invoiced"
)

type plannedOrder struct {
	id, customer, channel, payment string
	taxRateBps                     int64
	lines                          []orderLine
	fate                           string
}

type orderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

type plan struct {
	run       string
	products  []product
	customers []customer
	orders    []plannedOrder
}

func (p plan) ours(sku string) bool {
	for _, pr := range p.products {
		if pr.sku == sku {
			return true
		}
	}
	return false
}

func newPlan(run string, orders int, rng *rand.Rand) plan {
	p := plan{run: run}
	for _, c := range []struct {
		name             string
		price            int64
		opening, rp, qty int64
	}{
		{"MUG", 1250, 60, 20, 50},
		{"TEAPOT", 3990, 15, 5, 20},
		{"KETTLE", 5900, 8, 4, 12},
		{"SPOON", 350, 120, 30, 100},
		{"TRAY", 2200, 25, 8, 20},
		{"CANDLE", 890, 40, 10, 40},
	} {
		p.products = append(p.products, product{sku: run + "-" + c.name, name: c.name, unitPrice: c.price, opening: c.opening, reorderPoint: c.rp, reorderAmount: c.qty})
	}
	for i, name := range []string{"Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson", "Frances Allen", "Donald Knuth"} {
		payment := []string{"card", "invoice", "cash", "bank_transfer"}[i%4]
		id := fmt.Sprintf("%s-c%d", run, i+1)
		p.customers = append(p.customers, customer{id: id, name: name, email: fmt.Sprintf("c%d@%s.example", i+1, run), payment: payment})
	}
	channels := []string{"web", "web", "store", "phone"}
	taxes := []int64{2000, 2000, 700, 0}
	for i := range orders {
		c := p.customers[rng.IntN(len(p.customers))]
		o := plannedOrder{
			id: fmt.Sprintf("%s-o%03d", run, i+1), customer: c.id, payment: c.payment,
			channel: channels[rng.IntN(len(channels))], taxRateBps: taxes[rng.IntN(len(taxes))],
		}
		for _, k := range rng.Perm(len(p.products))[:1+rng.IntN(3)] {
			pr := p.products[k]
			quantity := int64(1 + rng.IntN(4))
			if rng.IntN(8) == 0 {
				quantity = pr.opening + 1 + int64(rng.IntN(5)) // more than the opening stock: backordered
			}
			o.lines = append(o.lines, orderLine{SKU: pr.sku, Quantity: quantity, UnitPrice: pr.unitPrice})
		}
		switch r := rng.IntN(10); {
		case r == 0:
			o.fate = fateCancelEarly
		case r == 1:
			o.fate = fateCancelLate
		case r <= 3:
			o.fate = fateReturn
		default:
			o.fate = fateComplete
		}
		p.orders = append(p.orders, o)
	}
	return p
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed>>1|1)) }

// driver runs the plan against the server.
type driver struct {
	c   *client.Client
	cfg Config
}

// seed receives the opening stock, sets the replenishment policies and registers customers.
func (d *driver) seed(ctx context.Context, p plan) error {
	for _, pr := range p.products {
		if err := d.post(ctx, "/v1/inventory/"+pr.sku+"/receipts", p.run+"/opening/"+pr.sku, "",
			map[string]any{"quantity": pr.opening, "reference": "opening stock"}, nil); err != nil {
			return fmt.Errorf("demo: seed the catalogue: %w", err)
		}
		if err := d.put(ctx, "/v1/inventory/"+pr.sku+"/replenishment", p.run+"/policy/"+pr.sku,
			map[string]any{"reorder_point": pr.reorderPoint, "reorder_quantity": pr.reorderAmount, "supplier": "Kitchenware Wholesale"}, nil); err != nil {
			return fmt.Errorf("demo: seed the catalogue: %w", err)
		}
	}
	for _, c := range p.customers {
		if err := d.post(ctx, "/v1/customers", p.run+"/customer/"+c.id, "",
			map[string]any{"customer_id": c.id, "name": c.name, "email": c.email, "payment_preference": c.payment}, nil); err != nil {
			return fmt.Errorf("demo: register the customers: %w", err)
		}
	}
	return nil
}

// drive takes one order through its life: each write is the customer's, the shop's or the
// warehouse's; in between, the demo waits for the server to do its part.
func (d *driver) drive(ctx context.Context, o plannedOrder) error {
	key := func(step string) string { return o.id + "/" + step }
	var placed client.Written
	if err := d.post(ctx, "/v1/orders", key("place"), o.id, map[string]any{
		"order_id": o.id, "customer_id": o.customer, "channel": o.channel, "currency": demoCurrency,
		"lines": o.lines, "tax_rate_bps": o.taxRateBps, "payment_method": o.payment,
		"shipping_address": "1 Demo Street, Sampletown",
	}, &placed); err != nil {
		return err
	}
	after := placed.Position
	if _, err := d.await(ctx, o.id, after, "allocation", func(doc client.Order) bool { return doc.Status != "pending" }); err != nil {
		return err
	}
	write := func(step, path string, body any) error {
		var w client.Written
		if err := d.post(ctx, "/v1/orders/"+o.id+path, key(step), o.id, body, &w); err != nil {
			return err
		}
		after = w.Position
		return nil
	}

	if o.fate == fateCancelEarly {
		if err := write("cancel", "/cancellation", map[string]any{"reason": "found it cheaper elsewhere"}); err != nil {
			return err
		}
		_, err := d.await(ctx, o.id, after, "cancellation", func(doc client.Order) bool { return doc.Status == "cancelled" })
		return err
	}
	// A backordered order waits here for the supplier to deliver its purchase order.
	doc, err := d.await(ctx, o.id, after, "confirmation and invoice", func(doc client.Order) bool { return doc.Status == "confirmed" && doc.Invoiced() })
	if err != nil {
		return err
	}
	if o.fate == fateCancelLate {
		if err := write("cancel", "/cancellation", map[string]any{"reason": "ordered by mistake"}); err != nil {
			return err
		}
		_, err := d.await(ctx, o.id, after, "the credit note reversing its invoice", func(doc client.Order) bool { return doc.Status == "cancelled" && len(doc.CreditNotes) > 0 })
		return err
	}
	if err := write("pay", "/payments", map[string]any{"amount": doc.Outstanding, "method": o.payment}); err != nil {
		return err
	}
	if err := write("ship", "/shipments", map[string]any{"carrier": "Parcelforce", "tracking_number": "PF-" + o.id}); err != nil {
		return err
	}
	if err := write("deliver", "/deliveries", map[string]any{}); err != nil {
		return err
	}
	if _, err := d.await(ctx, o.id, after, "completion", func(doc client.Order) bool { return doc.Status == "completed" }); err != nil {
		return err
	}
	if o.fate != fateReturn {
		return nil
	}
	back := o.lines[0]
	if err := write("return", "/returns", map[string]any{"lines": []map[string]any{{"sku": back.SKU, "quantity": 1}}, "reason": "arrived damaged"}); err != nil {
		return err
	}
	doc, err = d.await(ctx, o.id, after, "the credit note for the return", func(doc client.Order) bool { return len(doc.CreditNotes) > 0 && doc.Outstanding < 0 })
	if err != nil {
		return err
	}
	if err := write("refund", "/refunds", map[string]any{"amount": -doc.Outstanding, "reference": "return of one " + back.SKU}); err != nil {
		return err
	}
	_, err = d.await(ctx, o.id, after, "the refund", func(doc client.Order) bool { return doc.Outstanding == 0 })
	return err
}

// await reads the order (including at least position after) until done holds, for at most
// cfg.Wait.
func (d *driver) await(ctx context.Context, id, after, what string, done func(client.Order) bool) (client.Order, error) {
	return d.c.AwaitOrder(ctx, id, after, what, d.cfg.Wait, done)
}

// post and put write with an idempotency key (so that the client may retry them) and a
// correlation ID tying an order's writes together.
func (d *driver) post(ctx context.Context, path, key, correlation string, body, out any) error {
	return d.c.Post(ctx, path, client.Headers{IdempotencyKey: key, CorrelationID: correlation}, body, out)
}

func (d *driver) put(ctx context.Context, path, key string, body, out any) error {
	return d.c.Put(ctx, path, client.Headers{IdempotencyKey: key}, body, out)
}

// purchaseOrder is an item of GET /v1/purchase-orders.
type purchaseOrder struct {
	ID       string `json:"purchase_order_id"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	Status   string `json:"status"`
}

// supply plays the supplier: it delivers every open purchase order for the run's SKUs, until
// done is closed.
func (d *driver) supply(ctx context.Context, p plan, done <-chan struct{}) error {
	for {
		if err := d.deliverOpen(ctx, p); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// purchaseOrders lists every purchase order the query selects, page by page.
func (d *driver) purchaseOrders(ctx context.Context, query url.Values) ([]purchaseOrder, error) {
	var all []purchaseOrder
	q := url.Values{"limit": {"500"}}
	for k, v := range query {
		q[k] = v
	}
	for {
		var page struct {
			Items      []purchaseOrder `json:"items"`
			NextCursor *string         `json:"next_cursor"`
		}
		if err := d.c.Get(ctx, "/v1/purchase-orders", q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == nil {
			return all, nil
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// deliverOpen receives every open purchase order for the run's SKUs.
func (d *driver) deliverOpen(ctx context.Context, p plan) error {
	open, err := d.purchaseOrders(ctx, url.Values{"status": {"open"}})
	if err != nil {
		return fmt.Errorf("supplier: %w", err)
	}
	for _, po := range open {
		if !p.ours(po.SKU) {
			continue
		}
		err := d.post(ctx, "/v1/purchase-orders/"+po.ID+"/receipt", p.run+"/receipt/"+po.ID, "", map[string]any{}, nil)
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
			continue // received already; the read model had not caught up
		}
		if err != nil {
			return fmt.Errorf("supplier: %w", err)
		}
	}
	return nil
}

// receiveRest delivers the purchase orders still open once every order is done — raised to
// bring shelf stock back above its reorder point — until no SKU of the run expects any.
func (d *driver) receiveRest(ctx context.Context, p plan) error {
	deadline := time.Now().Add(d.cfg.Wait)
	for {
		incoming := int64(0)
		for _, pr := range p.products {
			var level StockLevel
			if err := d.c.Get(ctx, "/v1/inventory/"+pr.sku, nil, &level); err != nil {
				return err
			}
			incoming += level.Incoming
		}
		if incoming == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supplier: waited %s for the last purchase orders; %d units still incoming", d.cfg.Wait, incoming)
		}
		if err := d.deliverOpen(ctx, p); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
