package automation

import (
	"strings"
	"testing"

	"github.com/orderledger/orderledger/domain"
)

// Every event the automation handles is about an order or a purchase order, which its lanes
// serialise on: a handled type that named neither would be handled out of order.
func TestHandledEventsNameTheirSubject(t *testing.T) {
	for typ := range handledTypes {
		e, err := domain.DecodeEvent(typ, []byte(`{"order_id":"o-1"}`))
		if err != nil {
			e, err = domain.DecodeEvent(typ, []byte(`{"purchase_order_id":"po-1"}`))
		}
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got := subject(e)
		if got != "order:o-1" && got != "purchase_order:po-1" {
			t.Errorf("%s: subject %q; want order:o-1 or purchase_order:po-1", typ, got)
		}
		if strings.HasPrefix(typ, "Replenishment") || strings.HasPrefix(typ, "PurchaseOrder") {
			if got != "purchase_order:po-1" {
				t.Errorf("%s: subject %q; want its purchase order", typ, got)
			}
		}
	}
}
