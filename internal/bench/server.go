package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
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

// serveStage starts a server on the stage's stores, seeds it, and measures the figures that
// go through its HTTP routes, then its resident memory. The order intake baseline appends to
// an event store of intake's.
func (r *run) serveStage(ctx context.Context, st, intake Stores) error {
	r.logf("starting a server with every role on the scratch stores")
	srv, err := r.cfg.StartServer(ctx, st)
	if err != nil {
		return fmt.Errorf("bench: start a server on the scratch stores: %w", err)
	}
	defer srv.Stop()
	h := newHTTPLoad(srv.URL, r.cfg.Clients)
	defer h.close()

	r.logf("seeding %d customers and %d SKUs", seedCustomers, seedSKUs)
	if err := h.seed(ctx); err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	if err := r.settle(ctx, srv); err != nil {
		return err
	}
	turnLength := r.cfg.Duration / (2 * turns)

	if r.selected[OrderIntake] {
		if err := r.orderIntake(ctx, h, intake, turnLength); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	if r.selected[OrderToCash] {
		r.logf("measuring %s: %d clients each taking one order at a time from placement to completion (%s)", OrderToCash, r.cfg.Clients, r.cfg.Duration)
		if r.cycleRate, err = h.orderToCash(ctx, r.cfg.Duration); err != nil {
			return fmt.Errorf("bench: %s: %w", OrderToCash, err)
		}
		if err := r.add(OrderToCash, r.cycleRate, "cycles/s", 0); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	if r.selected[ProjectionLagP99] {
		// The load is steady only if the server keeps up with all it sets off: orders placed
		// at the rate it completes whole cycles, which the automation sustains. Faster, the
		// automation falls ever further behind and the lag measured is that of a queue.
		if r.cycleRate == 0 {
			probe := max(r.cfg.Duration/4, time.Second)
			r.logf("measuring how many order-to-cash cycles the server completes, to set projection_lag's load (%s)", probe)
			if r.cycleRate, err = h.orderToCash(ctx, probe); err != nil {
				return fmt.Errorf("bench: %s: %w", ProjectionLagP99, err)
			}
			if err := r.settle(ctx, srv); err != nil {
				return err
			}
		}
		r.logf("measuring %s: orders posted at a steady %.1f/s (the order_to_cash rate), each read back with ?after= its position (%s)", ProjectionLagP99, r.cycleRate, r.cfg.Duration)
		p50, p99, err := h.projectionLag(ctx, r.cycleRate, r.cfg.Duration, r.logf)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", ProjectionLagP99, err)
		}
		if err := errors.Join(r.add(ProjectionLagP99, ms(p99), "ms", 0), r.add(ProjectionLagP50, ms(p50), "ms", 0)); err != nil {
			return err
		}
		if err := r.settle(ctx, srv); err != nil {
			return err
		}
	}

	for _, read := range []struct {
		name, path string
		pick       func() string
	}{
		{ReadCustomer, "/v1/customers/", func() string { return customerID(rand.IntN(seedCustomers)) }},
		{ReadInventory, "/v1/inventory/", func() string { return skuID(rand.IntN(seedSKUs)) }},
	} {
		if !r.selected[read.name] {
			continue
		}
		r.logf("measuring %s: %d clients reading GET %s{id}, beside GET /healthz (%s)", read.name, r.cfg.Clients, read.path, r.cfg.Duration)
		value, baseline, err := alternate(ctx, r.cfg.Duration,
			crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
				_, err := h.do(ctx, http.MethodGet, read.path+read.pick(), nil)
				return err
			}),
			crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
				_, err := h.do(ctx, http.MethodGet, "/healthz", nil)
				return err
			}))
		if err != nil {
			return fmt.Errorf("bench: %s: %w", read.name, err)
		}
		if err := r.add(read.name, value, "requests/s", baseline); err != nil {
			return err
		}
	}

	if r.selected[ServeRSS] {
		rss, err := residentMB()
		if err != nil {
			return fmt.Errorf("bench: %s: %w", ServeRSS, err)
		}
		if err := r.add(ServeRSS, rss, "MB", 0); err != nil {
			return err
		}
	}
	return nil
}

