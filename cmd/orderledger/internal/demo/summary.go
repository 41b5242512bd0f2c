package demo

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orderledger/orderledger/client"
	"github.com/orderledger/orderledger/domain"
)

// Summary is what a run did and what the server shows afterwards.
type Summary struct {
	Run     string
	Orders  int
	Elapsed time.Duration
	// ByStatus and ByChannel count the run's orders.
	ByStatus  map[string]int
	ByChannel map[string]int
	// Returned counts orders partly returned and refunded; CancelledInvoiced, cancelled
	// orders whose invoice a credit note reversed.
	Returned          int
	CancelledInvoiced int
	// Invoices and CreditNotes are the numbers on the run's orders, in numeric order.
	Invoices    []string
	CreditNotes []string
	// PurchaseOrdersRaised and PurchaseOrdersReceived count those for the run's SKUs.
	PurchaseOrdersRaised   int
	PurchaseOrdersReceived int
	Stock                  []StockLevel
	TrialBalance           TrialBalance
	Sales                  Sales
}

// StockLevel is GET /v1/inventory/{sku}, as far as the summary shows it.
type StockLevel struct {
	SKU         string `json:"sku"`
	OnHand      int64  `json:"on_hand"`
	Reserved    int64  `json:"reserved"`
	Available   int64  `json:"available"`
	Backordered int64  `json:"backordered"`
	Incoming    int64  `json:"incoming"`
}

// TrialBalance is GET /v1/ledger/trial-balance.
type TrialBalance struct {
	Accounts []struct {
		Account string `json:"account"`
		Debit   int64  `json:"debit"`
		Credit  int64  `json:"credit"`
	} `json:"accounts"`
	TotalDebit  int64 `json:"total_debit"`
	TotalCredit int64 `json:"total_credit"`
}

// Sales is GET /v1/sales/summary.
type Sales struct {
	Orders    int64 `json:"orders"`
	Invoiced  int64 `json:"invoiced"`
	Credited  int64 `json:"credited"`
	NetSales  int64 `json:"net_sales"`
	Tax       int64 `json:"tax"`
	Payments  int64 `json:"payments"`
	Refunds   int64 `json:"refunds"`
	ByChannel map[string]struct {
		Orders   int64 `json:"orders"`
		NetSales int64 `json:"net_sales"`
	} `json:"by_channel"`
}

