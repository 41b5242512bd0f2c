package domain_test

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/domain"
)

// TestPropertyReturnsNeverCreditMoreThanTheInvoice: for random orders (amounts up to the caps,
// any tax rate) and random sequences of partial returns, the credit notes' tax and net never
// exceed the invoice's at any step, and equal them once every unit is back.
func TestPropertyReturnsNeverCreditMoreThanTheInvoice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nLines := rapid.IntRange(1, 4).Draw(t, "lines")
		var lines []domain.OrderLine
		var shipped []domain.ShippedLine
		for i := range nLines {
			price := rapid.OneOf(rapid.Int64Range(0, 100), rapid.Int64Range(0, domain.MaxAmount), rapid.Just(int64(domain.MaxAmount))).Draw(t, "unit price")
			q := rapid.Int64Range(1, 12).Draw(t, "quantity")
			lines = append(lines, domain.OrderLine{SKU: fmt.Sprintf("S%d", i), Quantity: q, UnitPrice: price})
			shipped = append(shipped, domain.ShippedLine{SKU: lines[i].SKU, Quantity: q})
		}
		rate := rapid.OneOf(rapid.Int64Range(0, domain.MaxTaxRateBps), rapid.SampledFrom([]int64{0, 1, 5000, 9999, 10000})).Draw(t, "tax rate")
		place := domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: lines, TaxRateBps: rate, At: now}
		placedEvents, err := domain.DecidePlaceOrder(domain.Order{}, place)
		if err != nil {
			// Above the caps: nothing to return.
			return
		}
		o := domain.EvolveOrder(domain.Order{}, placedEvents[0])
		for _, e := range []domain.Event{
			domain.OrderConfirmed{OrderID: "O1", ConfirmedAt: now},
			domain.OrderInvoiced{OrderID: "O1", CustomerID: "C1", InvoiceNumber: "INV-1", Subtotal: o.Subtotal, Tax: o.Tax, Total: o.Total, InvoicedAt: now},
			domain.OrderShipped{OrderID: "O1", Carrier: "DHL", TrackingNumber: "T1", Lines: shipped, ShippedAt: now},
			domain.OrderDelivered{OrderID: "O1", DeliveredAt: now},
		} {
			o = domain.EvolveOrder(o, e)
		}
		left := map[string]int64{}
		for _, l := range lines {
			left[l.SKU] = l.Quantity
		}
		var creditedNet, creditedTax int64
		for n := 1; len(left) > 0; n++ {
			var ret []domain.ShippedLine
			for _, l := range lines {
				if left[l.SKU] > 0 && rapid.Bool().Draw(t, "returns "+l.SKU) {
					ret = append(ret, domain.ShippedLine{SKU: l.SKU, Quantity: rapid.Int64Range(1, left[l.SKU]).Draw(t, "quantity")})
				}
			}
			if len(ret) == 0 {
				continue
			}
			id := fmt.Sprintf("R%d", n)
			returned, err := domain.DecideReturnItems(o, domain.ReturnItems{OrderID: "O1", ReturnID: id, Lines: ret, Reason: "broken", At: now})
			if err != nil {
				t.Fatalf("return %v: %v", ret, err)
			}
			for _, e := range returned {
				o = domain.EvolveOrder(o, e)
			}
			notes, err := domain.DecideRecordCreditNote(o, domain.RecordCreditNote{OrderID: "O1", CreditNoteNumber: "CN-" + id, Reason: domain.CreditForReturn, ReturnID: id, At: now})
			if err != nil {
				t.Fatalf("credit note for %s: %v", id, err)
			}
			note := notes[0].(domain.CreditNoteIssued)
			if note.Net < 0 || note.Tax < 0 || note.Total != note.Net+note.Tax {
				t.Fatalf("credit note %+v: negative or unbalanced", note)
			}
			for _, e := range notes {
				o = domain.EvolveOrder(o, e)
			}
			creditedNet += note.Net
			creditedTax += note.Tax
			for _, r := range ret {
				if left[r.SKU] -= r.Quantity; left[r.SKU] == 0 {
					delete(left, r.SKU)
				}
			}
			if creditedTax > o.Tax || creditedNet > o.Subtotal {
				t.Fatalf("after %s credited net %d tax %d, invoiced net %d tax %d", id, creditedNet, creditedTax, o.Subtotal, o.Tax)
			}
		}
		if creditedNet != o.Subtotal || creditedTax != o.Tax || o.Credited != o.Total {
			t.Fatalf("every unit back: credited net %d tax %d total %d, invoiced net %d tax %d total %d",
				creditedNet, creditedTax, o.Credited, o.Subtotal, o.Tax, o.Total)
		}
	})
}
