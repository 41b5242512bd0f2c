package domain_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
)

// The order tables follow order O1: 2 × SKU1 at 10.00 and 1 × SKU2 at 5.00, 20 % tax, so
// subtotal 2500, tax 500, total 3000.
var placed = domain.OrderPlaced{
	OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR",
	Lines:      []domain.OrderLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}, {SKU: "SKU2", Quantity: 1, UnitPrice: 500}},
	TaxRateBps: 2000, Subtotal: 2500, Tax: 500, Total: 3000, PlacedAt: now,
}

func lineAllocated(sku string, reserved, backordered int64) domain.OrderLineAllocated {
	return domain.OrderLineAllocated{OrderID: "O1", SKU: sku, Reserved: reserved, Backordered: backordered, AllocatedAt: now}
}

var (
	orderConfirmed   = domain.OrderConfirmed{OrderID: "O1", ConfirmedAt: now}
	orderBackordered = domain.OrderBackordered{OrderID: "O1", BackorderedAt: now}
	orderShipped     = domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 2}, {SKU: "SKU2", Quantity: 1}}, ShippedAt: now}
	orderDelivered   = domain.OrderDelivered{OrderID: "O1", DeliveredAt: now}
	orderCompleted   = domain.OrderCompleted{OrderID: "O1", CompletedAt: now}
)

func invoiced(number string) domain.OrderInvoiced {
	return domain.OrderInvoiced{OrderID: "O1", CustomerID: "C1", InvoiceNumber: number, Subtotal: 2500, Tax: 500, Total: 3000, InvoicedAt: now}
}

func paid(id string, amount int64) domain.PaymentReceived {
	return domain.PaymentReceived{OrderID: "O1", PaymentID: id, Amount: amount, Method: "card", ReceivedAt: now}
}

func refunded(id string, amount int64) domain.RefundIssued {
	return domain.RefundIssued{OrderID: "O1", RefundID: id, Amount: amount, RefundedAt: now}
}

func cancelled(wasInvoiced bool) domain.OrderCancelled {
	return domain.OrderCancelled{OrderID: "O1", Reason: "changed mind", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 2}, {SKU: "SKU2", Quantity: 1}}, Invoiced: wasInvoiced, CancelledAt: now}
}

// returnedSKU2 returns the one SKU2: net 500, tax 100, total 600.
var returnedSKU2 = domain.OrderReturned{
	OrderID: "O1", ReturnID: "R1", Lines: []domain.ReturnedLine{{SKU: "SKU2", Quantity: 1, UnitPrice: 500}},
	Reason: "broken", Net: 500, Tax: 100, Total: 600, ReturnedAt: now,
}

func creditNote(number, reason, returnID string, net, tax int64) domain.CreditNoteIssued {
	return domain.CreditNoteIssued{OrderID: "O1", CustomerID: "C1", CreditNoteNumber: number, Reason: reason, ReturnID: returnID, Net: net, Tax: tax, Total: net + tax, IssuedAt: now}
}

// history builds an order's stream from the stages it went through.
func history(stages ...[]domain.Event) []domain.Event {
	var all []domain.Event
	for _, s := range stages {
		all = append(all, s...)
	}
	return all
}

var (
	confirmedO = events(placed, lineAllocated("SKU1", 2, 0), lineAllocated("SKU2", 1, 0), orderConfirmed)
	invoicedO  = history(confirmedO, events(invoiced("INV-1")))
	shippedO   = history(invoicedO, events(orderShipped))
	deliveredO = history(shippedO, events(orderDelivered))
	// backorderedO has SKU1 short by one.
	backorderedO = events(placed, lineAllocated("SKU1", 1, 1), lineAllocated("SKU2", 1, 0), orderBackordered)
)