// summarize reads back what the run left on the server.
func (d *driver) summarize(ctx context.Context, p plan) (*Summary, error) {
	docs, err := d.settle(ctx, p)
	if err != nil {
		return nil, err
	}
	s := &Summary{Run: p.run, Orders: len(p.orders), ByStatus: map[string]int{}, ByChannel: map[string]int{}}
	for i, doc := range docs {
		s.ByStatus[doc.Status]++
		s.ByChannel[doc.Channel]++
		if doc.Invoiced() {
			s.Invoices = append(s.Invoices, *doc.InvoiceNumber)
		}
		for _, cn := range doc.CreditNotes {
			s.CreditNotes = append(s.CreditNotes, cn.Number)
		}
		switch {
		case p.orders[i].fate == fateReturn && len(doc.CreditNotes) > 0:
			s.Returned++
		case doc.Status == "cancelled" && doc.Invoiced():
			s.CancelledInvoiced++
		}
	}
	byNumber := func(a, b string) int { return documentNumber(a) - documentNumber(b) }
	slices.SortFunc(s.Invoices, byNumber)
	slices.SortFunc(s.CreditNotes, byNumber)

	for _, pr := range p.products {
		var level StockLevel
		if err := d.c.Get(ctx, "/v1/inventory/"+pr.sku, nil, &level); err != nil {
			return nil, err
		}
		s.Stock = append(s.Stock, level)
	}
	pos, err := d.purchaseOrders(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, po := range pos {
		if p.ours(po.SKU) {
			s.PurchaseOrdersRaised++
			if po.Status == "received" {
				s.PurchaseOrdersReceived++
			}
		}
	}
	if err := d.c.Get(ctx, "/v1/ledger/trial-balance", url.Values{"currency": {demoCurrency}}, &s.TrialBalance); err != nil {
		return nil, err
	}
	if err := d.c.Get(ctx, "/v1/sales/summary", url.Values{"currency": {demoCurrency}}, &s.Sales); err != nil {
		return nil, err
	}
	return s, nil
}

// settle reads every order of the run until two readings half a second apart agree: the
// server may still be finishing what the last writes set off (a credit note for an order
// cancelled while its invoice was being recorded).
func (d *driver) settle(ctx context.Context, p plan) ([]client.Order, error) {
	deadline := time.Now().Add(d.cfg.Wait)
	var last []client.Order
	for {
		docs := make([]client.Order, len(p.orders))
		for i, o := range p.orders {
			if err := d.c.Get(ctx, "/v1/orders/"+o.id, nil, &docs[i]); err != nil {
				return nil, err
			}
		}
		if slices.EqualFunc(docs, last, func(a, b client.Order) bool { return a.UpdatedAt.Equal(b.UpdatedAt) && a.Status == b.Status }) || time.Now().After(deadline) {
			return docs, nil
		}
		last = docs
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// documentNumber is n of "INV-n" or "CN-n".
func documentNumber(doc string) int {
	_, n, _ := strings.Cut(doc, "-")
	v, _ := strconv.Atoi(n)
	return v
}

// Print writes the summary for someone who has never seen orderledger.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\norderledger demo, run %s: %d orders through order-to-cash in %s\n", s.Run, s.Orders, s.Elapsed.Round(100*time.Millisecond))

	fmt.Fprintln(w, "\nWhat happened to the orders")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, status := range sortedKeys(s.ByStatus) {
		note := ""
		switch status {
		case "completed":
			note = "paid, shipped and delivered"
			if s.Returned > 0 {
				note += fmt.Sprintf("; %d partly returned, credited and refunded", s.Returned)
			}
		case "cancelled":
			note = "cancelled before shipment; stock released"
			if s.CancelledInvoiced > 0 {
				note += fmt.Sprintf("; %d had been invoiced, each reversed by a credit note", s.CancelledInvoiced)
			}
		default:
			note = "not finished when the demo ended"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", status, s.ByStatus[status], note)
	}
	channels := make([]string, 0, len(s.ByChannel))
	for _, c := range sortedKeys(s.ByChannel) {
		channels = append(channels, fmt.Sprintf("%s %d", c, s.ByChannel[c]))
	}
	fmt.Fprintf(tw, "  by channel\t\t%s\n", strings.Join(channels, ", "))
	tw.Flush()

	fmt.Fprintln(w, "\nDocuments the server issued on its own")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  invoices\t%d\t%s\n", len(s.Invoices), numberRange(s.Invoices))
	fmt.Fprintf(tw, "  credit notes\t%d\t%s\n", len(s.CreditNotes), numberRange(s.CreditNotes))
	fmt.Fprintf(tw, "  purchase orders\t%d\traised when stock ran short; %d received from the supplier\n", s.PurchaseOrdersRaised, s.PurchaseOrdersReceived)
	tw.Flush()

	fmt.Fprintln(w, "\nStock now (reserved never exceeds on hand)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SKU\t%8s\t%8s\t%9s\t%11s\t%8s\n", "on hand", "reserved", "available", "backordered", "incoming")
	for _, l := range s.Stock {
		fmt.Fprintf(tw, "  %s\t%8d\t%8d\t%9d\t%11d\t%8d\n", l.SKU, l.OnHand, l.Reserved, l.Available, l.Backordered, l.Incoming)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTrial balance: every posting of the ledger on this server, in EUR")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  account\t%14s\t%14s\n", "debit", "credit")
	for _, a := range s.TrialBalance.Accounts {
		fmt.Fprintf(tw, "  %s\t%14s\t%14s\n", a.Account, money(a.Debit), money(a.Credit))
	}
	fmt.Fprintf(tw, "  total\t%14s\t%14s\n", money(s.TrialBalance.TotalDebit), money(s.TrialBalance.TotalCredit))
	tw.Flush()
	if s.TrialBalance.TotalDebit == s.TrialBalance.TotalCredit {
		fmt.Fprintln(w, "  balanced: every debit has its credit")
	} else {
		fmt.Fprintf(w, "  NOT BALANCED: debits and credits differ by %s\n", money(s.TrialBalance.TotalDebit-s.TrialBalance.TotalCredit))
	}

	sa := s.Sales
	fmt.Fprintln(w, "\nSales: every order on this server, in EUR")
	fmt.Fprintf(w, "  %d orders; invoiced %s − credited %s = net sales %s (tax %s)\n", sa.Orders, money(sa.Invoiced), money(sa.Credited), money(sa.NetSales), money(sa.Tax))
	fmt.Fprintf(w, "  payments %s, refunds %s\n", money(sa.Payments), money(sa.Refunds))
	var parts []string
	for _, c := range []string{"web", "store", "phone"} {
		if v, ok := sa.ByChannel[c]; ok {
			parts = append(parts, fmt.Sprintf("%s %d orders, %s", c, v.Orders, money(v.NetSales)))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "  by channel: %s\n", strings.Join(parts, "; "))
	}
}

// numberRange describes sorted document numbers: "INV-3 … INV-9, consecutive".
func numberRange(docs []string) string {
	switch len(docs) {
	case 0:
		return ""
	case 1:
		return docs[0]
	}
	first, last := docs[0], docs[len(docs)-1]
	text := first + " … " + last
	if documentNumber(last)-documentNumber(first)+1 == len(docs) {
		text += ", consecutive"
	}
	return text
}

// money formats minor units of the demo's currency in major units with that currency's
// digits and thousands grouped: 1,234.56 for EUR.
func money(minor int64) string {
	major := domain.MajorUnits(strconv.FormatInt(minor, 10), demoCurrency)
	sign := ""
	if strings.HasPrefix(major, "-") {
		sign, major = "-", major[1:]
	}
	whole, fraction, hasFraction := strings.Cut(major, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFraction {
		return sign + b.String() + "." + fraction
	}
	return sign + b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
