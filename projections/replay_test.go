package projections_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/pgtest"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// openTarget opens an empty read store on the env's backend, for a replay.
func openTarget(t *testing.T, env *projectionstest.Env) *projections.ReadStore {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "asof.db")
	if env.Backend == "postgres" {
		dsn = pgtest.NewDatabase(t)
	}
	target, err := projections.OpenReadStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	return target
}

// TestReplay replays the scripted history as of every instant an event was recorded at, and
// just before each: every order and stock level of the replay equals what as_of folds from the
// store (two codes: the projectors' and the domain's), and at the end every table equals the
// live read models. A replay refuses the live store and a non-empty one, and a runner pointed
// at it stands by at the replay's position.
func TestReplay(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		records := projectionstest.ScriptedHistory()
		head := projectionstest.AppendAsRecorded(t, env.Store, records)
		live := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, live, head)
		ctx := t.Context()

		if _, err := projections.Replay(ctx, env.Store, env.Read, time.Now(), projections.ReplayOptions{Force: true}); !errors.Is(err, projections.ErrTargetLive) {
			t.Fatalf("a replay into the store a runner projects into: %v, want ErrTargetLive", err)
		}

		target := openTarget(t, env)
		var instants []time.Time
		for _, r := range records {
			at := projectionstest.EventTime(r.Event)
			if !slices.ContainsFunc(instants, at.Equal) {
				instants = append(instants, at.Add(-time.Microsecond), at)
			}
		}
		for i, at := range instants {
			res, err := projections.Replay(ctx, env.Store, target, at, projections.ReplayOptions{Force: i > 0})
			if err != nil {
				t.Fatalf("replay as of %s: %v", at, err)
			}
			// The replay stops at the first event recorded after `at`.
			n := slices.IndexFunc(records, func(r historygen.Record) bool { return projectionstest.EventTime(r.Event).After(at) })
			if n < 0 {
				n = len(records)
			}
			if res.Events != int64(n) || !res.AsOf.Equal(at) {
				t.Errorf("replay as of %s covers %d events, want %d", at, res.Events, n)
			}
			if n < len(records) && (res.LeftOut == nil || res.LeftOut.Stream != records[n].Stream || !res.LeftOut.RecordedAt.Equal(projectionstest.EventTime(records[n].Event))) {
				t.Errorf("replay as of %s: left out %+v, want the event of %s at %s", at, res.LeftOut, records[n].Stream, projectionstest.EventTime(records[n].Event))
			}
			if n == len(records) && (res.LeftOut != nil || res.Position != head) {
				t.Errorf("replay as of %s, after the whole log: position %s, left out %+v; want %s and nothing", at, res.Position, res.LeftOut, head)
			}
			for _, id := range []string{"order-1", "order-2", "order-3"} {
				replayed, errReplayed := target.Order(ctx, id)
				folded, errFolded := projections.OrderAsOf(ctx, env.Store, id, at)
				if errors.Is(errReplayed, projections.ErrNotFound) != errors.Is(errFolded, projections.ErrNotFound) || !reflect.DeepEqual(replayed, folded) {
					t.Errorf("%s as of %s: replayed %s (%v), folded %s (%v)", id, at, js(replayed), errReplayed, js(folded), errFolded)
				}
			}
			for _, sku := range []string{"SKU-A", "SKU-B"} {
				replayed, errReplayed := target.StockLevel(ctx, sku)
				folded, errFolded := projections.StockLevelAsOf(ctx, env.Store, sku, at)
				if errors.Is(errReplayed, projections.ErrNotFound) != errors.Is(errFolded, projections.ErrNotFound) || !reflect.DeepEqual(replayed, folded) {
					t.Errorf("%s as of %s: replayed %s (%v), folded %s (%v)", sku, at, js(replayed), errReplayed, js(folded), errFolded)
				}
			}
		}
		sameDump(t, "a replay as of the last event vs. the live read models", dump(t, target), dump(t, env.Read))

		// Sales and the ledger as of the close of day 2: order-1 invoiced and paid, order-2
		// placed and not invoiced.
		closing := projectionstest.Day(3, 0, 0)
		res, err := projections.Replay(ctx, env.Store, target, closing, projections.ReplayOptions{})
		if !errors.Is(err, projections.ErrTargetNotEmpty) {
			t.Fatalf("a replay into a store holding one: %+v, %v; want ErrTargetNotEmpty", res, err)
		}
		if res, err = projections.Replay(ctx, env.Store, target, closing, projections.ReplayOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		sum, err := target.SalesSummary(ctx, "USD", projections.Period{})
		if err != nil || sum.Orders != 2 || sum.Invoiced != projections.AmountOf(3850) || sum.Payments != projections.AmountOf(3850) || !sum.Credited.IsZero() {
			t.Errorf("sales as of the close of day 2: %+v (err %v)", sum, err)
		}
		tb, err := target.TrialBalance(ctx, "USD", time.Time{})
		if err != nil || tb.TotalDebit != projections.AmountOf(3850+3850) || tb.TotalCredit != tb.TotalDebit {
			t.Errorf("trial balance as of the close of day 2: %+v (err %v)", tb, err)
		}
		if bob, err := target.Customer(ctx, "bob", "USD"); err != nil || bob.Name != "Robert Baker" || bob.OrderCount != 1 || !bob.LifetimeValue.IsZero() {
			t.Errorf("bob as of the close of day 2: %+v (err %v)", bob, err)
		}
		if asOf, replay, err := target.ReplayedAsOf(ctx); err != nil || !replay || !asOf.Equal(closing) {
			t.Errorf("ReplayedAsOf: %s, %v, %v; want %s", asOf, replay, err, closing)
		}
		replayed := dump(t, target)

		// A runner on the replay stands by: the replay is not carried on to the head.
		follower := projectionstest.StartRunner(t, &projectionstest.Env{Backend: env.Backend, Store: env.Store, Read: target})
		projectionstest.CatchUp(t, follower, res.Position)
		time.Sleep(1500 * time.Millisecond)
		for _, p := range follower.Status().Projectors {
			if p.State != projections.StateStandby || !strings.HasPrefix(p.LeaseHolder, "replay as of 2025-03-03T00:00:00Z") || p.Position != res.Position.String() {
				t.Errorf("a runner on the replay: %s is %+v, want standing by at %s", p.Name, p, res.Position)
			}
		}
		sameDump(t, "the replay after a runner ran on it", dump(t, target), replayed)
	})
}
