package domain

import (
	"fmt"
	"strconv"
	"time"
)

// Series is the folded state of a numbering stream (invoices "INV", credit notes "CN"). The
// n-th assignment is number n and the stream's version n−1, so numbers have no gap and no
// duplicate under any concurrency: two assignments cannot share a version.
//
// It remembers which document took each of the last RememberedPerStream numbers, so that a
// process manager that crashed after taking one finds it on retry instead of taking a second;
// a retry older than that is recognised by its event IDs (the command handler looks them up
// in the store), so the state does not grow with every document ever numbered.
type Series struct {
	Count int64
	byKey map[string]int64
	keys  []string // the keys of byKey, oldest number first
}

// NumberFor returns the number assigned for a document key, if among the last remembered.
func (s Series) NumberFor(key string) (int64, bool) {
	n, ok := s.byKey[key]
	return n, ok
}

// InvoiceNumber formats an invoice number: "INV-7".
func InvoiceNumber(n int64) string { return "INV-" + strconv.FormatInt(n, 10) }

// CreditNoteNumber formats a credit note number: "CN-3".
func CreditNoteNumber(n int64) string { return "CN-" + strconv.FormatInt(n, 10) }

// InvoiceKey and CreditNoteKey name the document a number is for, so that a process manager
// retrying after a crash finds the number it already took instead of taking a second.
func InvoiceKey(orderID string) string { return "order:" + orderID }

func CreditNoteKey(orderID, reason, returnID string) string {
	return reason + ":" + orderID + ":" + returnID
}

// Numbering commands.
type (
	AssignInvoiceNumber struct {
		OrderID string
		At      time.Time
	}
	// AssignInvoiceNumbers numbers several orders in one decision, so that a busy series
	// takes one append for many numbers rather than one append each, one after another.
	AssignInvoiceNumbers struct {
		Orders []AssignInvoiceNumber
	}
	AssignCreditNoteNumber struct {
		OrderID  string
		Reason   string
		ReturnID string
		At       time.Time
	}
)

// EvolveSeries applies one event. It takes ownership of s.
func EvolveSeries(s Series, e Event) Series { return evolveSeries(s, e, RememberedPerStream) }

// evolveSeries is EvolveSeries remembering the keys of up to remember numbers.
func evolveSeries(s Series, e Event, remember int) Series {
	if s.byKey == nil {
		s.byKey = map[string]int64{}
	}
	switch e := e.(type) {
	case InvoiceNumberAssigned:
		s = s.assigned(InvoiceKey(e.OrderID), e.Number, remember)
	case CreditNoteNumberAssigned:
		s = s.assigned(CreditNoteKey(e.OrderID, e.Reason, e.ReturnID), e.Number, remember)
	}
	return s
}

// assigned records number as key's, forgetting the oldest key past remember (unless a later
// number went to the same key, which only a repeat older than the window can cause).
func (s Series) assigned(key string, number int64, remember int) Series {
	s.Count = number
	s.byKey[key] = number
	s.keys = append(s.keys, key)
	if len(s.keys) > remember {
		oldest := s.keys[0]
		s.keys = s.keys[1:]
		if s.byKey[oldest] <= number-int64(remember) {
			delete(s.byKey, oldest)
		}
	}
	return s
}

// DecideAssignInvoiceNumber takes the next invoice number for an order, once.
func DecideAssignInvoiceNumber(s Series, cmd AssignInvoiceNumber) ([]Event, error) {
	if err := checkID("order_id", cmd.OrderID); err != nil {
		return nil, err
	}
	if _, done := s.byKey[InvoiceKey(cmd.OrderID)]; done {
		return nil, nil
	}
	return []Event{InvoiceNumberAssigned{Number: s.Count + 1, OrderID: cmd.OrderID, AssignedAt: cmd.At}}, nil
}

