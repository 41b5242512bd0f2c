package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// sustained_orders: a skewed catalogue, as real ones are: a few products take most orders.
const (
	zipfSKUs       = 1000
	zipfS          = 1.1 // the rank-k SKU is drawn with weight 1/k^s: the first in 18% of draws, 64% of orders
	sustainedLines = 5
	// sustainedP99 is the placed→invoiced p99 a rate must keep to be sustained.
	sustainedP99 = time.Second
	// sustainedInFlight bounds the orders posted and not yet answered: past it the server is
	// not taking the orders at the rate they arrive, and the rate is not sustained.
	sustainedInFlight = 1024
	// sustainedHolds is how many holds are tried, each a fifth below the one before.
	sustainedHolds = 3
	// sustainedSearchSteps is how many shorter trials look for the rate before the holds; up
	// to twice as many while none has held yet.
	sustainedSearchSteps = 4
	// sustainedDrain is how long a trial waits, after its last order, for the orders still
	// on their way to their invoice; an order not invoiced by then counts as never.
	sustainedDrain = 10 * time.Second
)

func zipfSKU(i int) string { return "BENCH-Z" + strconv.Itoa(i) }

// trial is what one fixed arrival rate gave.
type trial struct {
	rate     float64 // orders/s asked for
	achieved float64 // orders/s answered 201
	p50, p99 time.Duration
	orders   int
	failure  string // why the rate was not held; "" when it was
}

func (t trial) String() string {
	s := fmt.Sprintf("%.0f orders/s asked, %.0f taken, %d orders: placed→invoiced p50 %.1f ms, p99 %.1f ms", t.rate, t.achieved, t.orders, ms(t.p50), ms(t.p99))
	if t.failure != "" {
		return s + ": not held (" + t.failure + ")"
	}
	return s + ": held"
}

// sustainedOrders searches for the highest fixed arrival rate of 5-line orders over the Zipf
// catalogue that the server holds with placed→invoiced p99 within sustainedP99: a few shorter
// trials (2 × --duration) from a first guess (0.8 × order_intake when measured this run),
// growing by half while they hold, halving while none has, then halving the interval between
// the best held and the lowest not held, and then holds of 6 ×
// --duration (60 s at the default) at the best rate found, stepping down by a fifth while
// they do not hold (sustainedHolds in all). It returns the hold that held, or the last one tried.
func (r *run) sustainedOrders(ctx context.Context, srv *Server, guess float64) (trial, error) {
	h := newHTTPLoad(srv.URL, sustainedInFlight/2).as(srv.Token)
	defer h.close()
	r.logf("%s: seeding %d SKUs for a Zipf-skewed catalogue (s = %.1f)", SustainedOrders, zipfSKUs, zipfS)
	if err := h.parallel(ctx, zipfSKUs, func(ctx context.Context, i int) error {
		return h.post(ctx, "/v1/inventory/"+zipfSKU(i)+"/receipts", map[string]any{"quantity": seedStock, "reference": "bench opening stock"}, nil)
	}); err != nil {
		return trial{}, err
	}
	if err := r.settle(ctx, srv); err != nil {
		return trial{}, err
	}
	rate := max(math.Round(guess), 10)
	var held, failed float64 // the highest rate held and the lowest not held, 0 when none yet
	for step := 0; step < sustainedSearchSteps || held == 0 && step < 2*sustainedSearchSteps && rate >= 2; step++ {
		t, err := r.sustainedTrial(ctx, h, srv, rate, 2*r.cfg.Duration)
		if err != nil {
			return trial{}, err
		}
		r.logf("%s: search, %s for %s: %s", SustainedOrders, formatFloat(rate), 2*r.cfg.Duration, t)
		if t.failure == "" {
			held = rate
		} else {
			failed = rate
		}
		switch {
		case failed == 0:
			rate = math.Round(rate * 1.5)
		case held == 0:
			rate = math.Round(rate / 2)
		default:
			rate = math.Round((held + failed) / 2)
		}
		if held > 0 && failed > 0 && failed <= 1.1*held {
			break // as close as a noisy machine can tell
		}
	}
	rate = max(held, 1)
	var last trial
	for range sustainedHolds {
		t, err := r.sustainedTrial(ctx, h, srv, rate, 6*r.cfg.Duration)
		if err != nil {
			return trial{}, err
		}
		r.logf("%s: hold, %s for %s: %s", SustainedOrders, formatFloat(rate), 6*r.cfg.Duration, t)
		if t.failure == "" {
			return t, nil
		}
		last = t
		rate = math.Max(math.Round(rate*0.8), 1)
	}
	return last, nil
}

