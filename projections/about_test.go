package projections

import (
	"testing"

	"github.com/orderledger/orderledger/domain"
)

// Every event the orders projection handles names its order: a new type added to
// orderEventTypes without domain.AboutOrder would be projected onto order "".
func TestOrderEventsNameTheirOrder(t *testing.T) {
	for typ := range orderEventTypes {
		e, err := domain.DecodeEvent(typ, []byte(`{"order_id":"o-1"}`))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got := orderIDOf(e); got != "o-1" {
			t.Errorf("%s: orderIDOf = %q, want o-1 (does it implement domain.AboutOrder?)", typ, got)
		}
	}
}