func TestPlaceOrder(t *testing.T) {
	valid := domain.PlaceOrder{
		OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR",
		Lines:      []domain.OrderLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}, {SKU: "SKU2", Quantity: 1, UnitPrice: 500}},
		TaxRateBps: 2000, At: now,
	}
	with := func(change func(*domain.PlaceOrder)) domain.PlaceOrder {
		c := valid
		c.Lines = append([]domain.OrderLine(nil), valid.Lines...)
		change(&c)
		return c
	}
	oneLine := func(quantity, price, bps int64) func(*domain.PlaceOrder) {
		return func(c *domain.PlaceOrder) {
			c.Lines, c.TaxRateBps = []domain.OrderLine{{SKU: "SKU1", Quantity: quantity, UnitPrice: price}}, bps
		}
	}
	placedWith := func(quantity, price, bps, subtotal, tax int64) domain.OrderPlaced {
		p := placed
		p.Lines, p.TaxRateBps = []domain.OrderLine{{SKU: "SKU1", Quantity: quantity, UnitPrice: price}}, bps
		p.Subtotal, p.Tax, p.Total = subtotal, tax, subtotal+tax
		return p
	}
	manyLines := make([]domain.OrderLine, domain.MaxOrderLines+1)
	for i := range manyLines {
		manyLines[i] = domain.OrderLine{SKU: fmt.Sprintf("S%d", i), Quantity: 1, UnitPrice: 1}
	}
	runScenarios(t, domain.EvolveOrder, domain.DecidePlaceOrder, []scenario[domain.PlaceOrder]{
		{name: "places with subtotal, tax and total", when: valid, then: events(placed)},
		{name: "tax rounds half up", when: with(oneLine(1, 1005, 1000)), then: events(placedWith(1, 1005, 1000, 1005, 101))},
		{name: "tax rounds below half down", when: with(oneLine(1, 1004, 1000)), then: events(placedWith(1, 1004, 1000, 1004, 100))},
		{name: "no tax rate, no tax", when: with(oneLine(3, 333, 0)), then: events(placedWith(3, 333, 0, 999, 0))},
		{name: "free lines are allowed", when: with(oneLine(3, 0, 2000)), then: events(placedWith(3, 0, 2000, 0, 0))},
		{
			name: "optional details are kept",
			when: with(func(c *domain.PlaceOrder) { c.PaymentMethod, c.ShippingAddress = "card", "1 Main St" }),
			then: events(func() domain.OrderPlaced {
				p := placed
				p.PaymentMethod, p.ShippingAddress = "card", "1 Main St"
				return p
			}()),
		},
		{name: "an existing order is refused", given: events(placed), when: valid, err: domain.ErrOrderExists},
		{name: "order_id shape", when: with(func(c *domain.PlaceOrder) { c.OrderID = "O 1" }), err: domain.ErrInvalidInput, field: "order_id"},
		{name: "customer_id shape", when: with(func(c *domain.PlaceOrder) { c.CustomerID = "" }), err: domain.ErrInvalidInput, field: "customer_id"},
		{name: "channel", when: with(func(c *domain.PlaceOrder) { c.Channel = "fax" }), err: domain.ErrInvalidInput, field: "channel"},
		{name: "currency lower case", when: with(func(c *domain.PlaceOrder) { c.Currency = "eur" }), err: domain.ErrInvalidInput, field: "currency"},
		{name: "tax rate above 100 %", when: with(func(c *domain.PlaceOrder) { c.TaxRateBps = 10001 }), err: domain.ErrInvalidInput, field: "tax_rate_bps"},
		{name: "tax rate negative", when: with(func(c *domain.PlaceOrder) { c.TaxRateBps = -1 }), err: domain.ErrInvalidInput, field: "tax_rate_bps"},
		{name: "no lines", when: with(func(c *domain.PlaceOrder) { c.Lines = nil }), err: domain.ErrInvalidInput, field: "lines"},
		{name: "too many lines", when: with(func(c *domain.PlaceOrder) { c.Lines = manyLines }), err: domain.ErrInvalidInput, field: "lines"},
		{name: "payment method too long", when: with(func(c *domain.PlaceOrder) { c.PaymentMethod = strings.Repeat("m", 41) }), err: domain.ErrInvalidInput, field: "payment_method"},
		{name: "shipping address too long", when: with(func(c *domain.PlaceOrder) { c.ShippingAddress = strings.Repeat("a", 1001) }), err: domain.ErrInvalidInput, field: "shipping_address"},
		{name: "line sku shape", when: with(func(c *domain.PlaceOrder) { c.Lines[1].SKU = "SKU 2" }), err: domain.ErrInvalidInput, field: "lines[1].sku"},
		{name: "a SKU on two lines", when: with(func(c *domain.PlaceOrder) { c.Lines[1].SKU = "SKU1" }), err: domain.ErrInvalidInput, field: "lines[1].sku"},
		{name: "line quantity zero", when: with(func(c *domain.PlaceOrder) { c.Lines[0].Quantity = 0 }), err: domain.ErrInvalidInput, field: "lines[0].quantity"},
		{name: "line price negative", when: with(func(c *domain.PlaceOrder) { c.Lines[1].UnitPrice = -1 }), err: domain.ErrInvalidInput, field: "lines[1].unit_price"},
		{name: "quantity × price beyond int64", when: with(oneLine(math.MaxInt64/1000+1, 1000, 0)), err: domain.ErrAmountTooLarge, field: "lines[0]"},
		{name: "the largest unit price", when: with(oneLine(1, domain.MaxAmount, 0)), then: events(placedWith(1, domain.MaxAmount, 0, domain.MaxAmount, 0))},
		{name: "a unit price above the cap", when: with(oneLine(1, domain.MaxAmount+1, 0)), err: domain.ErrAmountTooLarge, field: "lines[0].unit_price"},
		{name: "a unit price far above the cap", when: with(oneLine(1, math.MaxInt64, 0)), err: domain.ErrAmountTooLarge, field: "lines[0].unit_price"},
		{name: "a line at the total's cap", when: with(oneLine(10, domain.MaxAmount, 0)), then: events(placedWith(10, domain.MaxAmount, 0, domain.MaxOrderTotal, 0))},
		{name: "a line above the total's cap", when: with(oneLine(11, domain.MaxAmount, 0)), err: domain.ErrAmountTooLarge, field: "lines[0]"},
		{name: "a line's product beyond int64", when: with(oneLine(domain.MaxQuantity, domain.MaxAmount, 0)), err: domain.ErrAmountTooLarge, field: "lines[0]"},
		{
			name: "a subtotal above the total's cap",
			when: with(func(c *domain.PlaceOrder) {
				c.Lines = []domain.OrderLine{{SKU: "A", Quantity: 5, UnitPrice: domain.MaxAmount}, {SKU: "B", Quantity: 5, UnitPrice: domain.MaxAmount}, {SKU: "C", Quantity: 1, UnitPrice: 1}}
			}),
			err: domain.ErrAmountTooLarge, field: "subtotal",
		},
		{name: "a total at the cap with tax", when: with(oneLine(5, domain.MaxAmount, 10000)), then: events(placedWith(5, domain.MaxAmount, 10000, 5*domain.MaxAmount, 5*domain.MaxAmount))},
		{name: "a total above the cap by its tax", when: with(oneLine(1, 5*domain.MaxAmount+1, 0)), err: domain.ErrAmountTooLarge, field: "lines[0].unit_price"},
		{name: "tax takes the total over the cap", when: with(oneLine(9, domain.MaxAmount, 1112)), err: domain.ErrAmountTooLarge, field: "total"},
		{name: "tax takes the total just to the cap", when: with(oneLine(9, domain.MaxAmount, 1111)), then: events(placedWith(9, domain.MaxAmount, 1111, 9*domain.MaxAmount, 999_900_000_000))},
		{name: "the largest quantity", when: with(oneLine(domain.MaxQuantity, 7, 0)), then: events(placedWith(domain.MaxQuantity, 7, 0, 7*domain.MaxQuantity, 0))},
		{name: "a free line beyond the largest quantity", when: with(oneLine(domain.MaxQuantity+1, 0, 0)), err: domain.ErrInvalidInput, field: "lines[0].quantity"},
		{name: "an unknown currency", when: with(func(c *domain.PlaceOrder) { c.Currency = "XYZ" }), err: domain.ErrInvalidInput, field: "currency"},
		{name: "a historic currency", when: with(func(c *domain.PlaceOrder) { c.Currency = "DEM" }), err: domain.ErrInvalidInput, field: "currency"},
		{name: "a currency of no digits", when: with(func(c *domain.PlaceOrder) { c.Currency = "JPY" }), then: events(func() domain.OrderPlaced { p := placed; p.Currency = "JPY"; return p }())},
		{name: "order_id starting with a dot", when: with(func(c *domain.PlaceOrder) { c.OrderID = ".." }), err: domain.ErrInvalidInput, field: "order_id"},
		{name: "order_id starting with a dash", when: with(func(c *domain.PlaceOrder) { c.OrderID = "-x" }), err: domain.ErrInvalidInput, field: "order_id"},
		{name: "a customer an older version named", when: with(func(c *domain.PlaceOrder) { c.CustomerID = "_c" }), then: events(func() domain.OrderPlaced { p := placed; p.CustomerID = "_c"; return p }())},
	})
}