// sustainedTrial posts orders at rate for d, open loop — each at its time, whether or not the
// ones before it have been answered — and measures each order's time from placed to invoiced
// from the log: the recorded times of its OrderPlaced and its OrderInvoiced, both stamped by
// the server's clock as they are appended.
func (r *run) sustainedTrial(ctx context.Context, h *httpLoad, srv *Server, rate float64, d time.Duration) (trial, error) {
	t := trial{rate: rate}
	if err := r.settle(ctx, srv); err != nil {
		return t, err
	}
	from, err := srv.Events.Head(ctx)
	if err != nil {
		return t, err
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), zipfS, 1, zipfSKUs-1)
	var (
		inFlight, taken atomic.Int64
		firstErr        atomic.Pointer[error]
		posts           sync.WaitGroup
	)
	start := time.Now()
	sent := int64(0)
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		due := int64(elapsed.Seconds()*rate) + 1 // the first at once, the i-th at i/rate
		for ; sent < due; sent++ {
			if inFlight.Load() >= sustainedInFlight {
				t.failure = fmt.Sprintf("%d orders posted and not yet answered", sustainedInFlight)
				break
			}
			body := zipfOrder(zipf)
			inFlight.Add(1)
			posts.Go(func() {
				defer inFlight.Add(-1)
				if err := h.post(ctx, "/v1/orders", body, nil); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				taken.Add(1)
			})
		}
		if t.failure != "" {
			break
		}
		_ = sleep(ctx, time.Millisecond)
	}
	arrivals := time.Since(start)
	posts.Wait()
	t.achieved = float64(taken.Load()) / arrivals.Seconds()
	if p := firstErr.Load(); p != nil {
		return t, fmt.Errorf("bench: %s: %w", SustainedOrders, *p)
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	latencies, err := placedToInvoiced(ctx, srv.Events, from, int(taken.Load()))
	if err != nil {
		return t, err
	}
	t.orders = len(latencies)
	t.p50, t.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
	switch {
	case t.failure != "":
	case t.achieved < 0.95*rate:
		t.failure = "the orders were not posted as fast as they were due"
	case t.p99 > sustainedP99:
		t.failure = fmt.Sprintf("p99 over %s", sustainedP99)
	}
	return t, nil
}

// zipfOrder is a POST /v1/orders body of sustainedLines different SKUs of the Zipf catalogue.
func zipfOrder(zipf *rand.Zipf) map[string]any {
	picked := make(map[uint64]bool, sustainedLines)
	lines := make([]domain.OrderLine, 0, sustainedLines)
	for len(lines) < sustainedLines {
		k := zipf.Uint64()
		if picked[k] {
			continue
		}
		picked[k] = true
		lines = append(lines, domain.OrderLine{SKU: zipfSKU(int(k)), Quantity: int64(1 + rand.IntN(3)), UnitPrice: int64(199 + k)})
	}
	return map[string]any{
		"customer_id": customerID(rand.IntN(seedCustomers)), "channel": "web", "currency": "EUR",
		"lines": lines, "tax_rate_bps": 2000, "payment_method": "card", "shipping_address": shippingAddress,
	}
}

// placedToInvoiced reads the log after from until the orders placed there, placed of them,
// are all invoiced or sustainedDrain has passed, and returns each order's time from its
// OrderPlaced to its OrderInvoiced; an order not invoiced counts as an hour.
func placedToInvoiced(ctx context.Context, store eventstore.Store, from eventstore.Position, placed int) ([]time.Duration, error) {
	placedAt := make(map[string]time.Time, placed)
	invoicedAt := make(map[string]time.Time, placed)
	deadline := time.Now().Add(sustainedDrain)
	for {
		for {
			batch, err := store.ReadAll(ctx, from, 4096)
			if err != nil {
				return nil, err
			}
			if len(batch) == 0 {
				break
			}
			from = batch[len(batch)-1].Position
			for _, e := range batch {
				switch e.Type {
				case domain.OrderPlaced{}.EventType():
					placedAt[strings.TrimPrefix(e.Stream, "order-")] = e.RecordedAt
				case domain.OrderInvoiced{}.EventType():
					invoicedAt[strings.TrimPrefix(e.Stream, "order-")] = e.RecordedAt
				}
			}
		}
		done := len(placedAt) >= placed
		for id := range placedAt {
			if _, ok := invoicedAt[id]; !ok {
				done = false
				break
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if len(placedAt) < placed {
		return nil, errors.New("bench: the log holds fewer orders than were placed")
	}
	out := make([]time.Duration, 0, len(placedAt))
	for id, at := range placedAt {
		if inv, ok := invoicedAt[id]; ok {
			out = append(out, inv.Sub(at))
		} else {
			out = append(out, time.Hour)
		}
	}
	return out, nil
}

// parallel runs work(i) for i in [0, n) from every client at once (64 at most), and returns the
// first error; after one, no further work starts.
func (h *httpLoad) parallel(ctx context.Context, n int, work func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(min(h.clients, 64))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return work(ctx, i) })
	}
	return g.Wait()
}
