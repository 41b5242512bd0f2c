package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/domain"
)

func TestDecideStockCommands(t *testing.T) {
	reserve := func(order string, q int64) domain.StockCommand {
		return domain.ReserveStock{SKU: sku, OrderID: order, Quantity: q, At: now}
	}
	release := func(order string) domain.StockCommand {
		return domain.ReleaseStock{SKU: sku, OrderID: order, At: now}
	}
	ship := func(order string, q int64) domain.StockCommand {
		return domain.ShipStock{SKU: sku, OrderID: order, Quantity: q, At: now}
	}
	restock := func(order, ret string, q int64) domain.StockCommand {
		return domain.RestockReturn{SKU: sku, OrderID: order, ReturnID: ret, Quantity: q, At: now}
	}
	for _, tc := range []struct {
		name  string
		given []domain.Event
		when  []domain.StockCommand
		then  [][]domain.Event
		err   error
		field string
	}{
		{
			name:  "the first come are served first, the rest wait in the queue",
			given: events(received(5)),
			when:  []domain.StockCommand{reserve("O1", 3), reserve("O2", 3), reserve("O3", 1)},
			then:  [][]domain.Event{{allocated("O1", 3, 3, 0)}, {allocated("O2", 3, 2, 1)}, {allocated("O3", 1, 0, 1)}},
		},
		{
			name:  "a release in the batch serves the backorders before it, not a later reservation",
			given: events(received(2), allocated("O1", 2, 2, 0), allocated("O2", 1, 0, 1)),
			when:  []domain.StockCommand{release("O1"), reserve("O3", 2)},
			then:  [][]domain.Event{{released("O1", 2, 0), filled("O2", 1)}, {allocated("O3", 2, 1, 1)}},
		},
		{
			name:  "an order reserved and released in one batch gives its units back",
			given: events(received(4)),
			when:  []domain.StockCommand{reserve("O1", 3), release("O1"), reserve("O2", 4)},
			then:  [][]domain.Event{{allocated("O1", 3, 3, 0)}, {released("O1", 3, 0)}, {allocated("O2", 4, 4, 0)}},
		},
		{
			name:  "an order that asked before, in the stream or in the batch, changes nothing",
			given: events(received(4), allocated("O1", 1, 1, 0)),
			when:  []domain.StockCommand{reserve("O1", 1), reserve("O2", 1), reserve("O2", 1)},
			then:  [][]domain.Event{nil, {allocated("O2", 1, 1, 0)}, nil},
		},
		{
			name:  "a release before the reservation is remembered, and the late reservation refused",
			given: events(received(4)),
			when:  []domain.StockCommand{release("O1"), reserve("O1", 1)},
			then:  [][]domain.Event{{released("O1", 0, 0)}, nil},
		},
		{
			name:  "a shipment and a restock in the batch",
			given: events(received(4), allocated("O1", 2, 2, 0), allocated("O2", 3, 2, 1)),
			when:  []domain.StockCommand{ship("O1", 2), restock("O1", "R1", 1), restock("O1", "R1", 1)},
			then:  [][]domain.Event{{stockShipped("O1", 2)}, {restocked("O1", "R1", 1), filled("O2", 1)}, nil},
		},
		{
			name:  "a return restocked before is not restocked again",
			given: events(received(4), restocked("O1", "R1", 1)),
			when:  []domain.StockCommand{restock("O1", "R1", 1), restock("O1", "R2", 1)},
			then:  [][]domain.Event{nil, {restocked("O1", "R2", 1)}},
		},
		{
			name:  "an order shipped before is not shipped again",
			given: events(received(4), allocated("O1", 2, 2, 0), stockShipped("O1", 2)),
			when:  []domain.StockCommand{ship("O1", 2)},
			then:  [][]domain.Event{nil},
		},
		{
			name: "no command records nothing",
			then: [][]domain.Event{},
		},
		{
			name:  "one command refused refuses them all, naming its index",
			given: events(received(4)),
			when:  []domain.StockCommand{reserve("O1", 1), reserve("O2", 0)},
			err:   domain.ErrInvalidInput, field: "commands[1]",
		},
		{
			name:  "a shipment of what is not reserved is refused",
			given: events(received(4), allocated("O1", 1, 1, 0)),
			when:  []domain.StockCommand{ship("O1", 2)},
			err:   domain.ErrNotReserved, field: "commands[0]",
		},
		{
			name: "an unknown SKU refuses",
			when: []domain.StockCommand{reserve("O1", 1)},
			err:  domain.ErrSKUNotFound, field: "commands[0]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, pristine := fold(domain.EvolveStock, tc.given), fold(domain.EvolveStock, tc.given)
			got, err := domain.DecideStockCommands(state, tc.when)
			if !reflect.DeepEqual(state, pristine) {
				t.Fatal("the decision changed the state it was given")
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("err = %v, want %v naming %s", err, tc.err, tc.field)
				}
				if got != nil {
					t.Fatalf("refused, yet decided %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("decided\n%v\nwant\n%v", got, tc.then)
			}
		})
	}
}