func TestPlaceOrderKeepsItsOwnLines(t *testing.T) {
	cmd := domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}}, At: now}
	got, err := domain.DecidePlaceOrder(domain.Order{}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Lines[0].Quantity = 99
	if q := got[0].(domain.OrderPlaced).Lines[0].Quantity; q != 2 {
		t.Errorf("the recorded line changed with the caller's slice: quantity %d", q)
	}
}

func TestRecordLineAllocation(t *testing.T) {
	record := func(sku string, reserved, backordered int64) domain.RecordLineAllocation {
		return domain.RecordLineAllocation{OrderID: "O1", SKU: sku, Reserved: reserved, Backordered: backordered, At: now}
	}
	runScenarios(t, domain.EvolveOrder, domain.DecideRecordLineAllocation, []scenario[domain.RecordLineAllocation]{
		{name: "one line of two waits for the other", given: events(placed), when: record("SKU1", 2, 0), then: events(lineAllocated("SKU1", 2, 0))},
		{
			name:  "all lines reserved confirms",
			given: events(placed, lineAllocated("SKU1", 2, 0)),
			when:  record("SKU2", 1, 0),
			then:  events(lineAllocated("SKU2", 1, 0), orderConfirmed),
		},
		{
			name:  "a short line backorders once every line is decided",
			given: events(placed, lineAllocated("SKU2", 1, 0)),
			when:  record("SKU1", 1, 1),
			then:  events(lineAllocated("SKU1", 1, 1), orderBackordered),
		},
		{
			name:  "a short first line backorders when the last is reserved",
			given: events(placed, lineAllocated("SKU1", 0, 2)),
			when:  record("SKU2", 1, 0),
			then:  events(lineAllocated("SKU2", 1, 0), orderBackordered),
		},
		{name: "a short line alone waits for the others", given: events(placed), when: record("SKU1", 0, 2), then: events(lineAllocated("SKU1", 0, 2))},
		{
			name:  "a filled backorder confirms",
			given: backorderedO,
			when:  record("SKU1", 1, -1),
			then:  events(lineAllocated("SKU1", 1, -1), orderConfirmed),
		},
		{
			name:  "a partly filled backorder stays backordered",
			given: events(placed, lineAllocated("SKU1", 0, 2), lineAllocated("SKU2", 1, 0), orderBackordered),
			when:  record("SKU1", 1, -1),
			then:  events(lineAllocated("SKU1", 1, -1)),
		},
		{name: "a cancelled order ignores late news", given: history(backorderedO, events(cancelled(false))), when: record("SKU1", 1, -1)},
		{name: "a shipped order ignores late news", given: shippedO, when: record("SKU1", 1, -1)},
		{name: "unknown order", when: record("SKU1", 1, 0), err: domain.ErrOrderNotFound},
		{name: "a SKU the order does not have", given: events(placed), when: record("SKU9", 1, 0), err: domain.ErrInvalidInput, field: "sku"},
		{name: "more than the line", given: events(placed), when: record("SKU1", 2, 1), err: domain.ErrInvalidInput, field: "allocation"},
		{name: "a fill beyond the backorder", given: backorderedO, when: record("SKU1", 2, -2), err: domain.ErrInvalidInput, field: "allocation"},
	})
}

