package automation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// The benchmarks run the automation alone, without HTTP or projections, on a business like
// the one orderledger bench seeds: customers, 100 SKUs with stock enough for every order, and
// orders of one to three lines.
//
//	go test ./commands/automation -run '^$' -bench . -benchtime 2000x

const (
	benchCustomers = 20
	benchSKUs      = 100
	benchClients   = 32
)

// benchWorld is an event store with the business seeded, the checkpoint table, and the
// handler the outside world (the shop) writes through.
type benchWorld struct {
	store       eventstore.Store
	checkpoints *follow.Store
	shop        *commands.Handler
	seq         atomic.Int64
}

func eachStoreBench(b *testing.B, bench func(b *testing.B, w *benchWorld)) {
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "orderledger.db")
		store, err := sqlite.Open(b.Context(), path)
		if err != nil {
			b.Fatal(err)
		}
		bench(b, newBenchWorld(b, store, "sqlite:"+path))
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := pgtest.NewDatabase(b)
		store, err := postgres.Open(b.Context(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		bench(b, newBenchWorld(b, store, dsn))
	})
}

func newBenchWorld(b *testing.B, store eventstore.Store, dsn string) *benchWorld {
	b.Cleanup(func() { store.Close() })
	cps, err := follow.Open(b.Context(), dsn, follow.WithHolder("bench"), follow.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cps.Close() })
	w := &benchWorld{store: store, checkpoints: cps, shop: commands.NewHandler(store)}
	ctx := b.Context()
	for i := range benchCustomers {
		id := fmt.Sprintf("c%d", i)
		if _, err := w.shop.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: id, Name: id, Email: id + "@example.com", At: w.shop.Now()}, w.meta()); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchSKUs {
		if _, err := w.shop.ReceiveStock(ctx, domain.ReceiveStock{SKU: fmt.Sprintf("S%d", i), Quantity: 100_000_000, At: w.shop.Now()}, w.meta()); err != nil {
			b.Fatal(err)
		}
	}
	return w
}

func (w *benchWorld) meta() commands.Meta {
	return commands.Meta{CommandID: commands.DeriveID(testNamespace, fmt.Sprintf("bench/%d", w.seq.Add(1))), Actor: "bench"}
}

// place places order id through h, on one to three random lines.
func (w *benchWorld) place(ctx context.Context, h *commands.Handler, id string) (commands.Result, error) {
	picked := rand.Perm(benchSKUs)[:1+rand.IntN(3)]
	lines := make([]domain.OrderLine, len(picked))
	for i, k := range picked {
		lines[i] = domain.OrderLine{SKU: fmt.Sprintf("S%d", k), Quantity: int64(1 + rand.IntN(3)), UnitPrice: int64(199 + 100*k)}
	}
	return h.PlaceOrder(ctx, domain.PlaceOrder{OrderID: id, CustomerID: fmt.Sprintf("c%d", rand.IntN(benchCustomers)), Channel: "web", Currency: "EUR", Lines: lines, TaxRateBps: 2000, At: h.Now()}, w.meta())
}

func (w *benchWorld) runner(h *commands.Handler) *Runner {
	return New(h, w.checkpoints, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// BenchmarkBacklog places b.N orders while no runner runs, then times a runner working them
// off, to every invoice: the automation's throughput, as after a burst of orders or a restart.
func BenchmarkBacklog(b *testing.B) {
	eachStoreBench(b, func(b *testing.B, w *benchWorld) {
		ctx := b.Context()
		var next atomic.Int64
		var placing sync.WaitGroup
		for range benchClients {
			placing.Go(func() {
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					if _, err := w.place(ctx, w.shop, fmt.Sprintf("o%d", i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		placing.Wait()

		b.ResetTimer()
		r := w.runner(commands.NewHandler(w.store))
		ctx, stop := context.WithCancel(ctx)
		done := runAlone(ctx, r)
		defer func() { stop(); <-done }()
		for {
			last, err := w.store.ReadStream(ctx, domain.InvoiceSeriesStream, uint64(b.N-1), 1)
			if err != nil {
				b.Fatal(err)
			}
			if len(last) == 1 {
				break
			}
			if err := r.Status().Err(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	})
}

// watchInvoices follows the log and returns a function that waits until an order is
// invoiced: a subscription, so that waiting costs the store nothing per order.
func (w *benchWorld) watchInvoices(ctx context.Context) func(ctx context.Context, orderID string) error {
	var (
		mu      sync.Mutex
		waiting = map[string]chan struct{}{}
	)
	signal := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		ch, ok := waiting[id]
		if !ok {
			ch = make(chan struct{})
			waiting[id] = ch
		}
		return ch
	}
	from, err := w.store.Head(ctx)
	if err != nil {
		panic(err)
	}
	go func() {
		_ = w.store.Subscribe(ctx, from, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				if e.Type != (domain.OrderInvoiced{}).EventType() {
					continue
				}
				de, err := domain.DecodeEvent(e.Type, e.Data)
				if err != nil {
					return err
				}
				close(signal(de.(domain.OrderInvoiced).OrderID))
			}
			return nil
		})
	}()
	return func(ctx context.Context, orderID string) error {
		select {
		case <-signal(orderID):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("order %s: no invoice after a minute", orderID)
		}
	}
}

// BenchmarkPlacedToInvoiced has benchClients clients each place an order and wait for its
// invoice, one after another, with the runner beside the shop on one handler as in
// orderledger serve: the automation's latency, from placement to invoice, under load.
func BenchmarkPlacedToInvoiced(b *testing.B) {
	eachStoreBench(b, func(b *testing.B, w *benchWorld) {
		ctx, stop := context.WithCancel(b.Context())
		r := w.runner(w.shop)
		done := runAlone(ctx, r)
		defer func() { stop(); <-done }()
		invoiced := w.watchInvoices(ctx)
		var (
			next      atomic.Int64
			mu        sync.Mutex
			latencies []time.Duration
			clients   sync.WaitGroup
		)
		b.ResetTimer()
		for c := range benchClients {
			clients.Go(func() {
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					id := fmt.Sprintf("o%d-%d", c, i)
					start := time.Now()
					if _, err := w.place(ctx, w.shop, id); err != nil {
						b.Error(err)
						return
					}
					if err := invoiced(ctx, id); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					latencies = append(latencies, time.Since(start))
					mu.Unlock()
				}
			})
		}
		clients.Wait()
		b.StopTimer()
		slices.Sort(latencies)
		if len(latencies) > 0 {
			b.ReportMetric(float64(len(latencies))/b.Elapsed().Seconds(), "orders/s")
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
		}
	})
}
