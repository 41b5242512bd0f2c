package domain_test

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
)

func ptr[T any](v T) *T { return &v }

// sampleEvents holds one value of every registered type with every field set, so a field
// that does not survive encoding (a missing tag, a type the decoder cannot fill) shows up.
var sampleEvents = []domain.Event{
	domain.CustomerRegistered{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", Phone: "+44 1", PaymentPreference: "card", RegisteredAt: now},
	domain.CustomerDetailsChanged{CustomerID: "C1", Name: ptr("Ada L"), Email: ptr("a@example.org"), Phone: ptr(""), PaymentPreference: ptr("invoice"), ChangedAt: now},
	domain.StockReceived{SKU: "SKU1", Quantity: 5, Reference: "delivery 7", PurchaseOrderID: "PO-SKU1-1", ReceivedAt: now},
	domain.StockAdjusted{SKU: "SKU1", Delta: -2, Reason: "damaged", AdjustedAt: now},
	domain.ReplenishmentPolicySet{SKU: "SKU1", ReorderPoint: 5, ReorderQuantity: 20, Supplier: "ACME", SetAt: now},
	domain.StockAllocated{SKU: "SKU1", OrderID: "O1", Requested: 5, Reserved: 3, Backordered: 2, AllocatedAt: now},
	domain.BackorderFilled{SKU: "SKU1", OrderID: "O1", Quantity: 2, FilledAt: now},
	domain.CustomerErased{CustomerID: "C1", ErasedAt: now},
	domain.StockReleased{SKU: "SKU1", OrderID: "O1", Reserved: 3, Backordered: 2, ReleasedAt: now},
	domain.StockShipped{SKU: "SKU1", OrderID: "O1", Quantity: 5, ShippedAt: now},
	domain.StockRestocked{SKU: "SKU1", OrderID: "O1", ReturnID: "R1", Quantity: 1, RestockedAt: now},
	domain.ReplenishmentRequested{SKU: "SKU1", PurchaseOrderID: "PO-SKU1-1", Supplier: "ACME", Quantity: 20, RequestedAt: now},
	domain.OrderPlaced{
		OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR",
		Lines:      []domain.OrderLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}, {SKU: "SKU2", Quantity: 1, UnitPrice: 500}},
		TaxRateBps: 2000, Subtotal: 2500, Tax: 500, Total: 3000, PaymentMethod: "card", ShippingAddress: "1 Main St", PlacedAt: now,
	},
	domain.OrderLineAllocated{OrderID: "O1", SKU: "SKU1", Reserved: 2, Backordered: -2, AllocatedAt: now},
	domain.OrderBackordered{OrderID: "O1", BackorderedAt: now},
	domain.OrderConfirmed{OrderID: "O1", ConfirmedAt: now},
	domain.OrderInvoiced{OrderID: "O1", CustomerID: "C1", InvoiceNumber: "INV-1", Subtotal: 2500, Tax: 500, Total: 3000, InvoicedAt: now},
	domain.PaymentReceived{OrderID: "O1", PaymentID: "P1", Amount: 1000, Method: "card", Reference: "r", ReceivedAt: now},
	domain.RefundIssued{OrderID: "O1", RefundID: "F1", Amount: 100, Reference: "r", RefundedAt: now},
	domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 2}}, ShippedAt: now},
	domain.OrderDelivered{OrderID: "O1", DeliveredAt: now},
	domain.OrderCompleted{OrderID: "O1", CompletedAt: now},
	domain.OrderCancelled{OrderID: "O1", Reason: "changed mind", Lines: []domain.ShippedLine{{SKU: "SKU1", Quantity: 2}}, Invoiced: true, CancelledAt: now},
	domain.OrderReturned{OrderID: "O1", ReturnID: "R1", Lines: []domain.ReturnedLine{{SKU: "SKU1", Quantity: 1, UnitPrice: 1000}}, Reason: "broken", Net: 1000, Tax: 200, Total: 1200, ReturnedAt: now},
	domain.CreditNoteIssued{OrderID: "O1", CustomerID: "C1", CreditNoteNumber: "CN-1", Reason: domain.CreditForReturn, ReturnID: "R1", Net: 1000, Tax: 200, Total: 1200, IssuedAt: now},
	domain.InvoiceNumberAssigned{Number: 1, OrderID: "O1", AssignedAt: now},
	domain.CreditNoteNumberAssigned{Number: 1, OrderID: "O1", Reason: domain.CreditForReturn, ReturnID: "R1", AssignedAt: now},
	domain.PurchaseOrderRaised{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Supplier: "ACME", Quantity: 20, RaisedAt: now},
	domain.PurchaseOrderReceived{PurchaseOrderID: "PO-SKU1-1", SKU: "SKU1", Quantity: 20, ReceivedAt: now},
	domain.IdempotentRequestRecorded{Key: "k1", RequestHash: "abc", Status: 201, Body: json.RawMessage(`{"order_id":"O1"}`), RecordedAt: now},
}