// TestRecordLineAllocations checks that allocations recorded together record, each apart,
// what they would one after another.
func TestRecordLineAllocations(t *testing.T) {
	record := func(sku string, reserved, backordered int64) domain.RecordLineAllocation {
		return domain.RecordLineAllocation{OrderID: "O1", SKU: sku, Reserved: reserved, Backordered: backordered, At: now}
	}
	together := func(lines ...domain.RecordLineAllocation) domain.RecordLineAllocations {
		return domain.RecordLineAllocations{Lines: lines}
	}
	// flat joins what each allocation records, to compare with a table's events; the split
	// is checked apart below.
	flat := func(o domain.Order, cmd domain.RecordLineAllocations) ([]domain.Event, error) {
		recorded, err := domain.DecideRecordLineAllocations(o, cmd)
		if err == nil && len(recorded) != len(cmd.Lines) {
			t.Fatalf("%d lists for %d allocations", len(recorded), len(cmd.Lines))
		}
		var all []domain.Event
		for _, r := range recorded {
			all = append(all, r...)
		}
		return all, err
	}
	runScenarios(t, domain.EvolveOrder, flat, []scenario[domain.RecordLineAllocations]{
		{name: "every line reserved at once confirms", given: events(placed), when: together(record("SKU1", 2, 0), record("SKU2", 1, 0)), then: events(lineAllocated("SKU1", 2, 0), lineAllocated("SKU2", 1, 0), orderConfirmed)},
		{name: "a short line among them backorders", given: events(placed), when: together(record("SKU2", 1, 0), record("SKU1", 1, 1)), then: events(lineAllocated("SKU2", 1, 0), lineAllocated("SKU1", 1, 1), orderBackordered)},
		{name: "one line of two waits for the other", given: events(placed), when: together(record("SKU1", 2, 0)), then: events(lineAllocated("SKU1", 2, 0))},
		{name: "the last line with a fill confirms", given: events(placed, lineAllocated("SKU1", 1, 1)), when: together(record("SKU2", 1, 0), record("SKU1", 1, -1)), then: events(lineAllocated("SKU2", 1, 0), orderBackordered, lineAllocated("SKU1", 1, -1), orderConfirmed)},
		{name: "a cancelled order ignores them all", given: history(backorderedO, events(cancelled(false))), when: together(record("SKU1", 1, -1))},
		{name: "one bad allocation refuses them all", given: events(placed), when: together(record("SKU1", 2, 0), record("SKU9", 1, 0)), err: domain.ErrInvalidInput, field: "sku"},
		{name: "too much in turn is refused", given: events(placed), when: together(record("SKU1", 2, 0), record("SKU1", 1, 0)), err: domain.ErrInvalidInput, field: "allocation"},
	})

	// Each allocation's events, apart: the confirmation goes with the allocation that
	// completed the order.
	var o domain.Order
	o = domain.EvolveOrder(o, placed)
	recorded, err := domain.DecideRecordLineAllocations(o, together(record("SKU1", 2, 0), record("SKU2", 1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if !sameEvents(recorded[0], events(lineAllocated("SKU1", 2, 0))) || !sameEvents(recorded[1], events(lineAllocated("SKU2", 1, 0), orderConfirmed)) {
		t.Fatalf("recorded apart:\n%s\n%s", describe(recorded[0]), describe(recorded[1]))
	}
}

func TestRecordInvoice(t *testing.T) {
	record := func(number string) domain.RecordInvoice {
		return domain.RecordInvoice{OrderID: "O1", InvoiceNumber: number, At: now}
	}
	runScenarios(t, domain.EvolveOrder, domain.DecideRecordInvoice, []scenario[domain.RecordInvoice]{
		{name: "a confirmed order is invoiced for its amounts", given: confirmedO, when: record("INV-1"), then: events(invoiced("INV-1"))},
		{name: "the same number again records nothing", given: invoicedO, when: record("INV-1")},
		{name: "a second number is refused", given: invoicedO, when: record("INV-2"), err: domain.ErrDocumentMismatch},
		{name: "not before confirmation", given: events(placed), when: record("INV-1"), err: domain.ErrOrderNotConfirmed},
		{name: "not while backordered", given: backorderedO, when: record("INV-1"), err: domain.ErrOrderNotConfirmed},
		{
			// The number was taken from the gapless series before the cancellation won the
			// race; it must still be recorded, and a credit note will reverse it.
			name:  "a number taken before cancellation is recorded",
			given: history(confirmedO, events(cancelled(false))),
			when:  record("INV-1"),
			then:  events(invoiced("INV-1")),
		},
		{name: "a shipped order not yet invoiced", given: history(confirmedO, events(orderShipped)), when: record("INV-1"), then: events(invoiced("INV-1"))},
		{
			name:  "the invoice completes a delivered, fully paid order",
			given: history(confirmedO, events(paid("P1", 3000), orderShipped, orderDelivered)),
			when:  record("INV-1"),
			then:  events(invoiced("INV-1"), orderCompleted),
		},
		{
			name:  "not completed while something is owed",
			given: history(confirmedO, events(paid("P1", 2999), orderShipped, orderDelivered)),
			when:  record("INV-1"),
			then:  events(invoiced("INV-1")),
		},
		{name: "unknown order", when: record("INV-1"), err: domain.ErrOrderNotFound},
	})
}

// bigPlaced is an order at the total's cap: ten units at the largest unit price.
var bigPlaced = domain.OrderPlaced{
	OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR",
	Lines:    []domain.OrderLine{{SKU: "SKU1", Quantity: 10, UnitPrice: domain.MaxAmount}},
	Subtotal: domain.MaxOrderTotal, Total: domain.MaxOrderTotal, PlacedAt: now,
}

func TestRecordPayment(t *testing.T) {
	pay := func(id string, amount int64) domain.RecordPayment {
		return domain.RecordPayment{OrderID: "O1", PaymentID: id, Amount: amount, Method: "card", At: now}
	}
	runScenarios(t, domain.EvolveOrder, domain.DecideRecordPayment, []scenario[domain.RecordPayment]{
		{name: "a part payment", given: events(placed), when: pay("P1", 1000), then: events(paid("P1", 1000))},
		{name: "exactly what is outstanding", given: events(placed, paid("P1", 1000)), when: pay("P2", 2000), then: events(paid("P2", 2000))},
		{name: "more than is outstanding", given: events(placed, paid("P1", 1000)), when: pay("P2", 2001), err: domain.ErrOverpayment},
		{name: "anything on a settled order", given: history(invoicedO, events(paid("P1", 3000))), when: pay("P2", 1), err: domain.ErrOverpayment},
		{name: "a refund reopens what is outstanding", given: events(placed, paid("P1", 3000), refunded("F1", 500)), when: pay("P2", 500), then: events(paid("P2", 500))},
		{
			name:  "a credit note lowers what is outstanding",
			given: history(deliveredO, events(returnedSKU2, creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))),
			when:  pay("P1", 2401),
			err:   domain.ErrOverpayment,
		},
		{name: "the same payment again records nothing", given: history(invoicedO, events(paid("P1", 3000))), when: pay("P1", 3000)},
		{
			name:  "the last payment completes a delivered, invoiced order",
			given: history(deliveredO, events(paid("P1", 1000))),
			when:  pay("P2", 2000),
			then:  events(paid("P2", 2000), orderCompleted),
		},
		{
			name:  "a credited delivered order completes at what remains",
			given: history(deliveredO, events(returnedSKU2, creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))),
			when:  pay("P1", 2400),
			then:  events(paid("P1", 2400), orderCompleted),
		},
		{name: "paid in full before delivery does not complete", given: shippedO, when: pay("P1", 3000), then: events(paid("P1", 3000))},
		{name: "a cancelled order takes no payment", given: history(confirmedO, events(cancelled(false))), when: pay("P1", 1), err: domain.ErrOrderCancelled},
		{name: "unknown order", when: pay("P1", 1), err: domain.ErrOrderNotFound},
		{name: "amount zero", given: events(placed), when: pay("P1", 0), err: domain.ErrInvalidInput, field: "amount"},
		{name: "amount negative", given: events(placed), when: pay("P1", -5), err: domain.ErrInvalidInput, field: "amount"},
		{name: "amount at the cap", given: events(bigPlaced), when: pay("P1", domain.MaxAmount), then: events(paid("P1", domain.MaxAmount))},
		{name: "amount above the cap", given: events(bigPlaced), when: pay("P1", domain.MaxAmount+1), err: domain.ErrAmountTooLarge, field: "amount"},
		{name: "payment_id starting with a dot", given: events(placed), when: pay(".", 1), err: domain.ErrInvalidInput, field: "payment_id"},
		{name: "method blank", given: events(placed), when: domain.RecordPayment{OrderID: "O1", PaymentID: "P1", Amount: 1}, err: domain.ErrInvalidInput, field: "method"},
		// Without an ID, every later payment without one would pass for a repeat of it.
		{name: "payment_id missing", given: events(placed, paid("", 10)), when: pay("", 20), err: domain.ErrInvalidInput, field: "payment_id"},
		{
			name:  "reference too long",
			given: events(placed),
			when:  domain.RecordPayment{OrderID: "O1", PaymentID: "P1", Amount: 1, Method: "card", Reference: strings.Repeat("r", 201)},
			err:   domain.ErrInvalidInput, field: "reference",
		},
	})
}

func TestIssueRefund(t *testing.T) {
	refund := func(id string, amount int64) domain.IssueRefund {
		return domain.IssueRefund{OrderID: "O1", RefundID: id, Amount: amount, At: now}
	}
	runScenarios(t, domain.EvolveOrder, domain.DecideIssueRefund, []scenario[domain.IssueRefund]{
		{name: "up to what was paid", given: events(placed, paid("P1", 1000)), when: refund("F1", 1000), then: events(refunded("F1", 1000))},
		{name: "less what was refunded", given: events(placed, paid("P1", 1000), refunded("F1", 600)), when: refund("F2", 400), then: events(refunded("F2", 400))},
		{name: "not above paid − refunded", given: events(placed, paid("P1", 1000), refunded("F1", 600)), when: refund("F2", 401), err: domain.ErrRefundExceedsPaid},
		{name: "nothing paid, nothing to refund", given: events(placed), when: refund("F1", 1), err: domain.ErrRefundExceedsPaid},
		{name: "the same refund again records nothing", given: events(placed, paid("P1", 1000), refunded("F1", 1000)), when: refund("F1", 1000)},
		{name: "a cancelled order is refunded", given: history(confirmedO, events(paid("P1", 3000), cancelled(false))), when: refund("F1", 3000), then: events(refunded("F1", 3000))},
		{
			// Paid 2800 of 3000, then a return credited 600: the customer is owed 400. The
			// refund settles the order, which docs/api.md says is then completed.
			name:  "the refund that settles a delivered, invoiced order completes it",
			given: history(deliveredO, events(paid("P1", 2800), returnedSKU2, creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))),
			when:  refund("F1", 400),
			then:  events(refunded("F1", 400), orderCompleted),
		},
		{
			name:  "a partial refund of a credit does not complete",
			given: history(deliveredO, events(paid("P1", 2800), returnedSKU2, creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))),
			when:  refund("F1", 300),
			then:  events(refunded("F1", 300)),
		},
		{name: "unknown order", when: refund("F1", 1), err: domain.ErrOrderNotFound},
		{name: "amount zero", given: events(placed, paid("P1", 10)), when: refund("F1", 0), err: domain.ErrInvalidInput, field: "amount"},
		{name: "amount at the cap", given: events(bigPlaced, paid("P1", domain.MaxAmount), paid("P2", domain.MaxAmount)), when: refund("F1", domain.MaxAmount), then: events(refunded("F1", domain.MaxAmount))},
		{name: "amount above the cap", given: events(bigPlaced, paid("P1", domain.MaxAmount), paid("P2", domain.MaxAmount)), when: refund("F1", domain.MaxAmount+1), err: domain.ErrAmountTooLarge, field: "amount"},
		{name: "refund_id starting with a dash", given: events(placed, paid("P1", 10)), when: refund("-F", 1), err: domain.ErrInvalidInput, field: "refund_id"},
		{name: "refund_id missing", given: events(placed, paid("P1", 100), refunded("", 10)), when: refund("", 20), err: domain.ErrInvalidInput, field: "refund_id"},
		{
			name:  "reference too long",
			given: events(placed, paid("P1", 10)),
			when:  domain.IssueRefund{OrderID: "O1", RefundID: "F1", Amount: 1, Reference: strings.Repeat("r", 201)},
			err:   domain.ErrInvalidInput, field: "reference",
		},
	})
}

