package domain_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
)

// The stock tables speak of one SKU; these build its events tersely.
const sku = "SKU1"

func received(q int64) domain.StockReceived {
	return domain.StockReceived{SKU: sku, Quantity: q, ReceivedAt: now}
}

func receivedPO(n, q int64) domain.StockReceived {
	return domain.StockReceived{SKU: sku, Quantity: q, PurchaseOrderID: domain.PurchaseOrderID(sku, n), ReceivedAt: now}
}

func adjusted(delta int64) domain.StockAdjusted {
	return domain.StockAdjusted{SKU: sku, Delta: delta, Reason: "count", AdjustedAt: now}
}

func policySet(reorderPoint, reorderQuantity int64) domain.ReplenishmentPolicySet {
	return domain.ReplenishmentPolicySet{SKU: sku, ReorderPoint: reorderPoint, ReorderQuantity: reorderQuantity, Supplier: "ACME", SetAt: now}
}

func allocated(order string, requested, reserved, backordered int64) domain.StockAllocated {
	return domain.StockAllocated{SKU: sku, OrderID: order, Requested: requested, Reserved: reserved, Backordered: backordered, AllocatedAt: now}
}

func filled(order string, q int64) domain.BackorderFilled {
	return domain.BackorderFilled{SKU: sku, OrderID: order, Quantity: q, FilledAt: now}
}

func released(order string, reserved, backordered int64) domain.StockReleased {
	return domain.StockReleased{SKU: sku, OrderID: order, Reserved: reserved, Backordered: backordered, ReleasedAt: now}
}

func stockShipped(order string, q int64) domain.StockShipped {
	return domain.StockShipped{SKU: sku, OrderID: order, Quantity: q, ShippedAt: now}
}

func restocked(order, returnID string, q int64) domain.StockRestocked {
	return domain.StockRestocked{SKU: sku, OrderID: order, ReturnID: returnID, Quantity: q, RestockedAt: now}
}

func requested(n, q int64) domain.ReplenishmentRequested {
	return domain.ReplenishmentRequested{SKU: sku, PurchaseOrderID: domain.PurchaseOrderID(sku, n), Supplier: "ACME", Quantity: q, RequestedAt: now}
}

func TestReceiveStock(t *testing.T) {
	receive := func(q int64) domain.ReceiveStock { return domain.ReceiveStock{SKU: sku, Quantity: q, At: now} }
	receivePO := func(n, q int64) domain.ReceiveStock {
		return domain.ReceiveStock{SKU: sku, Quantity: q, PurchaseOrderID: domain.PurchaseOrderID(sku, n), At: now}
	}
	runScenarios(t, domain.EvolveStock, domain.DecideReceiveStock, []scenario[domain.ReceiveStock]{
		{name: "the first receipt creates the SKU", when: receive(10), then: events(received(10))},
		{
			name:  "arriving stock fills the oldest backorders first",
			given: events(received(2), allocated("A", 2, 2, 0), allocated("B", 3, 0, 3), allocated("C", 2, 0, 2), allocated("D", 1, 0, 1)),
			when:  receive(4),
			then:  events(received(4), filled("B", 3), filled("C", 1)),
		},
		{
			name:  "what the backorders do not take stays available",
			given: events(received(1), allocated("A", 3, 1, 2)),
			when:  receive(5),
			then:  events(received(5), filled("A", 2)),
		},
		{
			name:  "receiving a purchase order lowers incoming and raises no second one",
			given: events(received(5), policySet(10, 20), requested(1, 20)),
			when:  receivePO(1, 20),
			then:  events(receivedPO(1, 20)),
		},
		{
			name:  "a purchase order received into stock twice records nothing",
			given: events(received(5), policySet(10, 20), requested(1, 20), receivedPO(1, 20)),
			when:  receivePO(1, 20),
		},
		{
			// Reserving 10 of 10 raised PO 1 (8); a backorder of 20 raised PO 2 for the
			// forecast 0 + 8 − 20 = −12 to reach 5: 17. PO 1 arriving feeds the backorder
			// and leaves the forecast at 0 + 17 − 12 = 5, so nothing more is ordered.
			name: "a purchase order feeds the backorders without reordering the same shortfall",
			given: events(received(10), policySet(5, 8), allocated("A", 10, 10, 0), requested(1, 8),
				allocated("B", 20, 0, 20), requested(2, 17)),
			when: receivePO(1, 8),
			then: events(receivedPO(1, 8), filled("B", 8)),
		},
		{name: "quantity zero", when: receive(0), err: domain.ErrInvalidInput, field: "quantity"},
		{name: "quantity negative", when: receive(-3), err: domain.ErrInvalidInput, field: "quantity"},
		{name: "sku shape", when: domain.ReceiveStock{SKU: "SKU 1", Quantity: 1}, err: domain.ErrInvalidInput, field: "sku"},
		{name: "reference too long", when: domain.ReceiveStock{SKU: sku, Quantity: 1, Reference: strings.Repeat("r", 201)}, err: domain.ErrInvalidInput, field: "reference"},
		{name: "on hand beyond int64", given: events(received(math.MaxInt64)), when: receive(1), err: domain.ErrAmountOverflow},
		{name: "up to the largest quantity", when: receive(domain.MaxQuantity), then: events(received(domain.MaxQuantity))},
		{name: "not beyond it", when: receive(domain.MaxQuantity + 1), err: domain.ErrInvalidInput, field: "quantity"},
		{
			// A purchase order is sized by the shortfall, which many backorders can take
			// past the bound; the automation's receipt of it must not be refused.
			name:  "a purchase order beyond the largest quantity is received",
			given: events(received(1), policySet(0, 1), requested(1, 3*domain.MaxQuantity)),
			when:  receivePO(1, 3*domain.MaxQuantity),
			then:  events(receivedPO(1, 3*domain.MaxQuantity)),
		},
	})
}