func TestEveryRegisteredTypeRoundTrips(t *testing.T) {
	samples := map[string]domain.Event{}
	for _, e := range sampleEvents {
		samples[e.EventType()] = e
	}
	names := domain.EventTypes()
	sort.Strings(names)
	if len(names) != len(samples) {
		t.Errorf("%d registered types, %d samples: every registered type needs a sample here", len(names), len(samples))
	}
	for _, name := range names {
		sample, ok := samples[name]
		if !ok {
			t.Errorf("no sample for registered type %s", name)
			continue
		}
		if !strings.HasSuffix(name, ".v1") {
			t.Errorf("type name %s carries no version", name)
		}
		typ, data, err := domain.EncodeEvent(sample)
		if err != nil || typ != name {
			t.Fatalf("EncodeEvent(%s) = %q, %v", name, typ, err)
		}
		back, err := domain.DecodeEvent(typ, data)
		if err != nil {
			t.Fatalf("DecodeEvent(%s, %s): %v", typ, data, err)
		}
		if !reflect.DeepEqual(back, sample) {
			t.Errorf("%s does not survive a round trip:\n got  %+v\n want %+v", name, back, sample)
		}
	}
}

// TestRegistryMapsNamesToTheirTypes guards the hand-written registry: the decoder listed under
// a name must produce a value of the type that carries that name.
func TestRegistryMapsNamesToTheirTypes(t *testing.T) {
	for _, name := range domain.EventTypes() {
		if !domain.KnownEventType(name) {
			t.Errorf("KnownEventType(%s) = false for a listed type", name)
		}
		e, err := domain.DecodeEvent(name, []byte(`{}`))
		if err != nil {
			t.Fatalf("DecodeEvent(%s, {}): %v", name, err)
		}
		if e.EventType() != name {
			t.Errorf("the decoder registered as %s makes a %s", name, e.EventType())
		}
	}
}

func TestDecodeRefusesUnknownTypeAndFields(t *testing.T) {
	if domain.KnownEventType("OrderPlaced.v2") {
		t.Error("OrderPlaced.v2 is not registered")
	}
	if _, err := domain.DecodeEvent("OrderPlaced.v2", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "OrderPlaced.v2") {
		t.Errorf("unknown type: error = %v, want one naming the type", err)
	}
	_, err := domain.DecodeEvent("PaymentReceived.v1", []byte(`{"order_id":"O1","amount":5,"amount_in_euros":0.05}`))
	if err == nil || !strings.Contains(err.Error(), "amount_in_euros") {
		t.Errorf("unknown field: error = %v, want one naming the field", err)
	}
	if _, err := domain.DecodeEvent("PaymentReceived.v1", []byte(`{"amount":"5"}`)); err == nil {
		t.Error("a string where an integer amount belongs was accepted")
	}
	if _, err := domain.DecodeEvent("PaymentReceived.v1", []byte(`{"amount":`)); err == nil {
		t.Error("truncated data was accepted")
	}
	// A second value after the first would otherwise be dropped without a word.
	if _, err := domain.DecodeEvent("PaymentReceived.v1", []byte(`{"amount":5} {"amount":6}`)); err == nil {
		t.Error("data with a second JSON value after the event was accepted")
	}
	if _, err := domain.DecodeEvent("PaymentReceived.v1", []byte("{\"amount\":5}\n")); err != nil {
		t.Errorf("trailing white space refused: %v", err)
	}
}

func TestStreamNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{domain.CustomerStream("C1"), "customer-C1"},
		{domain.StockStream("SKU1"), "stock-SKU1"},
		{domain.OrderStream("O1"), "order-O1"},
		{domain.PurchaseOrderStream("PO-1"), "purchase_order-PO-1"},
		{domain.InvoiceSeriesStream, "invoice_series-INV"},
		{domain.CreditNoteSeriesStream, "credit_note_series-CN"},
	} {
		if c.got != c.want {
			t.Errorf("stream %q, want %q", c.got, c.want)
		}
	}
}
