package projections_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// moneyHistory makes a random order-to-cash history in several currencies through the
// domain's own decisions, so every write in it is one the API accepts: prices often at the
// cap (10^12), totals up to 10^13, cancellations after invoicing, partial returns, payments
// and refunds.
type moneyHistory struct {
	rng     *rand.Rand
	records []historygen.Record
	invoice int
	credit  int
}

var moneyCurrencies = []string{"EUR", "USD", "JPY", "BHD"}

func (h *moneyHistory) at(day int) time.Time {
	return time.Date(2025, time.March, 1+day, h.rng.IntN(24), h.rng.IntN(60), h.rng.IntN(60), 0, time.UTC)
}

func (h *moneyHistory) amount() int64 {
	switch h.rng.IntN(4) {
	case 0:
		return domain.MaxAmount
	case 1:
		return domain.MaxAmount - h.rng.Int64N(1000)
	case 2:
		return h.rng.Int64N(domain.MaxAmount)
	}
	return h.rng.Int64N(10000)
}

func (h *moneyHistory) decide(t *testing.T, o *domain.Order, stream string, events []domain.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", stream, err)
	}
	for _, e := range events {
		*o = domain.EvolveOrder(*o, e)
		h.records = append(h.records, historygen.Record{Stream: stream, Event: e})
	}
}

func (h *moneyHistory) order(t *testing.T, id, customer string) {
	day := h.rng.IntN(20)
	var cmd domain.PlaceOrder
	for {
		var lines []domain.OrderLine
		for i := range 1 + h.rng.IntN(3) {
			lines = append(lines, domain.OrderLine{SKU: fmt.Sprintf("S%d", i), Quantity: 1 + h.rng.Int64N(4), UnitPrice: h.amount()})
		}
		cmd = domain.PlaceOrder{OrderID: id, CustomerID: customer, Channel: []string{"web", "store", "phone"}[h.rng.IntN(3)],
			Currency: moneyCurrencies[h.rng.IntN(len(moneyCurrencies))], Lines: lines,
			TaxRateBps: []int64{0, 1950, 5000, 10000, h.rng.Int64N(10001)}[h.rng.IntN(5)], At: h.at(day)}
		if _, _, _, err := domain.ValidatePlaceOrder(cmd); err == nil {
			break
		}
	}
	stream := domain.OrderStream(id)
	var o domain.Order
	events, err := domain.DecidePlaceOrder(o, cmd)
	h.decide(t, &o, stream, events, err)
	for _, l := range cmd.Lines {
		events, err = domain.DecideRecordLineAllocation(o, domain.RecordLineAllocation{OrderID: id, SKU: l.SKU, Reserved: l.Quantity, At: h.at(day)})
		h.decide(t, &o, stream, events, err)
	}
	pay := func() {
		for range h.rng.IntN(4) {
			owed := min(o.Outstanding(), domain.MaxAmount)
			if owed <= 0 {
				return
			}
			amount := owed
			if h.rng.IntN(2) == 0 {
				amount = 1 + h.rng.Int64N(owed)
			}
			events, err = domain.DecideRecordPayment(o, domain.RecordPayment{OrderID: id, PaymentID: fmt.Sprintf("P%d", len(h.records)), Amount: amount, Method: "card", At: h.at(day + 1 + h.rng.IntN(5))})
			h.decide(t, &o, stream, events, err)
		}
	}
	refund := func() {
		if refundable := min(o.Paid-o.Refunded, domain.MaxAmount); refundable > 0 && h.rng.IntN(2) == 0 {
			events, err = domain.DecideIssueRefund(o, domain.IssueRefund{OrderID: id, RefundID: fmt.Sprintf("F%d", len(h.records)), Amount: 1 + h.rng.Int64N(refundable), At: h.at(day + 6 + h.rng.IntN(5))})
			h.decide(t, &o, stream, events, err)
		}
	}
	if h.rng.IntN(5) == 0 {
		return // placed and left
	}
	h.invoice++
	events, err = domain.DecideRecordInvoice(o, domain.RecordInvoice{OrderID: id, InvoiceNumber: fmt.Sprintf("INV-%d", h.invoice), At: h.at(day)})
	h.decide(t, &o, stream, events, err)
	pay()
	if h.rng.IntN(4) == 0 {
		events, err = domain.DecideCancelOrder(o, domain.CancelOrder{OrderID: id, Reason: "changed mind", At: h.at(day + 1)})
		h.decide(t, &o, stream, events, err)
		h.credit++
		events, err = domain.DecideRecordCreditNote(o, domain.RecordCreditNote{OrderID: id, CreditNoteNumber: fmt.Sprintf("CN-%d", h.credit), Reason: domain.CreditForCancellation, At: h.at(day + 2)})
		h.decide(t, &o, stream, events, err)
		refund()
		return
	}
	events, err = domain.DecideShipOrder(o, domain.ShipOrder{OrderID: id, Carrier: "DHL", TrackingNumber: "T", At: h.at(day + 2)})
	h.decide(t, &o, stream, events, err)
	events, err = domain.DecideDeliverOrder(o, domain.DeliverOrder{OrderID: id, At: h.at(day + 3)})
	h.decide(t, &o, stream, events, err)
	for n := range h.rng.IntN(3) {
		var back []domain.ShippedLine
		for _, l := range o.Lines {
			if left := l.Shipped - l.Returned; left > 0 && h.rng.IntN(2) == 0 {
				back = append(back, domain.ShippedLine{SKU: l.SKU, Quantity: 1 + h.rng.Int64N(left)})
			}
		}
		if len(back) == 0 {
			continue
		}
		returnID := fmt.Sprintf("R%d", n)
		events, err = domain.DecideReturnItems(o, domain.ReturnItems{OrderID: id, ReturnID: returnID, Lines: back, Reason: "broken", At: h.at(day + 4)})
		h.decide(t, &o, stream, events, err)
		h.credit++
		events, err = domain.DecideRecordCreditNote(o, domain.RecordCreditNote{OrderID: id, CreditNoteNumber: fmt.Sprintf("CN-%d", h.credit), Reason: domain.CreditForReturn, ReturnID: returnID, At: h.at(day + 5)})
		h.decide(t, &o, stream, events, err)
	}
	pay()
	refund()
}

