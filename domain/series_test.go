package domain_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/domain"
)

func invoiceNumbered(n int64, order string) domain.InvoiceNumberAssigned {
	return domain.InvoiceNumberAssigned{Number: n, OrderID: order, AssignedAt: now}
}

func creditNumbered(n int64, order, reason, returnID string) domain.CreditNoteNumberAssigned {
	return domain.CreditNoteNumberAssigned{Number: n, OrderID: order, Reason: reason, ReturnID: returnID, AssignedAt: now}
}

func TestAssignInvoiceNumber(t *testing.T) {
	assign := func(order string) domain.AssignInvoiceNumber {
		return domain.AssignInvoiceNumber{OrderID: order, At: now}
	}
	runScenarios(t, domain.EvolveSeries, domain.DecideAssignInvoiceNumber, []scenario[domain.AssignInvoiceNumber]{
		{name: "the first number is 1", when: assign("O1"), then: events(invoiceNumbered(1, "O1"))},
		{name: "the next number follows the last", given: events(invoiceNumbered(1, "O1"), invoiceNumbered(2, "O2")), when: assign("O3"), then: events(invoiceNumbered(3, "O3"))},
		{name: "an order is numbered once", given: events(invoiceNumbered(1, "O1"), invoiceNumbered(2, "O2")), when: assign("O1")},
		{name: "order_id shape", when: assign(""), err: domain.ErrInvalidInput, field: "order_id"},
	})
}

func TestAssignInvoiceNumbers(t *testing.T) {
	assign := func(orders ...string) domain.AssignInvoiceNumbers {
		cmd := domain.AssignInvoiceNumbers{}
		for _, o := range orders {
			cmd.Orders = append(cmd.Orders, domain.AssignInvoiceNumber{OrderID: o, At: now})
		}
		return cmd
	}
	runScenarios(t, domain.EvolveSeries, domain.DecideAssignInvoiceNumbers, []scenario[domain.AssignInvoiceNumbers]{
		{name: "numbers follow one another in the order given", when: assign("O1", "O2", "O3"), then: events(invoiceNumbered(1, "O1"), invoiceNumbered(2, "O2"), invoiceNumbered(3, "O3"))},
		{name: "the first follows the last number taken", given: events(invoiceNumbered(1, "O1")), when: assign("O2", "O3"), then: events(invoiceNumbered(2, "O2"), invoiceNumbered(3, "O3"))},
		{name: "an order numbered already takes none and leaves no gap", given: events(invoiceNumbered(1, "O1"), invoiceNumbered(2, "O2")), when: assign("O3", "O1", "O4"), then: events(invoiceNumbered(3, "O3"), invoiceNumbered(4, "O4"))},
		{name: "an order given twice is numbered once", when: assign("O1", "O2", "O1"), then: events(invoiceNumbered(1, "O1"), invoiceNumbered(2, "O2"))},
		{name: "every order numbered already records nothing", given: events(invoiceNumbered(1, "O1")), when: assign("O1", "O1")},
		{name: "no order records nothing", when: assign()},
		{name: "one bad order_id refuses them all", when: assign("O1", "O 2"), err: domain.ErrInvalidInput, field: "orders[1].order_id"},
	})
}

// TestInvoiceNumbersGroupedAnyHowStayGapless numbers a random stream of orders, repeats
// among them, in random groups, and checks that the series takes exactly the numbers that
// numbering them one at a time would: 1..n, one per order, in the order first asked for.
func TestInvoiceNumbersGroupedAnyHowStayGapless(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		asks := rapid.SliceOf(rapid.SampledFrom([]string{"A", "B", "C", "D", "E", "F", "G", "H"})).Draw(t, "asks")
		var one, grouped domain.Series
		for _, o := range asks {
			got, err := domain.DecideAssignInvoiceNumber(one, domain.AssignInvoiceNumber{OrderID: o, At: now})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range got {
				one = domain.EvolveSeries(one, e)
			}
		}
		var numbered []domain.Event
		for rest := asks; len(rest) > 0; {
			n := rapid.IntRange(1, len(rest)).Draw(t, "group")
			cmd := domain.AssignInvoiceNumbers{}
			for _, o := range rest[:n] {
				cmd.Orders = append(cmd.Orders, domain.AssignInvoiceNumber{OrderID: o, At: now})
			}
			rest = rest[n:]
			got, err := domain.DecideAssignInvoiceNumbers(grouped, cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range got {
				grouped = domain.EvolveSeries(grouped, e)
				numbered = append(numbered, e)
			}
		}
		for i, e := range numbered {
			if n := e.(domain.InvoiceNumberAssigned).Number; n != int64(i+1) {
				t.Fatalf("the %d-th number taken is %d", i+1, n)
			}
		}
		if grouped.Count != one.Count {
			t.Fatalf("grouped the series took %d numbers, one at a time %d", grouped.Count, one.Count)
		}
		for _, o := range asks {
			g, _ := grouped.NumberFor(domain.InvoiceKey(o))
			w, _ := one.NumberFor(domain.InvoiceKey(o))
			if g != w {
				t.Fatalf("order %s: number %d grouped, %d one at a time", o, g, w)
			}
		}
	})
}

