package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderledger/orderledger/client"
	"github.com/orderledger/orderledger/domain"
)

// The seeded business: customers and SKUs with stock enough that no order of a run waits for
// a purchase order, and no replenishment policy, so none is raised.
const (
	seedCustomers = 500
	seedSKUs      = 100
	seedStock     = 100_000_000
)

// settleTimeout bounds the wait for the projectors and the automation to work off what a
// figure left them; it only runs out when one of them is stuck.
const settleTimeout = 5 * time.Minute

// awaitTimeout bounds how long order_to_cash waits for the server to take one step on its own.
const awaitTimeout = time.Minute

// orderToCashClients is how many order_to_cash clients there are per --clients.
const orderToCashClients = 4

// serveStage starts a server on the stage's stores, seeds it, and measures the figures that
// go through its HTTP routes. The order intake baseline inserts into the database of intake.
func (r *run) serveStage(ctx context.Context, st, intake Stores) error {
	r.logf("starting a server with every role on the scratch stores")
	srv, err := r.cfg.StartServer(ctx, st)
	if err != nil {
		return fmt.Errorf("bench: start a server on the scratch stores: %w", err)
	}
	defer srv.Stop()
	h := newHTTPLoad(srv.URL, r.cfg.Clients).as(srv.Token)
	defer h.close()

	r.logf("seeding %d customers and %d SKUs", seedCustomers, seedSKUs)
	if err := h.seed(ctx); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	if err := r.settle(ctx, srv); err != nil {
		return err
	}
	turnLength := r.cfg.Duration / (2 * turns)

	if r.any(OrderIntake, ProjectionLagP99) {
		if err := r.orderIntake(ctx, h, intake, turnLength); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	if r.selected[OrderToCash] {
		// Each client waits for the server at two steps of its cycle, so one client's cycles
		// say how long a cycle takes; enough of them at once say how many the server completes.
		cycling := newHTTPLoad(srv.URL, orderToCashClients*r.cfg.Clients).as(srv.Token)
		defer cycling.close()
		r.logf("measuring %s: %d clients each taking one order at a time from placement to completion (%s)", OrderToCash, cycling.clients, r.cfg.Duration)
		cycles, err := cycling.orderToCash(ctx, r.cfg.Duration, srv.Commits)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", OrderToCash, err)
		}
		if err := errors.Join(
			r.add(OrderToCash, cycles.perSecond, "cycles/s", 0),
			r.add(OrderToCashCommits, cycles.commitsPerSecond, "commits/s", 0),
			r.add(CommitsPerCycle, cycles.commitsPerSecond/cycles.perSecond, "commits/cycle", 0),
		); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	if r.selected[SustainedOrders] {
		guess := 200.0
		for _, res := range r.results {
			if res.Name == OrderIntake {
				guess = 0.8 * res.Value
			}
		}
		r.logf("measuring %s: the highest fixed arrival rate of %d-line orders over %d Zipf-skewed SKUs held with placed→invoiced p99 ≤ %s", SustainedOrders, sustainedLines, zipfSKUs, sustainedP99)
		t, err := r.sustainedOrders(ctx, srv, guess)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", SustainedOrders, err)
		}
		held := t.rate
		if t.failure != "" {
			held = 0
		}
		if err := errors.Join(
			r.add(SustainedOrders, held, "orders/s", 0),
			r.add(PlacedToInvoicedP50, ms(t.p50), "ms", 0),
			r.add(PlacedToInvoicedP99, ms(t.p99), "ms", 0),
		); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	if r.selected[StreamFanout] {
		if err := r.streamFanout(ctx, h, turnLength); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	for _, read := range []struct {
		name, p99, path string
		pick            func() string
	}{
		{ReadCustomer, ReadCustomerP99, "/v1/customers/", func() string { return customerID(rand.IntN(seedCustomers)) }},
		{ReadInventory, ReadInventoryP99, "/v1/inventory/", func() string { return skuID(rand.IntN(seedSKUs)) }},
	} {
		if !r.selected[read.name] {
			continue
		}
		r.logf("measuring %s: %d clients reading GET %s{id}, beside GET /healthz (%s)", read.name, r.cfg.Clients, read.path, r.cfg.Duration)
		latency := &samples{}
		value, baseline, err := alternate(ctx, r.cfg.Duration,
			latency.dropWarmUp(crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
				start := time.Now()
				_, err := h.do(ctx, http.MethodGet, read.path+read.pick(), nil)
				latency.add(time.Since(start))
				return err
			})),
			crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
				_, err := h.do(ctx, http.MethodGet, "/healthz", nil)
				return err
			}))
		if err != nil {
			return fmt.Errorf("bench: %s: %w", read.name, err)
		}
		if err := errors.Join(r.add(read.name, value, "requests/s", baseline),
			r.add(read.p99, ms(latency.percentile(0.99)), "ms", 0)); err != nil {
			return err
		}
	}
	return nil
}

