package projections_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// TestAsOfFoldsAStreamPrefix: a stream whose recorded_at goes backwards (the clocks of two
// processes disagree) is folded up to its last event recorded at or before the instant,
// including the events before it that were stamped later, over several pages of the stream.
func TestAsOfFoldsAStreamPrefix(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		second := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
		// Version v receives one unit and is stamped v seconds after base, except that
		// versions 1200…2100 were stamped by a clock far ahead, and version 2200 by one far
		// behind.
		const versions = 2500
		stamp := func(v int) time.Time {
			switch {
			case v >= 1200 && v <= 2100:
				return second(10_000)
			case v == 2200:
				return second(1000)
			}
			return second(v)
		}
		stream := domain.StockStream("SKU-SKEW")
		for v := 0; v < versions; v += 100 {
			batch := make([]eventstore.EventData, 100)
			for i := range batch {
				batch[i] = projectionstest.Encode(t, domain.StockReceived{SKU: "SKU-SKEW", Quantity: 1, ReceivedAt: stamp(v + i)})
				batch[i].RecordedAt = stamp(v + i)
			}
			if _, err := env.Store.Append(t.Context(), stream, eventstore.Any(), batch...); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			at     time.Time
			onHand int64 // versions folded
		}{
			{second(0), 1},
			{second(999), 1000},                         // a whole page
			{second(1000), 2201},                        // version 2200, and every version before it
			{second(1199), 2201},                        // still version 2200's prefix
			{second(2101).Add(-time.Microsecond), 2201}, // versions 2101… are later
			{second(2101), 2201},                        // 2101 ≤ 2200: nothing new
			{second(2201), 2202},                        // version 2201
			{second(9_999), versions},                   // everything after 2200 is stamped before
			{second(20_000), versions},                  // the whole stream
			{base.Add(-time.Microsecond), 0},            // nothing yet
		} {
			level, err := projections.StockLevelAsOf(t.Context(), env.Store, "SKU-SKEW", c.at)
			if c.onHand == 0 {
				if !errors.Is(err, projections.ErrNotFound) {
					t.Errorf("as of %s: %+v, %v; want not found", c.at, level, err)
				}
				continue
			}
			if err != nil || level.OnHand != c.onHand {
				t.Errorf("as of %s: on hand %d (err %v), want %d", c.at, level.OnHand, err, c.onHand)
			}
		}
	})
}

// TestAsOfAgreesWithTheProjections: at the end of a generated history, every order and stock
// level folded from the store equals the projection's document.
func TestAsOfAgreesWithTheProjections(t *testing.T) {
	env := projectionstest.OpenSQLite(t)
	g, records := generate(31, 3000)
	head := projectionstest.Append(t, env.Store, records)
	r := projectionstest.StartRunner(t, env)
	projectionstest.CatchUp(t, r, head)
	now := time.Now()
	for id := range g.Orders() {
		want, err := env.Read.Order(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := projections.OrderAsOf(t.Context(), env.Store, id, now)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("order %s as of now:\n got %s (err %v)\nwant %s", id, js(got), err, js(want))
		}
	}
	levels, _, err := env.Read.StockLevels(t.Context(), projections.StockFilter{})
	if err != nil || len(levels) == 0 {
		t.Fatalf("stock levels: %v, %v", levels, err)
	}
	for _, want := range levels {
		got, err := projections.StockLevelAsOf(t.Context(), env.Store, want.SKU, now)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("SKU %s as of now:\n got %s (err %v)\nwant %s", want.SKU, js(got), err, js(want))
		}
	}
}