func TestAssignCreditNoteNumber(t *testing.T) {
	assign := func(order, reason, returnID string) domain.AssignCreditNoteNumber {
		return domain.AssignCreditNoteNumber{OrderID: order, Reason: reason, ReturnID: returnID, At: now}
	}
	cn := domain.CreditForCancellation
	rt := domain.CreditForReturn
	runScenarios(t, domain.EvolveSeries, domain.DecideAssignCreditNoteNumber, []scenario[domain.AssignCreditNoteNumber]{
		{name: "the first number is 1", when: assign("O1", cn, ""), then: events(creditNumbered(1, "O1", cn, ""))},
		{name: "a cancellation is numbered once", given: events(creditNumbered(1, "O1", cn, "")), when: assign("O1", cn, "")},
		{name: "each return of an order has its own number", given: events(creditNumbered(1, "O1", rt, "R1")), when: assign("O1", rt, "R2"), then: events(creditNumbered(2, "O1", rt, "R2"))},
		{name: "a return is numbered once", given: events(creditNumbered(1, "O1", rt, "R1"), creditNumbered(2, "O2", cn, "")), when: assign("O1", rt, "R1")},
		{name: "the same return ID on another order is another document", given: events(creditNumbered(1, "O1", rt, "R1")), when: assign("O2", rt, "R1"), then: events(creditNumbered(2, "O2", rt, "R1"))},
		{name: "unknown reason", when: assign("O1", "goodwill", ""), err: domain.ErrInvalidInput, field: "reason"},
		{name: "order_id shape", when: assign("O 1", cn, ""), err: domain.ErrInvalidInput, field: "order_id"},
	})
}

// TestSeriesIsGapless assigns numbers to many documents, repeats among them, and checks the
// numbers are exactly 1..n, each recorded against the document it went to.
func TestSeriesIsGapless(t *testing.T) {
	var s domain.Series
	orders := []string{"A", "B", "A", "C", "B", "D", "A"}
	for _, o := range orders {
		got, err := domain.DecideAssignInvoiceNumber(s, domain.AssignInvoiceNumber{OrderID: o, At: now})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			s = domain.EvolveSeries(s, e)
		}
	}
	if s.Count != 4 {
		t.Fatalf("Count = %d, want 4", s.Count)
	}
	for want, o := range []string{"A", "B", "C", "D"} {
		if n, ok := s.NumberFor(domain.InvoiceKey(o)); !ok || n != int64(want+1) {
			t.Errorf("NumberFor(%s) = %d, %v; want %d", o, n, ok, want+1)
		}
	}
	if _, ok := s.NumberFor(domain.InvoiceKey("E")); ok {
		t.Error("NumberFor found a number for an order never invoiced")
	}
	if domain.InvoiceNumber(7) != "INV-7" || domain.CreditNoteNumber(3) != "CN-3" {
		t.Errorf("numbers format as %s and %s", domain.InvoiceNumber(7), domain.CreditNoteNumber(3))
	}
	if domain.CreditNoteKey("O1", domain.CreditForReturn, "R1") == domain.CreditNoteKey("O1", domain.CreditForReturn, "R2") {
		t.Error("two returns share a credit note key")
	}
}

func TestRaisePurchaseOrder(t *testing.T) {
	raise := domain.RaisePurchaseOrder{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Supplier: "ACME", Quantity: 20, At: now}
	raisedPO := domain.PurchaseOrderRaised{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Supplier: "ACME", Quantity: 20, RaisedAt: now}
	runScenarios(t, domain.EvolvePurchaseOrder, domain.DecideRaisePurchaseOrder, []scenario[domain.RaisePurchaseOrder]{
		{name: "raises", when: raise, then: events(raisedPO)},
		{name: "raising again records nothing", given: events(raisedPO), when: raise},
		{name: "quantity zero", when: domain.RaisePurchaseOrder{PurchaseOrderID: "PO-1", Quantity: 0}, err: domain.ErrInvalidInput, field: "quantity"},
		{name: "purchase_order_id shape", when: domain.RaisePurchaseOrder{PurchaseOrderID: "PO 1", Quantity: 1}, err: domain.ErrInvalidInput, field: "purchase_order_id"},
	})
}

func TestReceivePurchaseOrder(t *testing.T) {
	receive := domain.ReceivePurchaseOrder{PurchaseOrderID: "PO-SKU1-1", At: now}
	raisedPO := domain.PurchaseOrderRaised{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Supplier: "ACME", Quantity: 20, RaisedAt: now}
	receivedAll := domain.PurchaseOrderReceived{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Quantity: 20, ReceivedAt: now}
	runScenarios(t, domain.EvolvePurchaseOrder, domain.DecideReceivePurchaseOrder, []scenario[domain.ReceivePurchaseOrder]{
		{name: "receives the whole quantity for its SKU", given: events(raisedPO), when: receive, then: events(receivedAll)},
		{name: "twice is refused", given: events(raisedPO, receivedAll), when: receive, err: domain.ErrAlreadyReceived},
		{name: "unknown purchase order", when: receive, err: domain.ErrPurchaseOrderNotFound},
	})
}
