package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// generate makes a realistic history of at least n events.
func generate(seed uint64, n int) (*historygen.Generator, []historygen.Record) {
	g := historygen.New(historygen.Config{Seed: seed, Start: time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC), Customers: 15, SKUs: 6})
	var records []historygen.Record
	for len(records) < n {
		records = append(records, g.Step()...)
	}
	return g, records
}

// TestProjectionsAgreeWithTheDomain projects a generated history and checks every read model
// against what folding the same events with the domain gives.
func TestProjectionsAgreeWithTheDomain(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		g, records := generate(7, 2500)
		head := projectionstest.Append(t, env.Store, records)
		r := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r, head)
		ctx := t.Context()

		// Orders: each document equals the fold of its stream.
		orders := g.Orders()
		for id, o := range orders {
			got, err := env.Read.Order(ctx, id)
			if err != nil {
				t.Fatalf("order %s: %v", id, err)
			}
			if want := projections.OrderFromDomain(o); !reflect.DeepEqual(got, want) {
				t.Fatalf("order %s:\n got %s\nwant %s", id, js(got), js(want))
			}
		}

		// Stock levels equal the stock streams' folds.
		stock := map[string]domain.Stock{}
		for _, rec := range records {
			switch rec.Event.(type) {
			case domain.StockReceived, domain.StockAdjusted, domain.ReplenishmentPolicySet, domain.StockAllocated,
				domain.BackorderFilled, domain.StockReleased, domain.StockShipped, domain.StockRestocked, domain.ReplenishmentRequested:
				sku := rec.Stream[len("stock-"):]
				stock[sku] = domain.EvolveStock(stock[sku], rec.Event)
			}
		}
		lowStock := 0
		for sku, s := range stock {
			got, err := env.Read.StockLevel(ctx, sku)
			if err != nil {
				t.Fatal(err)
			}
			if want := projections.StockLevelFromDomain(s); !reflect.DeepEqual(got, want) {
				t.Errorf("SKU %s:\n got %s\nwant %s", sku, js(got), js(want))
			}
			if got.Available != s.Available() || got.LowStock != s.LowStock() {
				t.Errorf("SKU %s: available %d, low %v; the stream says %d, %v", sku, got.Available, got.LowStock, s.Available(), s.LowStock())
			}
			if s.LowStock() {
				lowStock++
			}
		}
		low := true
		levels, _, err := env.Read.StockLevels(ctx, projections.StockFilter{LowStock: &low})
		if err != nil || len(levels) != lowStock {
			t.Errorf("low stock list has %d SKUs (err %v), want %d", len(levels), err, lowStock)
		}

		// Customers: their figures summed over the folded orders.
		type figures struct {
			count, ltv, outstanding, web, store, phone int64
			first, last                                time.Time
			recent                                     []projections.RecentOrder
		}
		want := map[string]*figures{}
		var arNet, invoiced, credited, paid, refunded int64
		for _, o := range orders {
			f := want[o.CustomerID]
			if f == nil {
				f = &figures{}
				want[o.CustomerID] = f
			}
			f.count++
			if o.Invoiced() {
				f.ltv += o.Total
				f.outstanding += o.Outstanding()
				arNet += o.Outstanding()
				invoiced += o.Total
			}
			f.ltv -= o.Credited
			credited += o.Credited
			paid += o.Paid
			refunded += o.Refunded
			switch o.Channel {
			case "web":
				f.web++
			case "store":
				f.store++
			case "phone":
				f.phone++
			}
			if f.first.IsZero() || o.PlacedAt.Before(f.first) {
				f.first = o.PlacedAt
			}
			if o.PlacedAt.After(f.last) {
				f.last = o.PlacedAt
			}
			f.recent = append(f.recent, projections.RecentOrder{OrderID: o.ID, Status: o.Status, Currency: o.Currency, Total: o.Total, PlacedAt: o.PlacedAt})
		}
		for id, f := range want {
			// The generated history is in EUR only.
			c, err := env.Read.Customer(ctx, id, "EUR")
			if err != nil {
				t.Fatal(err)
			}
			sort.Slice(f.recent, func(i, j int) bool {
				a, b := f.recent[i], f.recent[j]
				return a.PlacedAt.After(b.PlacedAt) || (a.PlacedAt.Equal(b.PlacedAt) && a.OrderID > b.OrderID)
			})
			f.recent = f.recent[:min(len(f.recent), projections.RecentOrdersLimit)]
			have := []any{c.OrderCount, c.LifetimeValue, c.OutstandingBalance, c.Channels.Web, c.Channels.Store, c.Channels.Phone}
			if w := []any{f.count, projections.AmountOf(f.ltv), projections.AmountOf(f.outstanding), f.web, f.store, f.phone}; !reflect.DeepEqual(have, w) {
				t.Errorf("customer %s: count, ltv, outstanding, web, store, phone = %v, want %v", id, have, w)
			}
			if !c.FirstOrderAt.Equal(f.first) || !c.LastOrderAt.Equal(f.last) || !reflect.DeepEqual(c.RecentOrders, f.recent) {
				t.Errorf("customer %s: first %v last %v recent %s, want %v %v %s", id, c.FirstOrderAt, c.LastOrderAt, js(c.RecentOrders), f.first, f.last, js(f.recent))
			}
		}

		// The ledger balances, and receivables are what invoiced orders still owe.
		tb, err := env.Read.TrialBalance(ctx, "EUR", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if tb.TotalDebit != tb.TotalCredit || tb.TotalDebit.IsZero() {
			t.Errorf("trial balance: debit %s, credit %s", tb.TotalDebit, tb.TotalCredit)
		}
		if ar := tb.Accounts[0]; ar.Account != projections.AccountReceivable || ar.Debit.Minus(ar.Credit) != projections.AmountOf(arNet) {
			t.Errorf("receivables %+v, want a net debit of %d", ar, arNet)
		}

		sum, err := env.Read.SalesSummary(ctx, "EUR", projections.Period{})
		if err != nil {
			t.Fatal(err)
		}
		if got, w := []any{sum.Orders, sum.Invoiced, sum.Credited, sum.Payments, sum.Refunds}, []any{int64(len(orders)), projections.AmountOf(invoiced), projections.AmountOf(credited), projections.AmountOf(paid), projections.AmountOf(refunded)}; !reflect.DeepEqual(got, w) {
			t.Errorf("sales: orders, invoiced, credited, payments, refunds = %v, want %v", got, w)
		}
		if by := sum.ByChannel; by.Web.Orders+by.Store.Orders+by.Phone.Orders != sum.Orders || by.Web.NetSales.Plus(by.Store.NetSales).Plus(by.Phone.NetSales) != sum.NetSales {
			t.Errorf("sales by channel %+v do not add up to %+v", by, sum)
		}
	})
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func dump(t *testing.T, read *projections.ReadStore) map[string][]string {
	t.Helper()
	d, err := projections.DumpTables(t.Context(), read)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDump(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for table, rows := range want {
		if !slices.Equal(got[table], rows) {
			for i := range max(len(rows), len(got[table])) {
				var g, w string
				if i < len(got[table]) {
					g = got[table][i]
				}
				if i < len(rows) {
					w = rows[i]
				}
				if g != w {
					t.Fatalf("%s: %s differs at row %d:\n got %s\nwant %s", what, table, i, g, w)
				}
			}
		}
	}
	t.Fatalf("%s: the tables differ", what)
}

// TestCrashBeforeCommitCountsNothingTwice fails batches after their rows are written and before
// they commit, and kills a runner at that moment; what the projectors end up with must equal a
// clean replay.
func TestCrashBeforeCommitCountsNothingTwice(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		_, records := generate(11, 1500)
		head := projectionstest.Append(t, env.Store, records[:1000])

		// A runner whose context is cancelled in the middle of a batch: a process killed while
		// its transaction is open.
		ctx, kill := context.WithCancel(t.Context())
		r1, err := projections.NewRunner(env.Store, env.Read)
		if err != nil {
			t.Fatal(err)
		}
		var commits atomic.Int64
		projections.SetBeforeCommit(env.Read, func(string) error {
			if commits.Add(1) == 4 {
				kill()
				return errors.New("killed")
			}
			return nil
		})
		if err := r1.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if commits.Load() < 4 {
			t.Fatalf("the runner stopped after %d commits, before the crash", commits.Load())
		}

		// A runner whose batches fail three times each before they commit.
		var (
			mu       sync.Mutex
			failures = map[string]int{}
			failed   atomic.Int64
		)
		projections.SetBeforeCommit(env.Read, func(p string) error {
			mu.Lock()
			defer mu.Unlock()
			if failures[p] < 3 {
				failures[p]++
				failed.Add(1)
				return fmt.Errorf("injected failure %d of %s", failures[p], p)
			}
			return nil
		})
		r2 := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r2, head)
		head = projectionstest.Append(t, env.Store, records[1000:])
		projectionstest.CatchUp(t, r2, head)
		if failed.Load() == 0 {
			t.Fatal("no failure was injected")
		}
		projections.SetBeforeCommit(env.Read, nil)
		crashed := dump(t, env.Read)

		// A rebuild that fails halfway, with events applied in memory and not written, leaves
		// checkpoints a runner can carry on from.
		restore := projections.SetRebuildSizes(100, 300, 1000000)
		var ordersFlushes atomic.Int64
		projections.SetBeforeCommit(env.Read, func(p string) error {
			if p == "orders" && ordersFlushes.Add(1) == 3 {
				return errors.New("injected failure of a rebuild")
			}
			return nil
		})
		if err := projections.Rebuild(t.Context(), env.Store, env.Read, nil, nil); err == nil {
			t.Fatal("the rebuild did not fail")
		}
		restore()
		projections.SetBeforeCommit(env.Read, nil)
		r3 := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r3, head)
		sameDump(t, "after a failed rebuild vs. before it", dump(t, env.Read), crashed)

		if err := projections.Rebuild(t.Context(), env.Store, env.Read, nil, nil); err != nil {
			t.Fatal(err)
		}
		sameDump(t, "after crashes vs. a clean replay", crashed, dump(t, env.Read))
	})
}