func TestAdjustStock(t *testing.T) {
	adjust := func(delta int64) domain.AdjustStock {
		return domain.AdjustStock{SKU: sku, Delta: delta, Reason: "count", At: now}
	}
	runScenarios(t, domain.EvolveStock, domain.DecideAdjustStock, []scenario[domain.AdjustStock]{
		{name: "a count finds more", given: events(received(5)), when: adjust(3), then: events(adjusted(3))},
		{name: "down to exactly what is reserved", given: events(received(5), allocated("A", 3, 3, 0)), when: adjust(-2), then: events(adjusted(-2))},
		{name: "never below what is reserved", given: events(received(5), allocated("A", 3, 3, 0)), when: adjust(-3), err: domain.ErrInsufficientStock},
		{name: "never below zero", given: events(received(5)), when: adjust(-6), err: domain.ErrInsufficientStock},
		{
			name:  "found units fill the oldest backorders first",
			given: events(received(2), allocated("A", 5, 2, 3), allocated("B", 2, 0, 2)),
			when:  adjust(4),
			then:  events(adjusted(4), filled("A", 3), filled("B", 1)),
		},
		{
			name:  "a loss that drops the forecast below the reorder point reorders the reorder quantity",
			given: events(received(10), policySet(5, 8)),
			when:  adjust(-7),
			then:  events(adjusted(-7), requested(1, 8)),
		},
		{
			name:  "a deeper shortfall reorders up to the reorder point",
			given: events(received(100), policySet(50, 8)),
			when:  adjust(-90),
			then:  events(adjusted(-90), requested(1, 40)),
		},
		{
			name:  "an open purchase order counts as incoming",
			given: events(received(10), policySet(5, 8), adjusted(-7), requested(1, 8)),
			when:  adjust(-3),
			then:  events(adjusted(-3)),
		},
		{name: "unknown SKU", when: adjust(1), err: domain.ErrSKUNotFound},
		{name: "delta zero", given: events(received(5)), when: adjust(0), err: domain.ErrInvalidInput, field: "delta"},
		{name: "reason blank", given: events(received(5)), when: domain.AdjustStock{SKU: sku, Delta: 1, Reason: " "}, err: domain.ErrInvalidInput, field: "reason"},
		{name: "reason too long", given: events(received(5)), when: domain.AdjustStock{SKU: sku, Delta: 1, Reason: strings.Repeat("r", 501)}, err: domain.ErrInvalidInput, field: "reason"},
		{name: "sku shape", when: domain.AdjustStock{SKU: "", Delta: 1, Reason: "x"}, err: domain.ErrInvalidInput, field: "sku"},
		{name: "on hand beyond int64", given: events(received(math.MaxInt64)), when: adjust(1), err: domain.ErrAmountOverflow},
		{name: "delta beyond the largest quantity", given: events(received(5)), when: adjust(domain.MaxQuantity + 1), err: domain.ErrInvalidInput, field: "delta"},
		{name: "negative delta beyond the largest quantity", given: events(received(5)), when: adjust(-domain.MaxQuantity - 1), err: domain.ErrInvalidInput, field: "delta"},
	})
}