// orderIntake measures POST /v1/orders from the clients beside one-row INSERT transactions
// from as many clients into raw_events, in the database of intake, where no server follows:
// the rate at which the database takes the smallest write an order could be. While the
// clients post, one more posts an order now and then and reads it back with ?after= its
// position, which the server answers once the projectors include it: projection_lag is the
// time from the write's answer to the read's, under the full order intake load.
func (r *run) orderIntake(ctx context.Context, h *httpLoad, intake Stores, turnLength time.Duration) error {
	latency, lag := &samples{}, &samples{}
	api := lag.dropWarmUp(latency.dropWarmUp(h.sampleLag(lag, crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
		start := time.Now()
		_, err := h.placeOrder(ctx)
		latency.add(time.Since(start))
		return err
	}))))
	var value, baseline float64
	if r.selected[OrderIntake] {
		base, err := openIntakeRaw(ctx, intake, r.cfg.Clients+2)
		if err != nil {
			return fmt.Errorf("bench: open the order intake baseline's table: %w", err)
		}
		if base != nil {
			defer base.close()
		}
		r.logf("measuring %s and %s: %d clients posting orders, beside one-row INSERT transactions from as many clients (%s)", OrderIntake, ProjectionLagP99, r.cfg.Clients, r.cfg.Duration)
		value, baseline, err = r.withBaseline(ctx, api, base, func(raw raw) turn {
			return crew(r.cfg.Clients, turnLength, func(ctx context.Context, c int, n int64) error {
				return raw.insertOne(ctx, "order-intake"+strconv.Itoa(c), n, orderEvent(c, n))
			})
		})
		if err != nil {
			return fmt.Errorf("bench: %s: %w", OrderIntake, err)
		}
	} else {
		r.logf("measuring %s: %d clients posting orders (%s)", ProjectionLagP99, r.cfg.Clients, r.cfg.Duration)
		if _, err := only(ctx, r.cfg.Duration, api); err != nil {
			return fmt.Errorf("bench: %s: %w", ProjectionLagP99, err)
		}
	}
	if timedOut := lag.count(func(d time.Duration) bool { return d >= lagTimeout }); timedOut > 0 {
		r.logf("%s: %d of %d reads with ?after= were answered 504 after %s: the projectors fell that far behind; each counts as %s", ProjectionLagP99, timedOut, lag.len(), lagTimeout, lagTimeout)
	}
	var results []error
	if r.selected[OrderIntake] {
		results = append(results, r.add(OrderIntake, value, "orders/s", baseline),
			r.add(OrderIntakeP50, ms(latency.percentile(0.5)), "ms", 0),
			r.add(OrderIntakeP99, ms(latency.percentile(0.99)), "ms", 0))
	}
	if r.selected[ProjectionLagP99] {
		if lag.len() == 0 {
			return fmt.Errorf("bench: %s: no sample", ProjectionLagP99)
		}
		results = append(results, r.add(ProjectionLagP99, ms(lag.percentile(0.99)), "ms", 0),
			r.add(ProjectionLagP50, ms(lag.percentile(0.5)), "ms", 0))
	}
	return errors.Join(results...)
}