// TestStockCommandsDecidedTogetherAsOneAtATime runs a random history of one SKU — receipts,
// adjustments, a replenishment policy, and the automation's reservations, releases,
// shipments and restocks for a few orders — twice: once deciding each command alone on the
// stream as it is, once deciding the automation's commands in random groups with
// DecideStockCommands. Each command must decide the same events either way, the two streams
// must end up the same, the batch must leave the state it was given as it was, and no more
// may ever be reserved than is on hand.
func TestStockCommandsDecidedTogetherAsOneAtATime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		orders := []string{"O1", "O2", "O3", "O4", "O5"}
		var alone, together []domain.Event
		var pending []domain.StockCommand // the automation's, waiting for the next group
		flush := func() {
			for len(pending) > 0 {
				n := rapid.IntRange(1, len(pending)).Draw(t, "group")
				group := pending[:n]
				pending = pending[n:]
				state, pristine := fold(domain.EvolveStock, together), fold(domain.EvolveStock, together)
				got, err := domain.DecideStockCommands(state, group)
				if !reflect.DeepEqual(state, pristine) {
					t.Fatal("DecideStockCommands changed the state it was given")
				}
				var want [][]domain.Event
				var wantErr error
				for _, c := range group {
					one, err := decideOne(fold(domain.EvolveStock, alone), c)
					if err != nil {
						wantErr = err
						break
					}
					alone = append(alone, one...)
					want = append(want, one)
				}
				if wantErr != nil {
					if err == nil {
						t.Fatalf("one at a time refused (%v), together decided %v", wantErr, got)
					}
					// Refused: the rest of the group is decided alone, as the automation does.
					for _, c := range group[len(want):] {
						if one, err := decideOne(fold(domain.EvolveStock, alone), c); err == nil {
							alone = append(alone, one...)
						}
					}
					for _, c := range group {
						if one, err := decideOne(fold(domain.EvolveStock, together), c); err == nil {
							together = append(together, one...)
						}
					}
					continue
				}
				if err != nil {
					t.Fatalf("together refused (%v), one at a time decided %v", err, want)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("together decided\n%v\none at a time\n%v", got, want)
				}
				for _, events := range got {
					together = append(together, events...)
				}
			}
			if !reflect.DeepEqual(fold(domain.EvolveStock, alone), fold(domain.EvolveStock, together)) {
				t.Fatal("the streams differ")
			}
			s := fold(domain.EvolveStock, together)
			if s.Reserved > s.OnHand || s.Reserved < 0 {
				t.Fatalf("reserved %d of %d on hand", s.Reserved, s.OnHand)
			}
		}
		client := func(c any) {
			flush()
			var (
				got []domain.Event
				err error
			)
			state := fold(domain.EvolveStock, together)
			switch c := c.(type) {
			case domain.ReceiveStock:
				got, err = domain.DecideReceiveStock(state, c)
			case domain.AdjustStock:
				got, err = domain.DecideAdjustStock(state, c)
			case domain.SetReplenishmentPolicy:
				got, err = domain.DecideSetReplenishmentPolicy(state, c)
			}
			if err == nil {
				alone = append(alone, got...)
				together = append(together, got...)
			}
		}
		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for range steps {
			order := rapid.SampledFrom(orders).Draw(t, "order")
			q := rapid.Int64Range(0, 4).Draw(t, "quantity")
			switch rapid.IntRange(0, 8).Draw(t, "what") {
			case 0:
				client(domain.ReceiveStock{SKU: sku, Quantity: q + 1, Reference: "r", At: now})
			case 1:
				client(domain.AdjustStock{SKU: sku, Delta: q - 2, Reason: "count", At: now})
			case 2:
				client(domain.SetReplenishmentPolicy{SKU: sku, ReorderPoint: q, ReorderQuantity: q + 1, Supplier: "ACME", At: now})
			case 3, 4, 5:
				pending = append(pending, domain.ReserveStock{SKU: sku, OrderID: order, Quantity: q, At: now})
			case 6:
				pending = append(pending, domain.ReleaseStock{SKU: sku, OrderID: order, At: now})
			case 7:
				pending = append(pending, domain.ShipStock{SKU: sku, OrderID: order, Quantity: q, At: now})
			case 8:
				pending = append(pending, domain.RestockReturn{SKU: sku, OrderID: order, ReturnID: rapid.SampledFrom([]string{"R1", "R2"}).Draw(t, "return"), Quantity: q, At: now})
			}
		}
		flush()
	})
}

func decideOne(s domain.Stock, c domain.StockCommand) ([]domain.Event, error) {
	switch c := c.(type) {
	case domain.ReserveStock:
		return domain.DecideReserveStock(s, c)
	case domain.ReleaseStock:
		return domain.DecideReleaseStock(s, c)
	case domain.ShipStock:
		return domain.DecideShipStock(s, c)
	case domain.RestockReturn:
		return domain.DecideRestockReturn(s, c)
	}
	panic("not a stock command")
}
