package automation

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
)

// Many orders reserving one SKU at once, with too little stock for all, some asking again with
// the same command (a replay): the SKU's stream takes them in fewer appends than orders,
// reserves exactly what it has, backorders the rest, allocates each order once, and every
// answer agrees with the stream.
func TestReservationsOnOneSKUTakenTogether(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		const orders, onHand = 120, 150 // two units each: 75 orders served, 45 backordered
		e.receive("HOT", onHand)
		counting := &countingStore{Store: e.store, stream: domain.StockStream("HOT")}
		h := commands.NewHandler(counting)
		ctx, stop := context.WithCancel(t.Context())
		var running sync.WaitGroup
		stock := newStockBatching(ctx, h, running.Go)
		defer func() { stop(); running.Wait() }()

		type answer struct {
			order int
			res   commands.Result
			err   error
		}
		answers := make(chan answer, 2*orders)
		var asking sync.WaitGroup
		for i := range orders {
			m := e.meta()
			asks := 1
			if i%5 == 0 {
				asks = 2
			}
			for range asks {
				asking.Go(func() {
					res, err := stock.send(ctx, "HOT", domain.ReserveStock{SKU: "HOT", OrderID: fmt.Sprintf("o%d", i), Quantity: 2, At: e.h.Now()}, m)
					answers <- answer{i, res, err}
				})
			}
		}
		asking.Wait()
		close(answers)

		events := readStream(t, e.store, domain.StockStream("HOT"))
		allocatedAt := map[string]uint64{}
		var reserved, backordered int64
		served := ""
		for _, ev := range events {
			de, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			if a, ok := de.(domain.StockAllocated); ok {
				if _, twice := allocatedAt[a.OrderID]; twice {
					t.Fatalf("order %s allocated twice", a.OrderID)
				}
				allocatedAt[a.OrderID] = ev.Version
				reserved += a.Reserved
				if a.Reserved > 0 && served == "" {
					served = a.OrderID
				}
				backordered += a.Backordered
			}
		}
		if len(allocatedAt) != orders || reserved != onHand || backordered != 2*orders-onHand {
			t.Fatalf("%d orders allocated, %d reserved, %d backordered; want %d, %d, %d", len(allocatedAt), reserved, backordered, orders, onHand, 2*orders-onHand)
		}
		if s := e.stock("HOT"); s.Available() != 0 || s.Backordered() != 2*orders-onHand {
			t.Fatalf("stock: available %d, backordered %d", s.Available(), s.Backordered())
		}
		took := map[int]int{}
		for a := range answers {
			if a.err != nil {
				t.Fatalf("order o%d: %v", a.order, a.err)
			}
			if a.res.AlreadyApplied || a.res.Unchanged {
				continue
			}
			took[a.order]++
			version := allocatedAt[fmt.Sprintf("o%d", a.order)]
			if len(a.res.Events) != 1 || a.res.Version != version {
				t.Fatalf("order o%d answered version %d with %v; the stream allocated it at %d", a.order, a.res.Version, a.res.Events, version)
			}
		}
		for i := range orders {
			if took[i] != 1 {
				t.Fatalf("order o%d was answered as allocated %d times; want once", i, took[i])
			}
		}
		if n := counting.appends.Load(); n >= orders {
			t.Fatalf("%d appends for %d reservations: want them taken together", n, orders)
		} else {
			t.Logf("%d reservations taken in %d appends", orders, n)
		}

		// A release frees what an order held and fills the oldest backorder, in the same append.
		res, err := stock.send(ctx, "HOT", domain.ReleaseStock{SKU: "HOT", OrderID: served, At: e.h.Now()}, e.meta())
		if err != nil || len(res.Events) < 2 {
			t.Fatalf("release: %+v, %v", res, err)
		}
		if _, ok := res.Events[1].(domain.BackorderFilled); !ok {
			t.Fatalf("release decided %v; want the oldest backorder filled", res.Events)
		}
		// A command the stock refuses (an unknown SKU) is refused to its sender alone.
		if _, err := stock.send(ctx, "COLD", domain.ReserveStock{SKU: "COLD", OrderID: "o1", Quantity: 1, At: e.h.Now()}, e.meta()); err == nil {
			t.Fatal("a reservation of an unknown SKU was not refused")
		}
	})
}