// orderIntake measures POST /v1/orders beside appendPlacedOrder on an event store opened as
// the server's is, with the same DSN, in the same scratch space, but with no server following
// it: the orders the baseline writes, several times as many as the API takes, would otherwise
// bury the server's automation under a backlog that outlasts the figure and loads the next.
func (r *run) orderIntake(ctx context.Context, h *httpLoad, intake Stores, turnLength time.Duration) error {
	store, err := openEvents(ctx, intake)
	if err != nil {
		return fmt.Errorf("bench: open the order intake baseline's event store: %w", err)
	}
	defer store.Close()
	r.logf("measuring %s: %d clients posting orders, beside the same orders appended straight to an event store (%s)", OrderIntake, r.cfg.Clients, r.cfg.Duration)
	value, baseline, err := alternate(ctx, r.cfg.Duration,
		crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
			_, err := h.placeOrder(ctx)
			return err
		}),
		crew(r.cfg.Clients, turnLength, func(ctx context.Context, _ int, _ int64) error {
			return appendPlacedOrder(ctx, store)
		}))
	if err != nil {
		return fmt.Errorf("bench: %s: %w", OrderIntake, err)
	}
	return r.add(OrderIntake, value, "orders/s", baseline)
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

// appendPlacedOrder is order_intake's baseline: an order like the ones the clients post,
// decided by the domain and appended straight to an event store. It is the write an order
// ends in, with none of the HTTP API's work: decoding, validation, the reads that check the
// customer and SKUs exist, the handler's fold.
func appendPlacedOrder(ctx context.Context, store eventstore.Store) error {
	id := "bench-" + uuid.NewString()
	events, err := domain.DecidePlaceOrder(domain.Order{}, domain.PlaceOrder{
		OrderID: id, CustomerID: customerID(rand.IntN(seedCustomers)), Channel: "web", Currency: "EUR",
		Lines: orderLines(), TaxRateBps: 2000, PaymentMethod: "card", ShippingAddress: shippingAddress,
		At: eventstore.NormalizeTime(time.Now()),
	})
	if err != nil {
		return err
	}
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		typ, body, err := domain.EncodeEvent(e)
		if err != nil {
			return err
		}
		data[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: body,
			Metadata: eventstore.Metadata{CorrelationID: id, Actor: "bench"}}
	}
	_, err = store.Append(ctx, domain.OrderStream(id), eventstore.NoStream(), data...)
	return err
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

// httpLoad is the clients' side: keep-alive connections to the server, one per client.
type httpLoad struct {
	base    string
	clients int
	http    *http.Client
}

func newHTTPLoad(base string, clients int) *httpLoad {
	transport := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients, // the default, 2, would open a connection per request
		IdleConnTimeout:     time.Minute,
	}
	return &httpLoad{base: base, clients: clients, http: &http.Client{Transport: transport, Timeout: time.Minute}}
}

func (h *httpLoad) close() { h.http.CloseIdleConnections() }

// do sends one request and returns the answer's body; an answer other than 2xx is an error
// that names the request and quotes the problem.
func (h *httpLoad) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Actor", "bench")
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(answer[:min(len(answer), 500)]))
	}
	return answer, nil
}

func (h *httpLoad) post(ctx context.Context, path string, body any, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	answer, err := h.do(ctx, http.MethodPost, path, payload)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(answer, out)
}