func TestShipOrder(t *testing.T) {
	ship := domain.ShipOrder{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", At: now}
	runScenarios(t, domain.EvolveOrder, domain.DecideShipOrder, []scenario[domain.ShipOrder]{
		{name: "a confirmed order ships every line", given: confirmedO, when: ship, then: events(orderShipped)},
		{name: "no shipment before confirmation", given: events(placed), when: ship, err: domain.ErrOrderNotConfirmed},
		{name: "no shipment while backordered", given: backorderedO, when: ship, err: domain.ErrOrderNotConfirmed},
		{name: "not twice", given: shippedO, when: ship, err: domain.ErrOrderAlreadyShipped},
		{name: "not after delivery", given: deliveredO, when: ship, err: domain.ErrOrderAlreadyShipped},
		{name: "not after completion", given: history(deliveredO, events(paid("P1", 3000), orderCompleted)), when: ship, err: domain.ErrOrderAlreadyShipped},
		{name: "not a cancelled order", given: history(confirmedO, events(cancelled(false))), when: ship, err: domain.ErrOrderCancelled},
		{name: "unknown order", when: ship, err: domain.ErrOrderNotFound},
		{name: "carrier blank", given: confirmedO, when: domain.ShipOrder{OrderID: "O1", TrackingNumber: "T1"}, err: domain.ErrInvalidInput, field: "carrier"},
		{name: "tracking number too long", given: confirmedO, when: domain.ShipOrder{OrderID: "O1", Carrier: "DHL", TrackingNumber: strings.Repeat("t", 101)}, err: domain.ErrInvalidInput, field: "tracking_number"},
	})
}

func TestDeliverOrder(t *testing.T) {
	deliver := domain.DeliverOrder{OrderID: "O1", At: now}
	free := domain.OrderPlaced{OrderID: "O1", CustomerID: "C1", Channel: "store", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU1", Quantity: 1}}, PlacedAt: now}
	freeShipped := events(free, lineAllocated("SKU1", 1, 0), orderConfirmed,
		domain.OrderInvoiced{OrderID: "O1", CustomerID: "C1", InvoiceNumber: "INV-1", InvoicedAt: now},
		domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 1}}, ShippedAt: now})
	runScenarios(t, domain.EvolveOrder, domain.DecideDeliverOrder, []scenario[domain.DeliverOrder]{
		{name: "a shipped order is delivered", given: shippedO, when: deliver, then: events(orderDelivered)},
		{name: "delivery completes an invoiced, paid order", given: history(shippedO, events(paid("P1", 3000))), when: deliver, then: events(orderDelivered, orderCompleted)},
		{name: "delivery completes an invoiced order of nothing to pay", given: freeShipped, when: deliver, then: events(orderDelivered, orderCompleted)},
		{name: "paid but not invoiced does not complete", given: history(confirmedO, events(paid("P1", 3000), orderShipped)), when: deliver, then: events(orderDelivered)},
		{name: "not before shipment", given: confirmedO, when: deliver, err: domain.ErrOrderNotShipped},
		{name: "not twice", given: deliveredO, when: deliver, err: domain.ErrOrderNotShipped},
		{name: "not a cancelled order", given: history(confirmedO, events(cancelled(false))), when: deliver, err: domain.ErrOrderNotShipped},
		{name: "unknown order", when: deliver, err: domain.ErrOrderNotFound},
	})
}

