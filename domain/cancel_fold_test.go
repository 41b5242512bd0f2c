package domain_test

import (
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
)

// A cancelled order's lines hold nothing: the cancellation released their reservation and
// backorder, so as-of documents and the projection show 0 and 0.
func TestCancelledOrderLinesHoldNothing(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var o domain.Order
	for _, e := range []domain.Event{
		domain.OrderPlaced{OrderID: "o", CustomerID: "c", Channel: "web", Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "A", Quantity: 5, UnitPrice: 1}}, Subtotal: 5, Total: 5, PlacedAt: at},
		domain.OrderLineAllocated{OrderID: "o", SKU: "A", Reserved: 3, Backordered: 2, AllocatedAt: at},
		domain.OrderBackordered{OrderID: "o", BackorderedAt: at},
	} {
		o = domain.EvolveOrder(o, e)
	}
	if l := o.Lines[0]; l.Reserved != 3 || l.Backordered != 2 {
		t.Fatalf("before cancelling: reserved %d, backordered %d; want 3 and 2", l.Reserved, l.Backordered)
	}
	o = domain.EvolveOrder(o, domain.OrderCancelled{OrderID: "o", Reason: "r", CancelledAt: at})
	if l := o.Lines[0]; l.Reserved != 0 || l.Backordered != 0 || o.Status != domain.StatusCancelled {
		t.Fatalf("after cancelling: %s, reserved %d, backordered %d; want cancelled, 0 and 0", o.Status, l.Reserved, l.Backordered)
	}
}