// TestRebuildReplaysIdentically rebuilds twice, once while a runner runs and the log grows,
// and expects the same tables every time.
func TestRebuildReplaysIdentically(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		_, records := generate(23, 2000)
		head := projectionstest.Append(t, env.Store, records[:1500])
		r := projectionstest.StartRunner(t, env, projections.WithLeaseTTL(3*time.Second))
		projectionstest.CatchUp(t, r, head)
		live := dump(t, env.Read)

		// Small reads and flushes, so that rows are loaded, changed and written over many
		// batches.
		restore := projections.SetRebuildSizes(97, 250, 40)
		var calls, lastDone, lastTotal int64
		err := projections.Rebuild(t.Context(), env.Store, env.Read, nil, func(done, total int64) {
			calls++
			lastDone, lastTotal = done, total
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls == 0 || lastDone != 1500 || lastTotal != 1500 {
			t.Errorf("progress: %d calls, last (%d, %d), want it to end at (1500, 1500)", calls, lastDone, lastTotal)
		}
		restore()
		sameDump(t, "rebuild in small batches, rows read back, vs. live", dump(t, env.Read), live)
		restore = projections.SetRebuildSizes(97, 250, 1_000_000)
		if err := projections.Rebuild(t.Context(), env.Store, env.Read, nil, nil); err != nil {
			t.Fatal(err)
		}
		restore()
		sameDump(t, "rebuild in small batches, rows kept in memory, vs. live", dump(t, env.Read), live)

		// The runner stood by during the rebuild and carries on after it.
		head = projectionstest.Append(t, env.Store, records[1500:1800])
		projectionstest.CatchUp(t, r, head)
		grown := dump(t, env.Read)

		// A rebuild of two projectors while events keep coming.
		appended := make(chan eventstore.Position)
		go func() { appended <- projectionstest.Append(t, env.Store, records[1800:]) }()
		if err := projections.Rebuild(t.Context(), env.Store, env.Read, []string{"orders", "ledger"}, nil); err != nil {
			t.Fatal(err)
		}
		head = <-appended
		projectionstest.CatchUp(t, r, head)
		afterAll := dump(t, env.Read)
		if reflect.DeepEqual(afterAll, grown) {
			t.Fatal("the last events changed nothing")
		}
		if err := projections.Rebuild(t.Context(), env.Store, env.Read, nil, nil); err != nil {
			t.Fatal(err)
		}
		sameDump(t, "rebuild during appends vs. a quiet rebuild", afterAll, dump(t, env.Read))
		noMissingIndexes(t, env.Read)
		for _, p := range r.Status().Projectors {
			if p.State == projections.StateFailed {
				t.Errorf("projector %s stopped: %s", p.Name, p.Error)
			}
		}
	})
}