func TestCancelOrder(t *testing.T) {
	cancel := domain.CancelOrder{OrderID: "O1", Reason: "changed mind", At: now}
	runScenarios(t, domain.EvolveOrder, domain.DecideCancelOrder, []scenario[domain.CancelOrder]{
		{name: "a pending order, every line to release", given: events(placed), when: cancel, then: events(cancelled(false))},
		{name: "a backordered order", given: backorderedO, when: cancel, then: events(cancelled(false))},
		{name: "an invoiced order says so, for the credit note", given: invoicedO, when: cancel, then: events(cancelled(true))},
		{name: "no cancellation after shipment", given: shippedO, when: cancel, err: domain.ErrOrderAlreadyShipped},
		{name: "nor after delivery", given: deliveredO, when: cancel, err: domain.ErrOrderAlreadyShipped},
		{name: "not twice", given: history(confirmedO, events(cancelled(false))), when: cancel, err: domain.ErrOrderCancelled},
		{name: "unknown order", when: cancel, err: domain.ErrOrderNotFound},
		{name: "reason blank", given: events(placed), when: domain.CancelOrder{OrderID: "O1", Reason: " "}, err: domain.ErrInvalidInput, field: "reason"},
	})
}

// fiftyDelivered is a delivered order of 3 units of S at 1 with 50 % tax: 3 + 2 tax.
var fiftyDelivered = fiftyOrder(3)

// fiftyDelivered4 is the same with 4 units: 4 + 2 tax.
var fiftyDelivered4 = fiftyOrder(4)

func fiftyOrder(units int64) []domain.Event {
	tax := (units*5000 + 5000) / 10000
	return events(
		domain.OrderPlaced{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "S", Quantity: units, UnitPrice: 1}}, TaxRateBps: 5000, Subtotal: units, Tax: tax, Total: units + tax, PlacedAt: now},
		domain.OrderLineAllocated{OrderID: "O1", SKU: "S", Reserved: units, AllocatedAt: now}, orderConfirmed,
		domain.OrderInvoiced{OrderID: "O1", CustomerID: "C1", InvoiceNumber: "INV-1", Subtotal: units, Tax: tax, Total: units + tax, InvoicedAt: now},
		domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: []domain.ShippedLine{{SKU: "S", Quantity: units}}, ShippedAt: now}, orderDelivered)
}

func fiftyReturn(id string, units, tax int64) domain.OrderReturned {
	return domain.OrderReturned{OrderID: "O1", ReturnID: id, Lines: []domain.ReturnedLine{{SKU: "S", Quantity: units, UnitPrice: 1}}, Reason: "broken", Net: units, Tax: tax, Total: units + tax, ReturnedAt: now}
}

