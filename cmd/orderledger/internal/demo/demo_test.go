package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	type seen struct {
		method, path, query, body string
		header                    http.Header
	}
	tests := []struct {
		name string
		// answers are given in turn, the last one repeated.
		answers  []func(w http.ResponseWriter)
		call     func(t *testing.T, c *client) error
		requests int64
		check    func(t *testing.T, err error, got []seen)
	}{
		{
			name:    "a write sends JSON with its idempotency key, actor and correlation, and decodes the answer",
			answers: []func(http.ResponseWriter){answer(201, `{"order_id":"o1","position":"12-12"}`)},
			call: func(t *testing.T, c *client) error {
				var w written
				err := c.post(t.Context(), "/v1/orders", "run/o1/place", "run-o1", map[string]any{"order_id": "o1"}, &w)
				if err == nil && w.Position != "12-12" {
					t.Errorf("position %q, want 12-12", w.Position)
				}
				return err
			},
			requests: 1,
			check: func(t *testing.T, err error, got []seen) {
				r := got[0]
				if err != nil || r.method != "POST" || r.path != "/v1/orders" || r.body != `{"order_id":"o1"}` {
					t.Fatalf("err %v, request %+v", err, r)
				}
				for h, want := range map[string]string{"Idempotency-Key": "run/o1/place", "X-Correlation-ID": "run-o1", "X-Actor": "demo", "Content-Type": "application/json"} {
					if r.header.Get(h) != want {
						t.Errorf("header %s = %q, want %q", h, r.header.Get(h), want)
					}
				}
			},
		},
		{
			name:    "a read sends its query and no body",
			answers: []func(http.ResponseWriter){answer(200, `{"status":"confirmed"}`)},
			call: func(t *testing.T, c *client) error {
				var doc orderDoc
				err := c.get(t.Context(), "/v1/orders/o1", url.Values{"after": {"12-12"}}, &doc)
				if err == nil && doc.Status != "confirmed" {
					t.Errorf("status %q", doc.Status)
				}
				return err
			},
			requests: 1,
			check: func(t *testing.T, err error, got []seen) {
				if err != nil || got[0].method != "GET" || got[0].query != "after=12-12" || got[0].body != "" || got[0].header.Get("Idempotency-Key") != "" {
					t.Fatalf("err %v, request %+v", err, got[0])
				}
			},
		},
		{
			name:    "a refusal is an APIError with the problem's code and detail, not retried",
			answers: []func(http.ResponseWriter){problem(409, "insufficient_stock", "on hand 3 + delta -5 is below reserved 2")},
			call: func(t *testing.T, c *client) error {
				return c.post(t.Context(), "/v1/inventory/X/adjustments", "k", "", map[string]any{"delta": -5}, nil)
			},
			requests: 1,
			check: func(t *testing.T, err error, _ []seen) {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "insufficient_stock" || !strings.Contains(err.Error(), "below reserved") {
					t.Fatalf("error %v; want a 409 insufficient_stock naming the rule", err)
				}
			},
		},
		{
			name:    "a 504 from ?after= and a 503 are retried with the same key",
			answers: []func(http.ResponseWriter){problem(504, "timeout", "read models behind"), problem(503, "not_ready", "starting"), answer(200, `{"position":"1-1"}`)},
			call: func(t *testing.T, c *client) error {
				return c.post(t.Context(), "/v1/purchase-orders/PO-1/receipt", "run/receipt/PO-1", "", map[string]any{}, nil)
			},
			requests: 3,
			check: func(t *testing.T, err error, got []seen) {
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range got {
					if r.header.Get("Idempotency-Key") != "run/receipt/PO-1" || r.body != "{}" {
						t.Fatalf("retry %+v lost its key or body", r)
					}
				}
			},
		},
		{
			name:    "a server that stays unavailable is given up on after the retries",
			answers: []func(http.ResponseWriter){problem(503, "not_ready", "starting")},
			call: func(t *testing.T, c *client) error {
				return c.get(t.Context(), "/v1/inventory", nil, nil)
			},
			requests: 5,
			check: func(t *testing.T, err error, _ []seen) {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 503 {
					t.Fatalf("error %v, want the last 503", err)
				}
			},
		},
		{
			name:    "an answer that is not JSON is an error",
			answers: []func(http.ResponseWriter){answer(200, `<html>`)},
			call: func(t *testing.T, c *client) error {
				var doc orderDoc
				return c.get(t.Context(), "/v1/orders/o1", nil, &doc)
			},
			requests: 1,
			check: func(t *testing.T, err error, _ []seen) {
				if err == nil || !strings.Contains(err.Error(), "decode answer") {
					t.Fatalf("error %v, want a decode error", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				n   atomic.Int64
				got = make(chan seen, 10)
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()}
				i := min(int(n.Add(1))-1, len(tc.answers)-1)
				tc.answers[i](w)
			}))
			defer srv.Close()
			c := newClient(srv.URL+"/", srv.Client())
			c.pause = time.Millisecond
			err := tc.call(t, c)
			close(got)
			var requests []seen
			for r := range got {
				requests = append(requests, r)
			}
			if int64(len(requests)) != tc.requests {
				t.Fatalf("%d requests, want %d", len(requests), tc.requests)
			}
			tc.check(t, err, requests)
		})
	}
}

func answer(status int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func problem(status int, code, detail string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"type": "https://orderledger.dev/problems/" + code, "title": code, "status": status, "detail": detail, "code": code})
	}
}

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