// TestBrokenEventStopsOnlyItsProjector appends an event only the inventory projector reads,
// with data it cannot decode: inventory stops there, loudly; the others carry on.
func TestBrokenEventStopsOnlyItsProjector(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
		broken, err := env.Store.Append(t.Context(), domain.StockStream("SKU-A"), eventstore.Any(), eventstore.EventData{
			ID: uuid.New(), Type: "ReplenishmentPolicySet.v1",
			Data: []byte(`{"sku":"SKU-A","reorder_point":"five","reorder_quantity":1,"supplier":"x","set_at":"2025-03-06T00:00:00Z"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		head := projectionstest.Append(t, env.Store, []historygen.Record{
			{Stream: domain.StockStream("SKU-A"), Event: domain.StockReceived{SKU: "SKU-A", Quantity: 100, ReceivedAt: projectionstest.Day(6, 9, 0)}},
			{Stream: domain.OrderStream("order-2"), Event: domain.PaymentReceived{OrderID: "order-2", PaymentID: "pay-3", Amount: 1500, Method: "card", ReceivedAt: projectionstest.Day(6, 9, 1)}},
		})
		reg := prometheus.NewRegistry()
		r := projectionstest.StartRunner(t, env, projections.WithRegistry(reg))
		projectionstest.CatchUp(t, r, head, "orders", "customers", "sales", "ledger")

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := r.WaitFor(ctx, head, "inventory"); !errors.Is(err, projections.ErrProjectorStopped) {
			t.Fatalf("waiting for the inventory: %v, want ErrProjectorStopped", err)
		}
		var inv projections.ProjectorStatus
		for _, p := range r.Status().Projectors {
			if p.Name == "inventory" {
				inv = p
			} else if p.State != projections.StateActive || p.LagEvents != 0 {
				t.Errorf("projector %s: %+v, want running and caught up", p.Name, p)
			}
		}
		b := inv.BrokenEvent
		if inv.State != projections.StateFailed || b == nil || b.Position != broken.Position.String() ||
			b.Stream != "stock-SKU-A" || b.Version != broken.Version || b.Type != "ReplenishmentPolicySet.v1" || b.Error == "" {
			t.Fatalf("inventory status %+v (broken event %+v), want it stopped at %s", inv, b, broken.Position)
		}
		// The log counter runs on its own; give it the time to count the last events.
		for deadline := time.Now().Add(10 * time.Second); inv.LagEvents != 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			inv = r.Status().Projectors[2]
		}
		if inv.Name != "inventory" || inv.LagEvents != 3 {
			t.Errorf("%s lags %d events, want inventory lagging 3 (the broken one and the two after it)", inv.Name, inv.LagEvents)
		}
		level, err := env.Read.StockLevel(t.Context(), "SKU-A")
		if err != nil || level.OnHand != 28 {
			t.Errorf("SKU-A on hand %d (err %v), want 28: nothing after the broken event", level.OnHand, err)
		}
		o, err := env.Read.Order(t.Context(), "order-2")
		if err != nil || o.Paid != 2000 {
			t.Errorf("order-2 paid %d (err %v), want 2000: the orders go on past it", o.Paid, err)
		}
		metrics, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if v := gauge(metrics, "orderledger_projection_stopped", "inventory"); v != 1 {
			t.Errorf("orderledger_projection_stopped{projector=inventory} = %v, want 1", v)
		}
		if v := gauge(metrics, "orderledger_projection_lag_events", "inventory"); v != 3 {
			t.Errorf("orderledger_projection_lag_events{projector=inventory} = %v, want 3", v)
		}
	})
}

// TestUnknownEventTypeStopsEveryProjector: no projector may skip an event it cannot know.
func TestUnknownEventTypeStopsEveryProjector(t *testing.T) {
	env := projectionstest.OpenSQLite(t)
	projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
	mystery, err := env.Store.Append(t.Context(), "mystery-1", eventstore.Any(), eventstore.EventData{
		ID: uuid.New(), Type: "Mystery.v1", Data: []byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := projectionstest.StartRunner(t, env)
	for _, name := range projections.Names() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err := r.WaitFor(ctx, mystery.Position, name)
		cancel()
		if !errors.Is(err, projections.ErrProjectorStopped) {
			t.Errorf("%s: %v, want ErrProjectorStopped", name, err)
		}
	}
	for _, p := range r.Status().Projectors {
		if p.BrokenEvent == nil || p.BrokenEvent.Type != "Mystery.v1" || p.BrokenEvent.Stream != "mystery-1" {
			t.Errorf("projector %s: %+v, want stopped on Mystery.v1", p.Name, p)
		}
	}
	if err := projections.Rebuild(t.Context(), env.Store, env.Read, []string{"sales"}, nil); err == nil {
		t.Error("a rebuild replayed past an unknown event type")
	}
	noMissingIndexes(t, env.Read)
}

// noMissingIndexes checks that a rebuild put back the indexes it dropped.
func noMissingIndexes(t *testing.T, read *projections.ReadStore) {
	t.Helper()
	missing, err := projections.MissingIndexes(t.Context(), read)
	if err != nil || len(missing) > 0 {
		t.Errorf("indexes missing after a rebuild: %v (err %v)", missing, err)
	}
}

func gauge(families []*dto.MetricFamily, name, projector string) float64 {
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projector" && l.GetValue() == projector {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestWaitFor: a position just appended is always reached; one that never comes times out.
func TestWaitFor(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		r := projectionstest.StartRunner(t, env)
		for i := range 20 {
			id := fmt.Sprintf("c%d", i)
			pos := projectionstest.Append(t, env.Store, []historygen.Record{{Stream: domain.CustomerStream(id), Event: domain.CustomerRegistered{CustomerID: id, Name: "N", Email: "n@example.com", RegisteredAt: projectionstest.Day(1, 9, i)}}})
			projectionstest.CatchUp(t, r, pos, "customers")
			if _, err := env.Read.Customer(t.Context(), id, "EUR"); err != nil {
				t.Fatalf("customer %s after waiting for %s: %v", id, pos, err)
			}
		}
		head, err := env.Store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		never := eventstore.Position{Commit: head.Commit + 1000, Prepare: head.Prepare + 1000}
		if err := r.WaitFor(ctx, never); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting for %s: %v, want the deadline", never, err)
		}
		if err := r.WaitFor(t.Context(), head, "nonesuch"); !errors.Is(err, projections.ErrUnknownProjector) {
			t.Fatalf("waiting for an unknown projector: %v", err)
		}
		for _, p := range r.Status().Projectors {
			if p.LagEvents != 0 || p.State != projections.StateActive {
				t.Errorf("projector %s: %+v, want running with no lag", p.Name, p)
			}
		}
	})
}

// TestFollowOnly: a runner that only follows sees what another one projects, so ?after= waits
// work in a process that serves reads only.
func TestFollowOnly(t *testing.T) {
	env := projectionstest.OpenSQLite(t)
	projector := projectionstest.StartRunner(t, env, projections.WithOwner("projecting"))
	follower := projectionstest.StartRunner(t, env, projections.WithFollowOnly())
	pos := projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
	projectionstest.CatchUp(t, follower, pos)
	if o, err := env.Read.Order(t.Context(), "order-2"); err != nil || o.Paid != 500 {
		t.Fatalf("order-2 once the follower has seen %s: paid %d, err %v", pos, o.Paid, err)
	}
	for _, p := range follower.Status().Projectors {
		if p.State != projections.StateStandby || !strings.HasPrefix(p.LeaseHolder, "projecting#") {
			t.Errorf("follower's %s: %+v, want standing by for the projecting runner", p.Name, p)
		}
	}
	for _, p := range projector.Status().Projectors {
		if p.State != projections.StateActive {
			t.Errorf("projecting runner's %s: %+v, want running", p.Name, p)
		}
	}
}