func TestReturnItems(t *testing.T) {
	ret := func(id string, lines ...domain.ShippedLine) domain.ReturnItems {
		return domain.ReturnItems{OrderID: "O1", ReturnID: id, Lines: lines, Reason: "broken", At: now}
	}
	line := func(sku string, q int64) domain.ShippedLine { return domain.ShippedLine{SKU: sku, Quantity: q} }
	// P1 is one item at 10.05 with 10 % tax: a return's tax of 100.5 rounds half up.
	halfCent := domain.OrderPlaced{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "P1", Quantity: 3, UnitPrice: 1005}}, TaxRateBps: 1000, Subtotal: 3015, Tax: 302, Total: 3317, PlacedAt: now}
	halfCentDelivered := events(halfCent, domain.OrderLineAllocated{OrderID: "O1", SKU: "P1", Reserved: 3, AllocatedAt: now}, orderConfirmed,
		domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: []domain.ShippedLine{{SKU: "P1", Quantity: 3}}, ShippedAt: now}, orderDelivered)
	runScenarios(t, domain.EvolveOrder, domain.DecideReturnItems, []scenario[domain.ReturnItems]{
		{name: "a delivered order takes a return priced at its lines", given: deliveredO, when: ret("R1", line("SKU2", 1)), then: events(returnedSKU2)},
		{
			name:  "tax on a return rounds half up",
			given: halfCentDelivered,
			when:  ret("R1", line("P1", 1)),
			then: events(domain.OrderReturned{OrderID: "O1", ReturnID: "R1", Lines: []domain.ReturnedLine{{SKU: "P1", Quantity: 1, UnitPrice: 1005}},
				Reason: "broken", Net: 1005, Tax: 101, Total: 1106, ReturnedAt: now}),
		},
		{
			name:  "several lines add up",
			given: deliveredO,
			when:  ret("R1", line("SKU1", 1), line("SKU2", 1)),
			then: events(domain.OrderReturned{OrderID: "O1", ReturnID: "R1", Lines: []domain.ReturnedLine{{SKU: "SKU1", Quantity: 1, UnitPrice: 1000}, {SKU: "SKU2", Quantity: 1, UnitPrice: 500}},
				Reason: "broken", Net: 1500, Tax: 300, Total: 1800, ReturnedAt: now}),
		},
		{name: "a completed order takes returns", given: history(deliveredO, events(paid("P1", 3000), orderCompleted)), when: ret("R1", line("SKU2", 1)), then: events(returnedSKU2)},
		{name: "not above what was shipped", given: deliveredO, when: ret("R1", line("SKU1", 3)), err: domain.ErrReturnExceedsShipped},
		{name: "not above shipped less returned", given: history(deliveredO, events(returnedSKU2)), when: ret("R2", line("SKU2", 1)), err: domain.ErrReturnExceedsShipped},
		{name: "not a SKU the order does not have", given: deliveredO, when: ret("R1", line("SKU9", 1)), err: domain.ErrReturnExceedsShipped},
		{name: "the same return again records nothing", given: history(deliveredO, events(returnedSKU2)), when: ret("R1", line("SKU2", 1))},
		{name: "not before delivery", given: shippedO, when: ret("R1", line("SKU2", 1)), err: domain.ErrOrderNotDelivered},
		{name: "not a cancelled order", given: history(confirmedO, events(cancelled(false))), when: ret("R1", line("SKU2", 1)), err: domain.ErrOrderNotDelivered},
		{name: "unknown order", when: ret("R1", line("SKU2", 1)), err: domain.ErrOrderNotFound},
		{name: "no lines", given: deliveredO, when: ret("R1"), err: domain.ErrInvalidInput, field: "lines"},
		{name: "return_id shape", given: deliveredO, when: ret("R 1", line("SKU2", 1)), err: domain.ErrInvalidInput, field: "return_id"},
		{name: "return_id starting with a dot", given: deliveredO, when: ret(".R", line("SKU2", 1)), err: domain.ErrInvalidInput, field: "return_id"},
		// 3 units of 1 at 50 %: invoiced 3 + 2 tax. Rounded one by one, each return took 1 of
		// tax, 3 in all; cumulatively they take round(0.5) = 1, round(1.0) − 1 = 0 and
		// round(1.5) − 1 = 1: 2 in all, the invoice's tax.
		{name: "the first of three units at 50 % takes the rounded-up tax", given: fiftyDelivered, when: ret("R1", line("S", 1)), then: events(fiftyReturn("R1", 1, 1))},
		{name: "the second takes what the cumulative rounding leaves", given: history(fiftyDelivered, events(fiftyReturn("R1", 1, 1))), when: ret("R2", line("S", 1)), then: events(fiftyReturn("R2", 1, 0))},
		{name: "the last takes the rest: the three credit exactly the invoice", given: history(fiftyDelivered, events(fiftyReturn("R1", 1, 1), fiftyReturn("R2", 1, 0))), when: ret("R3", line("S", 1)), then: events(fiftyReturn("R3", 1, 1))},
		{name: "two at once then one", given: history(fiftyDelivered, events(fiftyReturn("R1", 2, 1))), when: ret("R2", line("S", 1)), then: events(fiftyReturn("R2", 1, 1))},
		// Returns an older version rounded one by one took 3 of tax on an invoice of 2: a
		// later one takes none rather than a negative amount.
		{name: "after returns that over-credited, no negative tax", given: history(fiftyDelivered4, events(fiftyReturn("R1", 1, 1), fiftyReturn("R2", 1, 1), fiftyReturn("R3", 1, 1))), when: ret("R4", line("S", 1)), then: events(fiftyReturn("R4", 1, 0))},
		{name: "a SKU twice", given: deliveredO, when: ret("R1", line("SKU1", 1), line("SKU1", 1)), err: domain.ErrInvalidInput, field: "lines[1].sku"},
		{name: "quantity zero", given: deliveredO, when: ret("R1", line("SKU1", 0)), err: domain.ErrInvalidInput, field: "lines[0].quantity"},
		{name: "sku shape", given: deliveredO, when: ret("R1", line("", 1)), err: domain.ErrInvalidInput, field: "lines[0].sku"},
		{name: "reason blank", given: deliveredO, when: domain.ReturnItems{OrderID: "O1", ReturnID: "R1", Lines: []domain.ShippedLine{line("SKU2", 1)}}, err: domain.ErrInvalidInput, field: "reason"},
	})
}

func TestRecordCreditNote(t *testing.T) {
	note := func(number, reason, returnID string) domain.RecordCreditNote {
		return domain.RecordCreditNote{OrderID: "O1", CreditNoteNumber: number, Reason: reason, ReturnID: returnID, At: now}
	}
	cancelledInvoiced := history(invoicedO, events(cancelled(true)))
	returnedO := history(deliveredO, events(returnedSKU2))
	runScenarios(t, domain.EvolveOrder, domain.DecideRecordCreditNote, []scenario[domain.RecordCreditNote]{
		{
			name:  "a cancelled invoice is credited in full",
			given: cancelledInvoiced,
			when:  note("CN-1", domain.CreditForCancellation, ""),
			then:  events(creditNote("CN-1", domain.CreditForCancellation, "", 2500, 500)),
		},
		{
			name:  "an invoice recorded after the cancellation is credited too",
			given: history(confirmedO, events(cancelled(false), invoiced("INV-1"))),
			when:  note("CN-1", domain.CreditForCancellation, ""),
			then:  events(creditNote("CN-1", domain.CreditForCancellation, "", 2500, 500)),
		},
		{name: "nothing to credit without an invoice", given: history(confirmedO, events(cancelled(false))), when: note("CN-1", domain.CreditForCancellation, ""), err: domain.ErrDocumentMismatch},
		{name: "nothing to credit while not cancelled", given: invoicedO, when: note("CN-1", domain.CreditForCancellation, ""), err: domain.ErrDocumentMismatch},
		{name: "a return is credited its amounts", given: returnedO, when: note("CN-1", domain.CreditForReturn, "R1"), then: events(creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))},
		{
			name:  "the credit completes a delivered order with nothing left to pay",
			given: history(returnedO, events(paid("P1", 2400))),
			when:  note("CN-1", domain.CreditForReturn, "R1"),
			then:  events(creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100), orderCompleted),
		},
		{name: "a return the order does not have", given: returnedO, when: note("CN-1", domain.CreditForReturn, "R2"), err: domain.ErrDocumentMismatch},
		{name: "the same number again records nothing", given: history(returnedO, events(creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))), when: note("CN-1", domain.CreditForReturn, "R1")},
		{name: "a second number for one document is refused", given: history(returnedO, events(creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100))), when: note("CN-2", domain.CreditForReturn, "R1"), err: domain.ErrDocumentMismatch},
		{name: "unknown order", when: note("CN-1", domain.CreditForReturn, "R1"), err: domain.ErrOrderNotFound},
		{name: "unknown reason", given: returnedO, when: note("CN-1", "goodwill", ""), err: domain.ErrInvalidInput, field: "reason"},
	})
}

