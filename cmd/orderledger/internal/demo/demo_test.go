package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMoneyAndNumberRanges(t *testing.T) {
	for _, tc := range []struct {
		cents int64
		want  string
	}{{0, "0.00"}, {5, "0.05"}, {123456, "1,234.56"}, {-99, "-0.99"}, {100000000, "1,000,000.00"}} {
		if got := money(tc.cents); got != tc.want {
			t.Errorf("money(%d) = %q, want %q", tc.cents, got, tc.want)
		}
	}
	for _, tc := range []struct {
		docs []string
		want string
	}{
		{nil, ""},
		{[]string{"INV-4"}, "INV-4"},
		{[]string{"INV-4", "INV-5", "INV-6"}, "INV-4 … INV-6, consecutive"},
		{[]string{"CN-2", "CN-9"}, "CN-2 … CN-9"},
	} {
		if got := numberRange(tc.docs); got != tc.want {
			t.Errorf("numberRange(%v) = %q, want %q", tc.docs, got, tc.want)
		}
	}
}

func TestPlanIsRepeatableAndMixed(t *testing.T) {
	a := newPlan("run", 200, newRand(7))
	b := newPlan("run", 200, newRand(7))
	fates, channels, over := map[string]int{}, map[string]int{}, 0
	for i, o := range a.orders {
		if o.id != b.orders[i].id || o.fate != b.orders[i].fate || len(o.lines) != len(b.orders[i].lines) {
			t.Fatalf("order %d differs between two plans of one seed", i)
		}
		fates[o.fate]++
		channels[o.channel]++
		for _, l := range o.lines {
			for _, p := range a.products {
				if p.sku == l.SKU && l.Quantity > p.opening {
					over++
				}
			}
		}
	}
	if len(fates) != 4 || len(channels) != 3 || over == 0 {
		t.Fatalf("fates %v, channels %v, %d over-ordered lines: want every fate, every channel and some over-orders", fates, channels, over)
	}
}

func TestSummaryReadsForANewcomer(t *testing.T) {
	s := &Summary{
		Run: "demo-x", Orders: 3, Elapsed: 2 * time.Second,
		ByStatus:  map[string]int{"completed": 2, "cancelled": 1},
		ByChannel: map[string]int{"web": 2, "phone": 1},
		Returned:  1, CancelledInvoiced: 1,
		Invoices: []string{"INV-1", "INV-2", "INV-3"}, CreditNotes: []string{"CN-1", "CN-2"},
		PurchaseOrdersRaised: 1, PurchaseOrdersReceived: 1,
		Stock: []StockLevel{{SKU: "demo-x-MUG", OnHand: 55, Available: 55}},
		Sales: Sales{Orders: 3, Invoiced: 360000, Credited: 120000, NetSales: 240000},
	}
	s.TrialBalance.TotalDebit, s.TrialBalance.TotalCredit = 480000, 480000
	var out bytes.Buffer
	s.Print(&out)
	for _, want := range []string{
		"run demo-x: 3 orders",
		"completed 2 paid, shipped and delivered; 1 partly returned, credited and refunded",
		"cancelled 1 cancelled before shipment; stock released; 1 had been invoiced",
		"INV-1 … INV-3, consecutive",
		"demo-x-MUG",
		"balanced: every debit has its credit",
		"invoiced 3,600.00 − credited 1,200.00 = net sales 2,400.00",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("the summary does not say %q:\n%s", want, out.String())
		}
	}
}