func TestSetReplenishmentPolicy(t *testing.T) {
	set := func(reorderPoint, reorderQuantity int64) domain.SetReplenishmentPolicy {
		return domain.SetReplenishmentPolicy{SKU: sku, ReorderPoint: reorderPoint, ReorderQuantity: reorderQuantity, Supplier: "ACME", At: now}
	}
	runScenarios(t, domain.EvolveStock, domain.DecideSetReplenishmentPolicy, []scenario[domain.SetReplenishmentPolicy]{
		{name: "above the reorder point only sets it", given: events(received(10)), when: set(5, 8), then: events(policySet(5, 8))},
		{name: "at the reorder point is not below it", given: events(received(5)), when: set(5, 8), then: events(policySet(5, 8))},
		{name: "below the reorder point reorders at once", given: events(received(3)), when: set(5, 8), then: events(policySet(5, 8), requested(1, 8))},
		{
			name:  "backorders count against the forecast",
			given: events(received(1), allocated("A", 4, 1, 3)),
			when:  set(2, 1),
			then:  events(policySet(2, 1), requested(1, 5)),
		},
		{name: "the same policy again records nothing", given: events(received(10), policySet(5, 8)), when: set(5, 8)},
		{name: "the same policy with a purchase order open raises no second", given: events(received(3), policySet(5, 8), requested(1, 8)), when: set(5, 8)},
		{
			name:  "a higher reorder point orders only the new shortfall",
			given: events(received(3), policySet(5, 10), requested(1, 10)),
			when:  set(20, 5),
			then:  events(policySet(20, 5), requested(2, 7)),
		},
		{name: "unknown SKU", when: set(5, 8), err: domain.ErrSKUNotFound},
		{name: "reorder point negative", given: events(received(3)), when: set(-1, 8), err: domain.ErrInvalidInput, field: "reorder_point"},
		{name: "reorder quantity zero", given: events(received(3)), when: set(5, 0), err: domain.ErrInvalidInput, field: "reorder_quantity"},
		{name: "reorder point beyond the largest quantity", given: events(received(3)), when: set(domain.MaxQuantity+1, 8), err: domain.ErrInvalidInput, field: "reorder_point"},
		{name: "reorder quantity beyond the largest quantity", given: events(received(3)), when: set(5, domain.MaxQuantity+1), err: domain.ErrInvalidInput, field: "reorder_quantity"},
		{name: "supplier blank", given: events(received(3)), when: domain.SetReplenishmentPolicy{SKU: sku, ReorderQuantity: 1}, err: domain.ErrInvalidInput, field: "supplier"},
	})
}