// openIntakeRaw opens the order intake baseline's connections to the database of a stage's
// event store, with its raw_events table; the store is opened first, so that its events
// table, which raw_events copies, is there.
func openIntakeRaw(ctx context.Context, st Stores, clients int) (raw, error) {
	store, err := openEvents(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	base, err := openRaw(ctx, st, clients)
	if err != nil || base == nil {
		return nil, err
	}
	if err := base.createTable(ctx); err != nil {
		base.close()
		return nil, err
	}
	return base, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// settle waits until the projectors and the automation have handled the whole log, so that
// what one figure left them to do does not load the next one.
func (r *run) settle(ctx context.Context, srv *Server) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	start, reported := time.Now(), time.Now()
	defer func() {
		if waited := time.Since(start); waited >= time.Second {
			r.logf("the projectors and the automation caught up in %s", waited.Round(100*time.Millisecond))
		}
	}()
	for {
		head, err := srv.Events.Head(ctx)
		if err != nil {
			return fmt.Errorf("bench: settle: %w", err)
		}
		for {
			done, err := srv.CaughtUp(ctx, head)
			if err != nil {
				return fmt.Errorf("bench: the server's projectors or automation stopped: %w", err)
			}
			if done {
				break
			}
			if time.Since(reported) >= progressEvery {
				reported = time.Now()
				r.logf("waiting %s so far for the projectors and the automation to catch up with the log", time.Since(start).Round(time.Second))
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return fmt.Errorf("bench: waiting for the projectors and the automation to catch up: %w", err)
			}
		}
		// The automation appends in answer to what it handles; settled means nothing new.
		again, err := srv.Events.Head(ctx)
		if err != nil {
			return fmt.Errorf("bench: settle: %w", err)
		}
		if again == head {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

const shippingAddress = "12 Rue de la Paix, 75002 Paris"

func customerID(i int) string { return "bench-c" + strconv.Itoa(i) }
func skuID(i int) string      { return "BENCH-" + strconv.Itoa(i) }

// orderLines picks one to three different SKUs, one to three units each.
func orderLines() []domain.OrderLine {
	picked := rand.Perm(seedSKUs)[:1+rand.IntN(3)]
	lines := make([]domain.OrderLine, len(picked))
	for i, k := range picked {
		lines[i] = domain.OrderLine{SKU: skuID(k), Quantity: int64(1 + rand.IntN(3)), UnitPrice: int64(199 + 100*k)}
	}
	return lines
}

// httpLoad is the clients' side: keep-alive connections to the server, one per client,
// through the API's client package with no retries (a failure is a figure's failure).
type httpLoad struct {
	base    string
	clients int
	http    *http.Client
	api     *client.Client
	token   string // the bearer token its requests carry, if any
}

func newHTTPLoad(base string, clients int) *httpLoad {
	transport := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients, // the default, 2, would open a connection per request
		IdleConnTimeout:     time.Minute,
	}
	hc := &http.Client{Transport: transport, Timeout: time.Minute}
	return &httpLoad{base: base, clients: clients, http: hc,
		api: client.New(base, client.WithHTTPClient(hc), client.WithActor("bench"), client.WithRetries(0, 0))}
}

func (h *httpLoad) close() { h.http.CloseIdleConnections() }

// as makes every request carry "Authorization: Bearer token" (none when token is empty).
func (h *httpLoad) as(token string) *httpLoad {
	h.token = token
	h.api = client.New(h.base, client.WithHTTPClient(h.http), client.WithActor("bench"), client.WithToken(token), client.WithRetries(0, 0))
	return h
}

// do sends one request and returns the answer's body; an answer other than 2xx is an error
// that names the request and quotes the problem.
func (h *httpLoad) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	status, answer, err := h.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, status, bytes.TrimSpace(answer[:min(len(answer), 500)]))
	}
	return answer, nil
}

// get sends a GET and returns the answer whatever its status.
func (h *httpLoad) get(ctx context.Context, path string) (int, []byte, error) {
	return h.send(ctx, http.MethodGet, path, nil)
}