// bigSum is a sum in arbitrary precision, independent of projections.Amount.
type bigSum struct{ big.Int }

func (s *bigSum) add(v int64) { s.Add(&s.Int, big.NewInt(v)) }

func (s *bigSum) equals(a projections.Amount) bool { return s.Cmp(a.Big()) == 0 }

// TestPropertyMoneyIsExactPerCurrency drives random histories at the amount caps through both
// read stores and compares every money aggregate (sales summary, by channel, daily, trial
// balance as of a date and overall, customers per currency, the currencies held) with sums of
// the events in arbitrary precision.
func TestPropertyMoneyIsExactPerCurrency(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		var all []historygen.Record
		r := projectionstest.StartRunner(t, env)
		for seed := range uint64(3) {
			h := &moneyHistory{rng: rand.New(rand.NewPCG(seed, 11))}
			customers := []string{fmt.Sprintf("c%d-a", seed), fmt.Sprintf("c%d-b", seed), fmt.Sprintf("c%d-c", seed)}
			for _, c := range customers {
				h.records = append(h.records, historygen.Record{Stream: domain.CustomerStream(c), Event: domain.CustomerRegistered{CustomerID: c, Name: "N", Email: "n@example.com", RegisteredAt: time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC)}})
			}
			for i := range 40 {
				h.order(t, fmt.Sprintf("o%d-%d", seed, i), customers[h.rng.IntN(len(customers))])
			}
			head := projectionstest.Append(t, env.Store, h.records)
			projectionstest.CatchUp(t, r, head)
			all = append(all, h.records...)
			checkMoney(t, env.Read, all)
		}
	})
}