func TestReserveStock(t *testing.T) {
	reserve := func(order string, q int64) domain.ReserveStock {
		return domain.ReserveStock{SKU: sku, OrderID: order, Quantity: q, At: now}
	}
	runScenarios(t, domain.EvolveStock, domain.DecideReserveStock, []scenario[domain.ReserveStock]{
		{name: "reserves what is available", given: events(received(10)), when: reserve("A", 4), then: events(allocated("A", 4, 4, 0))},
		{name: "all that is available", given: events(received(4)), when: reserve("A", 4), then: events(allocated("A", 4, 4, 0))},
		{name: "backorders the shortfall", given: events(received(3)), when: reserve("A", 5), then: events(allocated("A", 5, 3, 2))},
		{name: "nothing on hand backorders it all", given: events(received(3), allocated("A", 3, 3, 0)), when: reserve("B", 2), then: events(allocated("B", 2, 0, 2))},
		{
			name:  "a later order queues behind earlier backorders",
			given: events(received(3), allocated("A", 5, 3, 2)),
			when:  reserve("B", 1),
			then:  events(allocated("B", 1, 0, 1)),
		},
		{name: "the same order asking again records nothing", given: events(received(10), allocated("A", 4, 4, 0)), when: reserve("A", 4)},
		{name: "asking again after a backorder records nothing", given: events(received(1), allocated("A", 4, 1, 3)), when: reserve("A", 4)},
		{name: "an order released before it asked is not served", given: events(received(10), released("A", 0, 0)), when: reserve("A", 4)},
		{
			name:  "a reservation that drops the forecast reorders",
			given: events(received(10), policySet(5, 8)),
			when:  reserve("A", 7),
			then:  events(allocated("A", 7, 7, 0), requested(1, 8)),
		},
		{
			name:  "a backorder reorders up to the reorder point",
			given: events(received(2), policySet(2, 5)),
			when:  reserve("A", 10),
			then:  events(allocated("A", 10, 2, 8), requested(1, 10)),
		},
		{
			name:  "an open purchase order that covers the forecast raises no second",
			given: events(received(10), policySet(5, 8), allocated("A", 7, 7, 0), requested(1, 8)),
			when:  reserve("B", 3),
			then:  events(allocated("B", 3, 3, 0)),
		},
		{name: "unknown SKU", when: reserve("A", 1), err: domain.ErrSKUNotFound},
		{name: "quantity zero", given: events(received(3)), when: reserve("A", 0), err: domain.ErrInvalidInput, field: "quantity"},
		{name: "order_id shape", given: events(received(3)), when: reserve("A/1", 1), err: domain.ErrInvalidInput, field: "order_id"},
	})
}

func TestReleaseStock(t *testing.T) {
	release := func(order string) domain.ReleaseStock { return domain.ReleaseStock{SKU: sku, OrderID: order, At: now} }
	runScenarios(t, domain.EvolveStock, domain.DecideReleaseStock, []scenario[domain.ReleaseStock]{
		{
			name:  "freed units go to the oldest backorders",
			given: events(received(5), allocated("A", 5, 5, 0), allocated("B", 3, 0, 3), allocated("C", 4, 0, 4)),
			when:  release("A"),
			then:  events(released("A", 5, 0), filled("B", 3), filled("C", 2)),
		},
		{
			name:  "a backordered order leaves the queue",
			given: events(received(2), allocated("A", 2, 2, 0), allocated("B", 3, 0, 3), allocated("C", 1, 0, 1)),
			when:  release("B"),
			then:  events(released("B", 0, 3)),
		},
		{
			name:  "reserved and backordered together, the next in line is served",
			given: events(received(2), allocated("A", 5, 2, 3), allocated("B", 1, 0, 1)),
			when:  release("A"),
			then:  events(released("A", 2, 3), filled("B", 1)),
		},
		{
			name:  "filled backorders are released too",
			given: events(received(1), allocated("A", 3, 1, 2), received(1), filled("A", 1)),
			when:  release("A"),
			then:  events(released("A", 2, 1)),
		},
		{
			name:  "a release before the request is remembered",
			given: events(received(5)),
			when:  release("A"),
			then:  events(released("A", 0, 0)),
		},
		{name: "a second release records nothing", given: events(received(5), allocated("A", 5, 5, 0), released("A", 5, 0)), when: release("A")},
		{name: "nothing left to release after shipment", given: events(received(5), allocated("A", 5, 5, 0), stockShipped("A", 5)), when: release("A")},
		{name: "an unknown SKU has nothing to release", when: release("A")},
	})
}