// TestOrderFold checks what the fold exposes to projections and process managers.
func TestOrderFold(t *testing.T) {
	o := fold(domain.EvolveOrder, history(deliveredO, events(paid("P1", 2000), paid("P2", 1000), orderCompleted, returnedSKU2,
		creditNote("CN-1", domain.CreditForReturn, "R1", 500, 100), refunded("F1", 600))))
	if o.Status != domain.StatusCompleted || o.InvoiceNumber != "INV-1" || o.Paid != 3000 || o.Refunded != 600 || o.Credited != 600 || o.Outstanding() != 0 {
		t.Errorf("folded status %s invoice %s paid %d refunded %d credited %d outstanding %d", o.Status, o.InvoiceNumber, o.Paid, o.Refunded, o.Credited, o.Outstanding())
	}
	want := []domain.LineState{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000, Reserved: 2, Shipped: 2}, {SKU: "SKU2", Quantity: 1, UnitPrice: 500, Reserved: 1, Shipped: 1, Returned: 1}}
	if fmt.Sprint(o.Lines) != fmt.Sprint(want) {
		t.Errorf("lines %+v, want %+v", o.Lines, want)
	}
	if r, ok := o.ReturnByID("R1"); !ok || r.Total != 600 {
		t.Errorf("ReturnByID(R1) = %+v, %v", r, ok)
	}
	if _, ok := o.ReturnByID("R2"); ok {
		t.Error("ReturnByID found a return that was never made")
	}
	if len(o.CreditNotes) != 1 || o.CreditNotes[0].Number != "CN-1" || o.Carrier != "DHL" || !o.Exists() || !o.Invoiced() {
		t.Errorf("credit notes %+v carrier %q", o.CreditNotes, o.Carrier)
	}
}

func TestPaymentStatus(t *testing.T) {
	cases := []struct {
		name                            string
		total, credited, paid, refunded int64
		want                            string
	}{
		{"nothing paid", 3000, 0, 0, 0, domain.PaymentUnpaid},
		{"a zero-total order is paid", 0, 0, 0, 0, domain.PaymentPaid},
		{"fully credited, nothing paid: nothing is owed", 3000, 3000, 0, 0, domain.PaymentPaid},
		{"one unit paid", 3000, 0, 1, 0, domain.PaymentPartiallyPaid},
		{"one unit short", 3000, 0, 2999, 0, domain.PaymentPartiallyPaid},
		{"paid in full", 3000, 0, 3000, 0, domain.PaymentPaid},
		{"paid what the credit note left", 3000, 600, 2400, 0, domain.PaymentPaid},
		{"paid, partly returned and refunded", 3000, 600, 3000, 600, domain.PaymentPartiallyRefunded},
		{"a unit refunded", 3000, 0, 3000, 1, domain.PaymentPartiallyRefunded},
		{"all but a unit refunded", 3000, 0, 3000, 2999, domain.PaymentPartiallyRefunded},
		{"everything paid refunded", 3000, 3000, 3000, 3000, domain.PaymentRefunded},
		{"refunded exactly what was paid of a part payment", 3000, 0, 1000, 1000, domain.PaymentRefunded},
	}
	for _, c := range cases {
		if got := domain.PaymentStatus(c.total, c.credited, c.paid, c.refunded); got != c.want {
			t.Errorf("%s: PaymentStatus(total %d, credited %d, paid %d, refunded %d) = %s, want %s", c.name, c.total, c.credited, c.paid, c.refunded, got, c.want)
		}
	}
}

// The line limit at its edge: MaxOrderLines lines are placed, one more is refused (above).
func TestPlaceOrderTakesTheMostLines(t *testing.T) {
	lines := make([]domain.OrderLine, domain.MaxOrderLines)
	for i := range lines {
		lines[i] = domain.OrderLine{SKU: fmt.Sprintf("S%d", i), Quantity: 1, UnitPrice: 1}
	}
	events, err := domain.DecidePlaceOrder(domain.Order{}, domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: lines, At: now})
	if err != nil || len(events) != 1 || len(events[0].(domain.OrderPlaced).Lines) != domain.MaxOrderLines {
		t.Fatalf("%d lines: %v, %v", domain.MaxOrderLines, events, err)
	}
}

// A return counts against the line it returns, the first line too: what was returned of it
// cannot be returned again.
func TestReturnOfTheFirstLineIsCounted(t *testing.T) {
	first := domain.OrderReturned{OrderID: "O1", ReturnID: "R1", Lines: []domain.ReturnedLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}},
		Reason: "broken", Net: 2000, Tax: 400, Total: 2400, ReturnedAt: now}
	o := fold(domain.EvolveOrder, history(deliveredO, events(first)))
	if o.Lines[0].Returned != 2 {
		t.Fatalf("after returning both SKU1, line 0 shows %d returned", o.Lines[0].Returned)
	}
	if _, err := domain.DecideReturnItems(o, domain.ReturnItems{OrderID: "O1", ReturnID: "R2", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 1}}, Reason: "again", At: now}); err == nil {
		t.Fatal("a unit of the first line was returned twice")
	}
}

// A return of MaxOrderLines lines passes the line limit (it is then judged against the
// order); one more line is refused as too many.
func TestReturnLineLimit(t *testing.T) {
	for _, n := range []int{domain.MaxOrderLines, domain.MaxOrderLines + 1} {
		lines := make([]domain.ShippedLine, n)
		for i := range lines {
			lines[i] = domain.ShippedLine{SKU: fmt.Sprintf("S%d", i), Quantity: 1}
		}
		_, err := domain.DecideReturnItems(fold(domain.EvolveOrder, deliveredO), domain.ReturnItems{OrderID: "O1", ReturnID: "R1", Lines: lines, Reason: "broken", At: now})
		tooMany := err != nil && strings.Contains(err.Error(), "lines must have")
		if tooMany != (n > domain.MaxOrderLines) {
			t.Errorf("a return of %d lines: %v", n, err)
		}
	}
}