func (h *httpLoad) send(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return h.api.Send(ctx, method, path, client.Headers{}, body)
}

func (h *httpLoad) post(ctx context.Context, path string, body any, out any) error {
	return h.api.Post(ctx, path, client.Headers{}, body, out)
}

// seed registers the customers and receives the SKUs' stock, from every client at once.
func (h *httpLoad) seed(ctx context.Context) error {
	return h.parallel(ctx, seedCustomers+seedSKUs, func(ctx context.Context, i int) error {
		if i < seedCustomers {
			id := customerID(i)
			return h.post(ctx, "/v1/customers", map[string]any{
				"customer_id": id, "name": "Bench Customer " + strconv.Itoa(i), "email": id + "@bench.example",
				"payment_preference": "card",
			}, nil)
		}
		return h.post(ctx, "/v1/inventory/"+skuID(i-seedCustomers)+"/receipts", map[string]any{
			"quantity": seedStock, "reference": "bench opening stock",
		}, nil)
	})
}

// placeOrder posts an order like the ones the seeded business takes: on the web, one to three
// lines, tax, a payment method and an address, without an Idempotency-Key.
func (h *httpLoad) placeOrder(ctx context.Context) (client.Written, error) {
	var w client.Written
	err := h.post(ctx, "/v1/orders", map[string]any{
		"customer_id": customerID(rand.IntN(seedCustomers)), "channel": "web", "currency": "EUR",
		"lines": orderLines(), "tax_rate_bps": 2000, "payment_method": "card", "shipping_address": shippingAddress,
	}, &w)
	if err == nil && (w.OrderID == "" || w.Position == "") {
		err = errors.New("POST /v1/orders answered without order_id or position")
	}
	return w, err
}

// await reads the order, including at least position after, until done holds: the server
// reserves, invoices and completes orders on its own, at its own pace.
func (h *httpLoad) await(ctx context.Context, id, after, what string, done func(client.Order) bool) (client.Order, error) {
	return h.api.AwaitOrder(ctx, id, after, what, awaitTimeout, done)
}

// cycle takes one order from placement to completion: place it, wait for the server to
// confirm and invoice it, pay what it owes, ship and deliver it, and wait for the server to
// complete it.
func (h *httpLoad) cycle(ctx context.Context) error {
	placed, err := h.placeOrder(ctx)
	if err != nil {
		return err
	}
	id := placed.OrderID
	doc, err := h.await(ctx, id, placed.Position, "confirmation and invoice", func(d client.Order) bool {
		return d.Status == "confirmed" && d.InvoiceNumber != nil
	})
	if err != nil {
		return err
	}
	path := "/v1/orders/" + id
	var last client.Written
	if err := h.post(ctx, path+"/payments", map[string]any{"amount": doc.Outstanding, "method": "card"}, nil); err != nil {
		return err
	}
	if err := h.post(ctx, path+"/shipments", map[string]any{"carrier": "Bench Parcel", "tracking_number": "BP-" + id}, nil); err != nil {
		return err
	}
	if err := h.post(ctx, path+"/deliveries", map[string]any{}, &last); err != nil {
		return err
	}
	_, err = h.await(ctx, id, last.Position, "completion", func(d client.Order) bool { return d.Status == "completed" })
	return err
}

// cycleRate is what order_to_cash measures: whole cycles per second, and the commits (appends
// of one command's events, the clients' and the automation's) per second over the same time.
type cycleRate struct {
	perSecond, commitsPerSecond float64
}