// seed registers the customers and receives the SKUs' stock, from every client at once.
func (h *httpLoad) seed(ctx context.Context) error {
	work := make(chan func(context.Context) error)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range h.clients {
		wg.Go(func() {
			for w := range work {
				if err := w(ctx); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range seedCustomers + seedSKUs {
		w := func(ctx context.Context) error {
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
		}
		select {
		case work <- w:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// written is what a write answers with.
type written struct {
	OrderID  string `json:"order_id"`
	Position string `json:"position"`
}

// placeOrder posts an order like the ones the seeded business takes: on the web, one to three
// lines, tax, a payment method and an address, without an Idempotency-Key.
func (h *httpLoad) placeOrder(ctx context.Context) (written, error) {
	var w written
	err := h.post(ctx, "/v1/orders", map[string]any{
		"customer_id": customerID(rand.IntN(seedCustomers)), "channel": "web", "currency": "EUR",
		"lines": orderLines(), "tax_rate_bps": 2000, "payment_method": "card", "shipping_address": shippingAddress,
	}, &w)
	if err == nil && (w.OrderID == "" || w.Position == "") {
		err = errors.New("POST /v1/orders answered without order_id or position")
	}
	return w, err
}

// orderDoc is as much of GET /v1/orders/{id} as the cycle reads.
type orderDoc struct {
	Status        string  `json:"status"`
	Outstanding   int64   `json:"outstanding"`
	InvoiceNumber *string `json:"invoice_number"`
}

// await reads the order, including at least position after, until done holds: the server
// reserves, invoices and completes orders on its own, at its own pace.
func (h *httpLoad) await(ctx context.Context, id, after, what string, done func(orderDoc) bool) (orderDoc, error) {
	deadline := time.Now().Add(awaitTimeout)
	pause := 5 * time.Millisecond
	for {
		var doc orderDoc
		answer, err := h.do(ctx, http.MethodGet, "/v1/orders/"+id+"?after="+after, nil)
		if err != nil {
			return doc, err
		}
		if err := json.Unmarshal(answer, &doc); err != nil {
			return doc, err
		}
		if done(doc) {
			return doc, nil
		}
		if time.Now().After(deadline) {
			return doc, fmt.Errorf("order %s: waited %s for %s; it is %s", id, awaitTimeout, what, doc.Status)
		}
		if err := sleep(ctx, pause); err != nil {
			return doc, err
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
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
	doc, err := h.await(ctx, id, placed.Position, "confirmation and invoice", func(d orderDoc) bool {
		return d.Status == "confirmed" && d.InvoiceNumber != nil
	})
	if err != nil {
		return err
	}
	path := "/v1/orders/" + id
	var last written
	if err := h.post(ctx, path+"/payments", map[string]any{"amount": doc.Outstanding, "method": "card"}, nil); err != nil {
		return err
	}
	if err := h.post(ctx, path+"/shipments", map[string]any{"carrier": "Bench Parcel", "tracking_number": "BP-" + id}, nil); err != nil {
		return err
	}
	if err := h.post(ctx, path+"/deliveries", map[string]any{}, &last); err != nil {
		return err
	}
	_, err = h.await(ctx, id, last.Position, "completion", func(d orderDoc) bool { return d.Status == "completed" })
	return err
}

// orderToCash runs cycles from every client for a ramp-up (not counted: the first cycles all
// start at once) and then d (or until a cycle completes, if d is shorter), and returns the cycles completed within d per second. Cycles
// still running at the end are finished but not counted, so that the figure is the steady
// rate, not one diluted by a tail of ever fewer clients; they are not cut short either, which
// would only have the server log requests that lost their client.
func (h *httpLoad) orderToCash(ctx context.Context, d time.Duration) (float64, error) {
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
	_ = sleep(ctx, d)
	// A duration shorter than a cycle is stretched to the first completion, so that the rate
	// is a count over the time it took, never a zero.
	for within(start, time.Now()) == 0 && sleep(ctx, 10*time.Millisecond) == nil {
	}
	end := time.Now()
	counted := within(start, end)
	stop.Store(true)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return float64(counted) / end.Sub(start).Seconds(), nil
}

// projectionLag posts orders at a steady rate (an open loop: a slow answer does not slow the
// load down) for d, and for each reads the order back with ?after= its position, which the
// server answers once the orders projection includes it. A sample is the time from the
// write's answer to the read's: how long a client waits to see its own write. It returns the
// median and the 99th percentile.
func (h *httpLoad) projectionLag(ctx context.Context, perSecond float64, d time.Duration, logf func(string, ...any)) (p50, p99 time.Duration, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	interval := time.Duration(float64(time.Second) / perSecond)
	// Writes in flight are bounded, so that a server that cannot keep up shows as skipped
	// samples rather than as a pile of goroutines.
	inFlight := make(chan struct{}, 4*h.clients)
	var (
		mu      sync.Mutex
		samples []time.Duration
		skipped int
		wg      sync.WaitGroup
	)
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		if err := sleep(ctx, time.Until(at)); err != nil {
			break
		}
		select {
		case inFlight <- struct{}{}:
		default:
			skipped++
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			placed, err := h.placeOrder(ctx)
			if err != nil {
				cancel(err)
				return
			}
			answered := time.Now()
			if _, err := h.do(ctx, http.MethodGet, "/v1/orders/"+placed.OrderID+"?after="+placed.Position, nil); err != nil {
				cancel(err)
				return
			}
			lag := time.Since(answered)
			mu.Lock()
			samples = append(samples, lag)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, 0, err
	}
	if skipped > 0 {
		logf("%s: the server fell behind the load: %d writes were not sent because %d were still waiting", ProjectionLagP99, skipped, cap(inFlight))
	}
	if len(samples) == 0 {
		return 0, 0, errors.New("no sample")
	}
	return percentile(samples, 0.5), percentile(samples, 0.99), nil
}

// residentMB is the process's resident set size now (VmRSS of /proc/self/status), in MiB: the
// server's memory after the load, with the bench's own clients, which hold little.
func residentMB() (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("resident memory is read from /proc (Linux): %w", err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "VmRSS:"); ok {
			kB, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kB / 1024, nil
		}
	}
	if err := lines.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line in /proc/self/status")
}