// checkMoney compares the read models' money with the records' (the read store may hold
// earlier histories too: the expected sums run over all records appended so far).
func checkMoney(t *testing.T, read *projections.ReadStore, records []historygen.Record) {
	t.Helper()
	ctx := t.Context()
	type sales struct {
		orders                                                       int64
		invoiced, credited, invoiceTax, creditTax, payments, refunds bigSum
		channelOrders                                                map[string]int64
		channelNet                                                   map[string]*bigSum
		days                                                         map[string]*[3]bigSum
	}
	type books struct{ debit, credit [4]bigSum } // accounts in trial balance order
	type balance struct{ ltv, outstanding bigSum }
	type orderMoney struct {
		currency, customer, channel     string
		total, credited, paid, refunded int64
		invoiced                        bool
	}
	cutoff := time.Date(2025, time.March, 12, 0, 0, 0, 0, time.UTC)
	perCurrency := map[string]*sales{}
	ledger, ledgerToCutoff := map[string]*books{}, map[string]*books{}
	orders := map[string]*orderMoney{}
	post := func(currency string, at time.Time, account int, debit, credit int64) {
		if ledger[currency] == nil {
			ledger[currency], ledgerToCutoff[currency] = &books{}, &books{}
		}
		ledger[currency].debit[account].add(debit)
		ledger[currency].credit[account].add(credit)
		if !at.After(cutoff) {
			ledgerToCutoff[currency].debit[account].add(debit)
			ledgerToCutoff[currency].credit[account].add(credit)
		}
	}
	const ar, cash, revenue, tax = 0, 1, 2, 3
	for _, rec := range records {
		var id string
		switch e := rec.Event.(type) {
		case domain.OrderPlaced:
			orders[e.OrderID] = &orderMoney{currency: e.Currency, customer: e.CustomerID, channel: e.Channel, total: e.Total}
			s := perCurrency[e.Currency]
			if s == nil {
				s = &sales{channelOrders: map[string]int64{}, channelNet: map[string]*bigSum{"web": {}, "store": {}, "phone": {}}, days: map[string]*[3]bigSum{}}
				perCurrency[e.Currency] = s
			}
			s.orders++
			s.channelOrders[e.Channel]++
			continue
		case domain.OrderInvoiced:
			id = e.OrderID
		case domain.CreditNoteIssued:
			id = e.OrderID
		case domain.PaymentReceived:
			id = e.OrderID
		case domain.RefundIssued:
			id = e.OrderID
		default:
			continue
		}
		o := orders[id]
		s := perCurrency[o.currency]
		day := func(at time.Time) *[3]bigSum {
			d := at.UTC().Format(time.DateOnly)
			if s.days[d] == nil {
				s.days[d] = &[3]bigSum{}
			}
			return s.days[d]
		}
		switch e := rec.Event.(type) {
		case domain.OrderInvoiced:
			o.invoiced = true
			s.invoiced.add(e.Total)
			s.invoiceTax.add(e.Tax)
			s.channelNet[o.channel].add(e.Total)
			day(e.InvoicedAt)[0].add(e.Total)
			post(o.currency, e.InvoicedAt, ar, e.Total, 0)
			post(o.currency, e.InvoicedAt, revenue, 0, e.Subtotal)
			post(o.currency, e.InvoicedAt, tax, 0, e.Tax)
		case domain.CreditNoteIssued:
			o.credited += e.Total
			s.credited.add(e.Total)
			s.creditTax.add(e.Tax)
			s.channelNet[o.channel].add(-e.Total)
			day(e.IssuedAt)[1].add(e.Total)
			post(o.currency, e.IssuedAt, revenue, e.Net, 0)
			post(o.currency, e.IssuedAt, tax, e.Tax, 0)
			post(o.currency, e.IssuedAt, ar, 0, e.Total)
		case domain.PaymentReceived:
			o.paid += e.Amount
			s.payments.add(e.Amount)
			day(e.ReceivedAt)[2].add(e.Amount)
			post(o.currency, e.ReceivedAt, cash, e.Amount, 0)
			post(o.currency, e.ReceivedAt, ar, 0, e.Amount)
		case domain.RefundIssued:
			o.refunded += e.Amount
			s.refunds.add(e.Amount)
			post(o.currency, e.RefundedAt, ar, e.Amount, 0)
			post(o.currency, e.RefundedAt, cash, 0, e.Amount)
		}
	}

	for currency, want := range perCurrency {
		got, err := read.SalesSummary(ctx, currency, projections.Period{})
		if err != nil {
			t.Fatal(err)
		}
		var tax, net bigSum
		tax.Sub(&want.invoiceTax.Int, &want.creditTax.Int)
		net.Sub(&want.invoiced.Int, &want.credited.Int)
		if got.Currency != currency || got.Orders != want.orders || !want.invoiced.equals(got.Invoiced) || !want.credited.equals(got.Credited) ||
			!net.equals(got.NetSales) || !tax.equals(got.Tax) || !want.payments.equals(got.Payments) || !want.refunds.equals(got.Refunds) {
			t.Errorf("%s sales summary %+v; want orders %d invoiced %s credited %s net %s tax %s payments %s refunds %s", currency, got,
				want.orders, &want.invoiced, &want.credited, &net, &tax, &want.payments, &want.refunds)
		}
		for channel, cs := range map[string]projections.ChannelSales{"web": got.ByChannel.Web, "store": got.ByChannel.Store, "phone": got.ByChannel.Phone} {
			if cs.Orders != want.channelOrders[channel] || !want.channelNet[channel].equals(cs.NetSales) {
				t.Errorf("%s sales of %s: %+v, want %d orders, net %s", currency, channel, cs, want.channelOrders[channel], want.channelNet[channel])
			}
		}
		days, err := read.SalesDaily(ctx, currency, projections.Period{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range days {
			w := want.days[d.Date]
			if w == nil {
				w = &[3]bigSum{}
			}
			if !w[0].equals(d.Invoiced) || !w[1].equals(d.Credited) || !w[2].equals(d.Payments) {
				t.Errorf("%s sales of %s: %+v, want invoiced %s credited %s payments %s", currency, d.Date, d, &w[0], &w[1], &w[2])
			}
		}
	}
	for currency, want := range ledger {
		for _, to := range []time.Time{{}, cutoff} {
			w := want
			if !to.IsZero() {
				w = ledgerToCutoff[currency]
			}
			tb, err := read.TrialBalance(ctx, currency, to)
			if err != nil {
				t.Fatal(err)
			}
			var totalDebit, totalCredit bigSum
			for i, a := range tb.Accounts {
				totalDebit.Add(&totalDebit.Int, &w.debit[i].Int)
				totalCredit.Add(&totalCredit.Int, &w.credit[i].Int)
				if !w.debit[i].equals(a.Debit) || !w.credit[i].equals(a.Credit) {
					t.Errorf("%s trial balance to %v, %s: debit %s credit %s, want %s %s", currency, to, a.Account, a.Debit, a.Credit, &w.debit[i], &w.credit[i])
				}
			}
			if !totalDebit.equals(tb.TotalDebit) || !totalCredit.equals(tb.TotalCredit) || tb.TotalDebit != tb.TotalCredit {
				t.Errorf("%s trial balance to %v: totals %s %s, want %s %s", currency, to, tb.TotalDebit, tb.TotalCredit, &totalDebit, &totalCredit)
			}
		}
	}
	held, err := read.LedgerCurrencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var booked []string
	for c := range ledger {
		booked = append(booked, c)
	}
	slices.Sort(booked)
	if !slices.Equal(held, booked) {
		t.Errorf("currencies %v, want %v", held, booked)
	}

	balances := map[string]map[string]*balance{}
	for _, o := range orders {
		if balances[o.customer] == nil {
			balances[o.customer] = map[string]*balance{}
		}
		b := balances[o.customer][o.currency]
		if b == nil && !o.invoiced && o.credited == 0 && o.paid == 0 {
			continue // an order that moved no money yet has no balance
		}
		if b == nil {
			b = &balance{}
			balances[o.customer][o.currency] = b
		}
		if o.invoiced {
			b.ltv.add(o.total)
			b.outstanding.add(o.total - o.credited - o.paid + o.refunded)
		}
		b.ltv.add(-o.credited)
	}
	for customer, want := range balances {
		c, err := read.Customer(ctx, customer, "JPY")
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ByCurrency) != len(want) {
			t.Errorf("customer %s by_currency %v, want %d currencies", customer, c.ByCurrency, len(want))
		}
		for currency, w := range want {
			got := c.ByCurrency[currency]
			if !w.ltv.equals(got.LifetimeValue) || !w.outstanding.equals(got.OutstandingBalance) {
				t.Errorf("customer %s in %s: %+v, want lifetime %s outstanding %s", customer, currency, got, &w.ltv, &w.outstanding)
			}
			if currency == "JPY" && (c.LifetimeValue != got.LifetimeValue || c.OutstandingBalance != got.OutstandingBalance) {
				t.Errorf("customer %s: base-currency figures %s %s, want JPY's %+v", customer, c.LifetimeValue, c.OutstandingBalance, got)
			}
		}
		if _, ok := want["JPY"]; !ok && (!c.LifetimeValue.IsZero() || !c.OutstandingBalance.IsZero()) {
			t.Errorf("customer %s has no JPY orders, yet base-currency figures %s %s", customer, c.LifetimeValue, c.OutstandingBalance)
		}
	}
}

// TestSumsBeyondInt64AreExact: sums that no int64 holds (10^19 minor units here, from events
// larger than the caps allow today, as an older version accepted them) are exact on both
// backends, in every read model that sums.
func TestSumsBeyondInt64AreExact(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		const orders, total = 1000, int64(10_000_000_000_000_000) // 10^3 × 10^16 = 10^19
		at := time.Date(2025, time.March, 1, 9, 0, 0, 0, time.UTC)
		records := []historygen.Record{{Stream: domain.CustomerStream("whale"), Event: domain.CustomerRegistered{CustomerID: "whale", Name: "W", Email: "w@example.com", RegisteredAt: at}}}
		for i := range orders {
			id := fmt.Sprintf("o%d", i)
			stream := domain.OrderStream(id)
			records = append(records,
				historygen.Record{Stream: stream, Event: domain.OrderPlaced{OrderID: id, CustomerID: "whale", Channel: "web", Currency: "EUR",
					Lines: []domain.OrderLine{{SKU: "S", Quantity: 1, UnitPrice: total}}, Subtotal: total, Total: total, PlacedAt: at}},
				historygen.Record{Stream: stream, Event: domain.OrderConfirmed{OrderID: id, ConfirmedAt: at}},
				historygen.Record{Stream: stream, Event: domain.OrderInvoiced{OrderID: id, CustomerID: "whale", InvoiceNumber: fmt.Sprintf("INV-%d", i+1), Subtotal: total, Total: total, InvoicedAt: at}},
				historygen.Record{Stream: stream, Event: domain.PaymentReceived{OrderID: id, PaymentID: "P" + id, Amount: total - 1, Method: "card", ReceivedAt: at}})
		}
		head := projectionstest.Append(t, env.Store, records)
		r := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r, head)
		ctx := t.Context()
		want := func(v string) projections.Amount {
			b, _ := new(big.Int).SetString(v, 10)
			a, err := projections.AmountFromBig(b)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		sum, err := env.Read.SalesSummary(ctx, "EUR", projections.Period{})
		if err != nil || sum.Invoiced != want("10000000000000000000") || sum.Payments != want("9999999999999999000") || sum.ByChannel.Web.NetSales != want("10000000000000000000") {
			t.Errorf("sales summary %+v (err %v)", sum, err)
		}
		days, err := env.Read.SalesDaily(ctx, "EUR", projections.Period{})
		if err != nil || len(days) != 1 || days[0].Invoiced != want("10000000000000000000") {
			t.Errorf("sales daily %+v (err %v)", days, err)
		}
		tb, err := env.Read.TrialBalance(ctx, "EUR", time.Time{})
		if err != nil || tb.Accounts[0].Debit != want("10000000000000000000") || tb.TotalDebit != want("19999999999999999000") || tb.TotalCredit != tb.TotalDebit {
			t.Errorf("trial balance %+v (err %v)", tb, err)
		}
		c, err := env.Read.Customer(ctx, "whale", "EUR")
		if err != nil || c.LifetimeValue != want("10000000000000000000") || c.OutstandingBalance != want("1000") {
			t.Errorf("customer %+v (err %v)", c, err)
		}
		if doc, err := json.Marshal(c); err != nil || !strings.Contains(string(doc), `"lifetime_value":10000000000000000000,`) {
			t.Errorf("customer document %s (err %v): want lifetime_value as an exact JSON integer", doc, err)
		}
	})
}