// DecideAssignInvoiceNumbers takes the next numbers for several orders, in the order given:
// the very numbers that deciding each in turn, on the series as the ones before leave it,
// would take. An order numbered already, or earlier in the same command, takes none, so the
// numbers stay gapless and one per order however the orders are grouped.
func DecideAssignInvoiceNumbers(s Series, cmd AssignInvoiceNumbers) ([]Event, error) {
	for i, o := range cmd.Orders {
		if err := checkID(fmt.Sprintf("orders[%d].order_id", i), o.OrderID); err != nil {
			return nil, err
		}
	}
	var (
		events []Event
		taken  map[string]bool
		next   = s.Count
	)
	for _, o := range cmd.Orders {
		key := InvoiceKey(o.OrderID)
		if _, done := s.byKey[key]; done || taken[key] {
			continue
		}
		if taken == nil {
			taken = make(map[string]bool, len(cmd.Orders))
		}
		taken[key] = true
		next++
		events = append(events, InvoiceNumberAssigned{Number: next, OrderID: o.OrderID, AssignedAt: o.At})
	}
	return events, nil
}

// DecideAssignCreditNoteNumber takes the next credit note number for a cancellation or a
// return, once.
func DecideAssignCreditNoteNumber(s Series, cmd AssignCreditNoteNumber) ([]Event, error) {
	if err := checkID("order_id", cmd.OrderID); err != nil {
		return nil, err
	}
	if cmd.Reason != CreditForCancellation && cmd.Reason != CreditForReturn {
		return nil, invalid("reason", "must be %s or %s", CreditForCancellation, CreditForReturn)
	}
	if _, done := s.byKey[CreditNoteKey(cmd.OrderID, cmd.Reason, cmd.ReturnID)]; done {
		return nil, nil
	}
	return []Event{CreditNoteNumberAssigned{Number: s.Count + 1, OrderID: cmd.OrderID, Reason: cmd.Reason, ReturnID: cmd.ReturnID, AssignedAt: cmd.At}}, nil
}

// PurchaseOrder is the folded state of a purchase order stream.
type PurchaseOrder struct {
	ID       string
	SKU      string
	Supplier string
	Quantity int64
	Raised   bool
	Received bool
}

// Purchase order commands.
type (
	RaisePurchaseOrder struct {
		PurchaseOrderID string
		SKU             string
		Supplier        string
		Quantity        int64
		At              time.Time
	}
	ReceivePurchaseOrder struct {
		PurchaseOrderID string
		At              time.Time
	}
)

// EvolvePurchaseOrder applies one event.
func EvolvePurchaseOrder(p PurchaseOrder, e Event) PurchaseOrder {
	switch e := e.(type) {
	case PurchaseOrderRaised:
		p = PurchaseOrder{ID: e.PurchaseOrderID, SKU: e.SKU, Supplier: e.Supplier, Quantity: e.Quantity, Raised: true}
	case PurchaseOrderReceived:
		p.Received = true
	}
	return p
}

// DecideRaisePurchaseOrder opens the purchase order a SKU's replenishment requested; raising
// it again changes nothing.
func DecideRaisePurchaseOrder(p PurchaseOrder, cmd RaisePurchaseOrder) ([]Event, error) {
	if err := checkID("purchase_order_id", cmd.PurchaseOrderID); err != nil {
		return nil, err
	}
	if cmd.Quantity <= 0 {
		return nil, invalid("quantity", "must be > 0, got %d", cmd.Quantity)
	}
	if p.Raised {
		return nil, nil
	}
	return []Event{PurchaseOrderRaised{PurchaseOrderID: cmd.PurchaseOrderID, SKU: cmd.SKU, Supplier: cmd.Supplier, Quantity: cmd.Quantity, RaisedAt: cmd.At}}, nil
}

// DecideReceivePurchaseOrder records that the supplier delivered the whole quantity.
func DecideReceivePurchaseOrder(p PurchaseOrder, cmd ReceivePurchaseOrder) ([]Event, error) {
	if !p.Raised {
		return nil, fmt.Errorf("%w: %s", ErrPurchaseOrderNotFound, cmd.PurchaseOrderID)
	}
	if p.Received {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyReceived, cmd.PurchaseOrderID)
	}
	return []Event{PurchaseOrderReceived{PurchaseOrderID: p.ID, SKU: p.SKU, Quantity: p.Quantity, ReceivedAt: cmd.At}}, nil
}