func TestShipStock(t *testing.T) {
	ship := func(order string, q int64) domain.ShipStock {
		return domain.ShipStock{SKU: sku, OrderID: order, Quantity: q, At: now}
	}
	runScenarios(t, domain.EvolveStock, domain.DecideShipStock, []scenario[domain.ShipStock]{
		{name: "ships what is reserved", given: events(received(5), allocated("A", 3, 3, 0)), when: ship("A", 3), then: events(stockShipped("A", 3))},
		{name: "filled backorders ship", given: events(received(1), allocated("A", 3, 1, 2), received(2), filled("A", 2)), when: ship("A", 3), then: events(stockShipped("A", 3))},
		{name: "not more than is reserved", given: events(received(2), allocated("A", 5, 2, 3)), when: ship("A", 5), err: domain.ErrNotReserved},
		{name: "not an order that reserved nothing", given: events(received(2)), when: ship("A", 1), err: domain.ErrNotReserved},
		{name: "a second shipment records nothing", given: events(received(5), allocated("A", 3, 3, 0), stockShipped("A", 3)), when: ship("A", 3)},
		{name: "quantity zero", given: events(received(5)), when: ship("A", 0), err: domain.ErrInvalidInput, field: "quantity"},
	})
}

func TestRestockReturn(t *testing.T) {
	restock := func(order, returnID string, q int64) domain.RestockReturn {
		return domain.RestockReturn{SKU: sku, OrderID: order, ReturnID: returnID, Quantity: q, At: now}
	}
	shippedA := events(received(2), allocated("A", 2, 2, 0), stockShipped("A", 2))
	runScenarios(t, domain.EvolveStock, domain.DecideRestockReturn, []scenario[domain.RestockReturn]{
		{name: "puts units back on hand", given: shippedA, when: restock("A", "R1", 1), then: events(restocked("A", "R1", 1))},
		{
			name:  "returned units fill the oldest backorders first",
			given: append(shippedA[:3:3], allocated("B", 3, 0, 3), allocated("C", 1, 0, 1)),
			when:  restock("A", "R1", 2),
			then:  events(restocked("A", "R1", 2), filled("B", 2)),
		},
		{name: "the same return again records nothing", given: append(shippedA[:3:3], restocked("A", "R1", 1)), when: restock("A", "R1", 1)},
		{
			// Return IDs are the order's own (the order stream keys them), so another order's
			// return of the same ID is a different return.
			name:  "another order's return with the same ID is restocked",
			given: events(received(4), allocated("A", 2, 2, 0), allocated("B", 2, 2, 0), stockShipped("A", 2), stockShipped("B", 2), restocked("A", "R1", 1)),
			when:  restock("B", "R1", 2),
			then:  events(restocked("B", "R1", 2)),
		},
		{name: "unknown SKU", when: restock("A", "R1", 1), err: domain.ErrSKUNotFound},
		{name: "quantity zero", given: shippedA, when: restock("A", "R1", 0), err: domain.ErrInvalidInput, field: "quantity"},
		{name: "on hand beyond int64", given: events(received(math.MaxInt64)), when: restock("A", "R1", 1), err: domain.ErrAmountOverflow},
	})
}

