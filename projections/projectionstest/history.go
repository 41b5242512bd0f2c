package projectionstest

import (
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/historygen"
)

// Day returns the time hh:mm on day d (1..5) of the scripted history, March 2025, UTC.
func Day(d, hh, mm int) time.Time { return time.Date(2025, time.March, d, hh, mm, 0, 0, time.UTC) }

// ScriptedHistory is five days of a small shop, as the write side would have logged them:
//
//   - alice and bob register; bob becomes "Robert Baker" on day 2.
//   - SKU-A (10 on hand, reorder at 5 by 20 from Acme) and SKU-B (2 on hand, reorder at 2 by
//     10 from Bolt).
//   - order-1 (alice, web, USD): 3 × SKU-A at 1000 + 1 × SKU-B at 500, 10 % tax = 3850.
//     Reserved at once (SKU-B's reservation raises PO-SKU-B-1), invoiced INV-1, paid on day 2,
//     shipped, delivered and completed on day 3; on day 4 one SKU-A comes back: credit note
//     CN-2 of 1100 and a refund of 1100.
//   - order-2 (bob, phone, USD): 10 × SKU-A at 200, no tax = 2000. Seven are reserved and
//     three backordered on day 2 (raising PO-SKU-A-1); the purchase order arrives on day 4,
//     fills the backorder, and the order is confirmed and invoiced INV-3; 500 is paid on day 5.
//   - order-3 (alice, store, EUR): 1 × SKU-B at 700, 20 % tax = 840, invoiced INV-2 and
//     cancelled on day 3, reversed by credit note CN-1.
func ScriptedHistory() []historygen.Record {
	var h []historygen.Record
	add := func(stream string, events ...domain.Event) {
		for _, e := range events {
			h = append(h, historygen.Record{Stream: stream, Event: e})
		}
	}
	const (
		alice = "alice"
		bob   = "bob"
		skuA  = "SKU-A"
		skuB  = "SKU-B"
		poA   = "PO-SKU-A-1"
		poB   = "PO-SKU-B-1"
	)
	o1, o2, o3 := domain.OrderStream("order-1"), domain.OrderStream("order-2"), domain.OrderStream("order-3")
	stockA, stockB := domain.StockStream(skuA), domain.StockStream(skuB)

	// Day 1.
	add(domain.CustomerStream(alice), domain.CustomerRegistered{CustomerID: alice, Name: "Alice Archer", Email: "alice@example.com", Phone: "+1 555 0100", PaymentPreference: "card", RegisteredAt: Day(1, 9, 0)})
	add(domain.CustomerStream(bob), domain.CustomerRegistered{CustomerID: bob, Name: "Bob Baker", Email: "bob@example.com", PaymentPreference: "invoice", RegisteredAt: Day(1, 9, 1)})
	add(stockA,
		domain.StockReceived{SKU: skuA, Quantity: 10, Reference: "opening", ReceivedAt: Day(1, 9, 10)},
		domain.ReplenishmentPolicySet{SKU: skuA, ReorderPoint: 5, ReorderQuantity: 20, Supplier: "Acme", SetAt: Day(1, 9, 11)})
	add(stockB,
		domain.StockReceived{SKU: skuB, Quantity: 2, Reference: "opening", ReceivedAt: Day(1, 9, 12)},
		domain.ReplenishmentPolicySet{SKU: skuB, ReorderPoint: 2, ReorderQuantity: 10, Supplier: "Bolt", SetAt: Day(1, 9, 13)})
	t := Day(1, 10, 0)
	add(o1, domain.OrderPlaced{
		OrderID: "order-1", CustomerID: alice, Channel: "web", Currency: "USD",
		Lines:      []domain.OrderLine{{SKU: skuA, Quantity: 3, UnitPrice: 1000}, {SKU: skuB, Quantity: 1, UnitPrice: 500}},
		TaxRateBps: 1000, Subtotal: 3500, Tax: 350, Total: 3850, PaymentMethod: "card", PlacedAt: t,
	})
	add(stockA, domain.StockAllocated{SKU: skuA, OrderID: "order-1", Requested: 3, Reserved: 3, AllocatedAt: t})
	add(o1, domain.OrderLineAllocated{OrderID: "order-1", SKU: skuA, Reserved: 3, AllocatedAt: t})
	add(stockB,
		domain.StockAllocated{SKU: skuB, OrderID: "order-1", Requested: 1, Reserved: 1, AllocatedAt: t},
		domain.ReplenishmentRequested{SKU: skuB, PurchaseOrderID: poB, Supplier: "Bolt", Quantity: 10, RequestedAt: t})
	add(domain.PurchaseOrderStream(poB), domain.PurchaseOrderRaised{PurchaseOrderID: poB, SKU: skuB, Supplier: "Bolt", Quantity: 10, RaisedAt: t})
	add(o1,
		domain.OrderLineAllocated{OrderID: "order-1", SKU: skuB, Reserved: 1, AllocatedAt: t},
		domain.OrderConfirmed{OrderID: "order-1", ConfirmedAt: t})
	add(domain.InvoiceSeriesStream, domain.InvoiceNumberAssigned{Number: 1, OrderID: "order-1", AssignedAt: Day(1, 10, 1)})
	add(o1, domain.OrderInvoiced{OrderID: "order-1", CustomerID: alice, InvoiceNumber: "INV-1", Subtotal: 3500, Tax: 350, Total: 3850, InvoicedAt: Day(1, 10, 1)})

	// Day 2.
	robert := "Robert Baker"
	add(domain.CustomerStream(bob), domain.CustomerDetailsChanged{CustomerID: bob, Name: &robert, ChangedAt: Day(2, 8, 0)})
	add(o1, domain.PaymentReceived{OrderID: "order-1", PaymentID: "pay-1", Amount: 3850, Method: "card", ReceivedAt: Day(2, 9, 0)})
	t = Day(2, 11, 0)
	add(o2, domain.OrderPlaced{
		OrderID: "order-2", CustomerID: bob, Channel: "phone", Currency: "USD",
		Lines: []domain.OrderLine{{SKU: skuA, Quantity: 10, UnitPrice: 200}}, Subtotal: 2000, Total: 2000, PlacedAt: t,
	})
	add(stockA,
		domain.StockAllocated{SKU: skuA, OrderID: "order-2", Requested: 10, Reserved: 7, Backordered: 3, AllocatedAt: t},
		domain.ReplenishmentRequested{SKU: skuA, PurchaseOrderID: poA, Supplier: "Acme", Quantity: 20, RequestedAt: t})
	add(domain.PurchaseOrderStream(poA), domain.PurchaseOrderRaised{PurchaseOrderID: poA, SKU: skuA, Supplier: "Acme", Quantity: 20, RaisedAt: t})
	add(o2,
		domain.OrderLineAllocated{OrderID: "order-2", SKU: skuA, Reserved: 7, Backordered: 3, AllocatedAt: t},
		domain.OrderBackordered{OrderID: "order-2", BackorderedAt: t})

	// Day 3.
	t = Day(3, 9, 0)
	add(o1, domain.OrderShipped{OrderID: "order-1", Carrier: "DHL", TrackingNumber: "TRK-1", Lines: []domain.ShippedLine{{SKU: skuA, Quantity: 3}, {SKU: skuB, Quantity: 1}}, ShippedAt: t})
	add(stockA, domain.StockShipped{SKU: skuA, OrderID: "order-1", Quantity: 3, ShippedAt: t})
	add(stockB, domain.StockShipped{SKU: skuB, OrderID: "order-1", Quantity: 1, ShippedAt: t})
	t = Day(3, 14, 0)
	add(o3, domain.OrderPlaced{
		OrderID: "order-3", CustomerID: alice, Channel: "store", Currency: "EUR",
		Lines:      []domain.OrderLine{{SKU: skuB, Quantity: 1, UnitPrice: 700}},
		TaxRateBps: 2000, Subtotal: 700, Tax: 140, Total: 840, PlacedAt: t,
	})
	add(stockB, domain.StockAllocated{SKU: skuB, OrderID: "order-3", Requested: 1, Reserved: 1, AllocatedAt: t})
	add(o3,
		domain.OrderLineAllocated{OrderID: "order-3", SKU: skuB, Reserved: 1, AllocatedAt: t},
		domain.OrderConfirmed{OrderID: "order-3", ConfirmedAt: t})
	add(domain.InvoiceSeriesStream, domain.InvoiceNumberAssigned{Number: 2, OrderID: "order-3", AssignedAt: Day(3, 14, 1)})
	add(o3, domain.OrderInvoiced{OrderID: "order-3", CustomerID: alice, InvoiceNumber: "INV-2", Subtotal: 700, Tax: 140, Total: 840, InvoicedAt: Day(3, 14, 1)})
	t = Day(3, 16, 0)
	add(o3, domain.OrderCancelled{OrderID: "order-3", Reason: "customer changed their mind", Lines: []domain.ShippedLine{{SKU: skuB, Quantity: 1}}, Invoiced: true, CancelledAt: t})
	add(stockB, domain.StockReleased{SKU: skuB, OrderID: "order-3", Reserved: 1, ReleasedAt: t})
	add(domain.CreditNoteSeriesStream, domain.CreditNoteNumberAssigned{Number: 1, OrderID: "order-3", Reason: domain.CreditForCancellation, AssignedAt: Day(3, 16, 1)})
	add(o3, domain.CreditNoteIssued{OrderID: "order-3", CustomerID: alice, CreditNoteNumber: "CN-1", Reason: domain.CreditForCancellation, Net: 700, Tax: 140, Total: 840, IssuedAt: Day(3, 16, 1)})
	add(o1,
		domain.OrderDelivered{OrderID: "order-1", DeliveredAt: Day(3, 18, 0)},
		domain.OrderCompleted{OrderID: "order-1", CompletedAt: Day(3, 18, 0)})

	// Day 4.
	t = Day(4, 10, 0)
	add(domain.PurchaseOrderStream(poA), domain.PurchaseOrderReceived{PurchaseOrderID: poA, SKU: skuA, Quantity: 20, ReceivedAt: t})
	add(stockA,
		domain.StockReceived{SKU: skuA, Quantity: 20, Reference: poA, PurchaseOrderID: poA, ReceivedAt: t},
		domain.BackorderFilled{SKU: skuA, OrderID: "order-2", Quantity: 3, FilledAt: t})
	add(o2,
		domain.OrderLineAllocated{OrderID: "order-2", SKU: skuA, Reserved: 3, Backordered: -3, AllocatedAt: t},
		domain.OrderConfirmed{OrderID: "order-2", ConfirmedAt: t})
	add(domain.InvoiceSeriesStream, domain.InvoiceNumberAssigned{Number: 3, OrderID: "order-2", AssignedAt: Day(4, 10, 1)})
	add(o2, domain.OrderInvoiced{OrderID: "order-2", CustomerID: bob, InvoiceNumber: "INV-3", Subtotal: 2000, Total: 2000, InvoicedAt: Day(4, 10, 1)})
	t = Day(4, 15, 0)
	add(o1, domain.OrderReturned{OrderID: "order-1", ReturnID: "ret-1", Lines: []domain.ReturnedLine{{SKU: skuA, Quantity: 1, UnitPrice: 1000}}, Reason: "too big", Net: 1000, Tax: 100, Total: 1100, ReturnedAt: t})
	add(stockA, domain.StockRestocked{SKU: skuA, OrderID: "order-1", ReturnID: "ret-1", Quantity: 1, RestockedAt: t})
	add(domain.CreditNoteSeriesStream, domain.CreditNoteNumberAssigned{Number: 2, OrderID: "order-1", Reason: domain.CreditForReturn, ReturnID: "ret-1", AssignedAt: Day(4, 15, 1)})
	add(o1,
		domain.CreditNoteIssued{OrderID: "order-1", CustomerID: alice, CreditNoteNumber: "CN-2", Reason: domain.CreditForReturn, ReturnID: "ret-1", Net: 1000, Tax: 100, Total: 1100, IssuedAt: Day(4, 15, 1)},
		domain.RefundIssued{OrderID: "order-1", RefundID: "ref-1", Amount: 1100, RefundedAt: Day(4, 15, 2)})

	// Day 5.
	add(o2, domain.PaymentReceived{OrderID: "order-2", PaymentID: "pay-2", Amount: 500, Method: "bank_transfer", ReceivedAt: Day(5, 12, 0)})
	return h
}