// orderToCash runs cycles from every client for a ramp-up (not counted: the first cycles all
// start at once) and then d (or until a cycle completes, if d is shorter), and returns the
// cycles completed within d per second, and the server's commits per second then. Cycles
// still running at the end are finished but not counted, so that the figure is the steady
// rate, not one diluted by a tail of ever fewer clients; they are not cut short either, which
// would only have the server log requests that lost their client.
func (h *httpLoad) orderToCash(ctx context.Context, d time.Duration, commits func() (uint64, error)) (cycleRate, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		stop      atomic.Bool
		mu        sync.Mutex
		completed []time.Time
		wg        sync.WaitGroup
	)
	for range h.clients {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				if err := h.cycle(ctx); err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				completed = append(completed, time.Now())
				mu.Unlock()
			}
		})
	}
	within := func(start, end time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, t := range completed {
			if !t.Before(start) && !t.After(end) {
				n++
			}
		}
		return n
	}
	// The ramp-up lasts until as many cycles as clients have completed, so that the cycles
	// counted are not the first ones, all started at once. A sleep cut short means ctx has
	// ended, which the check after the wait reports.
	_ = sleep(ctx, min(d/4, 5*time.Second))
	for within(time.Time{}, time.Now()) < h.clients && sleep(ctx, 10*time.Millisecond) == nil {
	}
	start := time.Now()
	commitsBefore, err := commits()
	if err != nil {
		cancel(err)
	}
	_ = sleep(ctx, d)
	// A duration shorter than a cycle is stretched to the first completion, so that the rate
	// is a count over the time it took, never a zero.
	for within(start, time.Now()) == 0 && sleep(ctx, 10*time.Millisecond) == nil {
	}
	end := time.Now()
	commitsAfter, err := commits()
	if err != nil {
		cancel(err)
	}
	counted := within(start, end)
	stop.Store(true)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return cycleRate{}, err
	}
	seconds := end.Sub(start).Seconds()
	return cycleRate{float64(counted) / seconds, float64(commitsAfter-commitsBefore) / seconds}, nil
}

// lagTimeout is how long the server waits for ?after= before answering 504 (readapi's
// DefaultAfterTimeout): a projection_lag sample that meets it counts as that long.
const lagTimeout = 10 * time.Second

// lagEvery is how often the projection_lag sampler posts an order and reads it back.
const lagEvery = 20 * time.Millisecond

// sampleLag makes a turn that runs t and, beside its clients, one more that posts an order
// every lagEvery and reads it back with ?after= its position; each sample is the time from
// the write's answer to the read's: how long a client waits to see its own write.
func (h *httpLoad) sampleLag(lag *samples, t turn) turn {
	return func(ctx context.Context) (int64, time.Duration, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				placed, err := h.placeOrder(ctx)
				if err != nil {
					cancel(err)
					return
				}
				answered := time.Now()
				status, answer, err := h.get(ctx, "/v1/orders/"+placed.OrderID+"?after="+placed.Position)
				switch {
				case err != nil:
					cancel(err)
					return
				case status == http.StatusGatewayTimeout:
					lag.add(lagTimeout)
				case status != http.StatusOK:
					cancel(fmt.Errorf("GET /v1/orders/%s?after=%s: %d %s", placed.OrderID, placed.Position, status, bytes.TrimSpace(answer[:min(len(answer), 500)])))
					return
				default:
					lag.add(time.Since(answered))
				}
				if sleep(ctx, lagEvery) != nil {
					return
				}
			}
		})
		ops, elapsed, err := t(ctx)
		close(done)
		wg.Wait()
		if cause := context.Cause(ctx); err == nil && cause != nil {
			err = cause
		}
		return ops, elapsed, err
	}
}

// samples collects latencies from many goroutines.
type samples struct {
	mu   sync.Mutex
	list []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.list = append(s.list, d)
	s.mu.Unlock()
}

func (s *samples) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

func (s *samples) count(match func(time.Duration) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.list {
		if match(d) {
			n++
		}
	}
	return n
}

func (s *samples) percentile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return percentile(s.list, q)
}

// dropWarmUp wraps the turn whose operations add to s, so that what its first turn, the
// uncounted warm-up, added is dropped with it.
func (s *samples) dropWarmUp(t turn) turn {
	first := true
	return func(ctx context.Context) (int64, time.Duration, error) {
		ops, elapsed, err := t(ctx)
		if first {
			first = false
			s.mu.Lock()
			s.list = nil
			s.mu.Unlock()
		}
		return ops, elapsed, err
	}
}