// TestStockFigures checks what the fold exposes to projections and process managers.
func TestStockFigures(t *testing.T) {
	s := fold(domain.EvolveStock, events(
		received(10), policySet(4, 6),
		allocated("A", 6, 6, 0),
		allocated("B", 7, 4, 3), requested(1, 7), // forecast 0 + 0 − 3 below 4: order 7
		allocated("C", 2, 0, 2), requested(2, 6), // forecast 0 + 7 − 5 below 4: order 6
		stockShipped("A", 6),
		receivedPO(1, 7), filled("B", 3), filled("C", 2),
		restocked("A", "R1", 1),
	))
	// On hand 10 − 6 + 7 + 1 = 12; reserved B 7 + C 2 = 9; PO 2 still incoming.
	checks := []struct {
		name      string
		got, want any
	}{
		{"SKU", s.SKU, sku},
		{"Exists", s.Exists, true},
		{"OnHand", s.OnHand, int64(12)},
		{"Reserved", s.Reserved, int64(9)},
		{"Available", s.Available(), int64(3)},
		{"Backordered", s.Backordered(), int64(0)},
		{"Backorders", len(s.Backorders()), 0},
		{"Incoming", s.Incoming, int64(6)},
		{"Replenishments", s.Replenishments, int64(2)},
		{"ReservedFor A", s.ReservedFor("A"), int64(0)},
		{"ReservedFor B", s.ReservedFor("B"), int64(7)},
		{"ReservedFor C", s.ReservedFor("C"), int64(2)},
		{"LowStock", s.LowStock(), true},
		{"Policy", s.Policy, domain.ReplenishmentPolicy{ReorderPoint: 4, ReorderQuantity: 6, Supplier: "ACME"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	q := fold(domain.EvolveStock, events(received(2), allocated("A", 2, 2, 0), allocated("B", 3, 0, 3), allocated("C", 1, 0, 1), requested(1, 8), released("B", 0, 3)))
	if got, want := q.Backorders(), []domain.Backorder{{OrderID: "C", Quantity: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("queue after B's release = %v, want %v", got, want)
	}
	if q.Incoming != 8 || q.LowStock() {
		t.Errorf("incoming %d low %v, want 8 and false (no policy)", q.Incoming, q.LowStock())
	}
	// The queue handed out is a copy: changing it must not change the stock.
	q.Backorders()[0].Quantity = 99
	if q.Backordered() != 1 {
		t.Errorf("Backorders exposed the state's own queue")
	}
}

// TestStockFiguresStayExactAtTheBound backorders the largest quantity many times over on a
// SKU that reorders the largest quantity: the sums and the replenishment arithmetic on them
// must stay exact, each shortfall ordered once.
func TestStockFiguresStayExactAtTheBound(t *testing.T) {
	s := fold(domain.EvolveStock, events(received(1), policySet(domain.MaxQuantity, domain.MaxQuantity)))
	orders := 50
	for i := range orders {
		got, err := domain.DecideReserveStock(s, domain.ReserveStock{SKU: sku, OrderID: fmt.Sprintf("O%d", i), Quantity: domain.MaxQuantity, At: now})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			s = domain.EvolveStock(s, e)
		}
		forecast := s.Available() + s.Incoming - s.Backordered()
		if forecast < domain.MaxQuantity || s.Incoming <= 0 || s.Backordered() <= 0 {
			t.Fatalf("after %d orders: forecast %d, incoming %d, backordered %d", i+1, forecast, s.Incoming, s.Backordered())
		}
	}
	if want := int64(orders)*domain.MaxQuantity - 1; s.Backordered() != want {
		t.Errorf("backordered %d, want %d", s.Backordered(), want)
	}
}

func TestPurchaseOrderID(t *testing.T) {
	if got := domain.PurchaseOrderID("SKU1", 3); got != "PO-SKU1-3" {
		t.Errorf("PurchaseOrderID = %q", got)
	}
	long := strings.Repeat("s", 64)
	a, b := domain.PurchaseOrderID(long, 1), domain.PurchaseOrderID(long, 2)
	if !domain.ValidID(a) || !domain.ValidID(b) || a == b || a != domain.PurchaseOrderID(long, 1) {
		t.Errorf("long SKU purchase order IDs %q, %q: want valid, distinct, deterministic", a, b)
	}
	if other := domain.PurchaseOrderID(strings.Repeat("t", 64), 1); other == a {
		t.Errorf("two long SKUs share purchase order ID %q", a)
	}
}

// The adjustment bound at its edges: ±MaxQuantity is a count, one more either way is refused.
func TestAdjustStockBound(t *testing.T) {
	stock := fold(domain.EvolveStock, events(received(domain.MaxQuantity)))
	for _, c := range []struct {
		delta int64
		ok    bool
	}{{domain.MaxQuantity, true}, {domain.MaxQuantity + 1, false}, {-domain.MaxQuantity, true}, {-domain.MaxQuantity - 1, false}} {
		_, err := domain.DecideAdjustStock(stock, domain.AdjustStock{SKU: sku, Delta: c.delta, Reason: "count", At: now})
		if refused := err != nil && strings.Contains(err.Error(), "delta must"); refused == c.ok {
			t.Errorf("delta %d: %v; want accepted %v", c.delta, err, c.ok)
		}
	}
}

// LowStock at its edge: available equal to the reorder point is low; one more is not.
func TestLowStockAtTheReorderPoint(t *testing.T) {
	if s := fold(domain.EvolveStock, events(received(10), policySet(10, 5))); !s.LowStock() {
		t.Error("available 10 at reorder point 10 is not low")
	}
	if s := fold(domain.EvolveStock, events(received(11), policySet(10, 5))); s.LowStock() {
		t.Error("available 11 at reorder point 10 is low")
	}
}
