package client

import (
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
		call     func(t *testing.T, c *Client) error
		requests int64
		check    func(t *testing.T, err error, got []seen)
	}{
		{
			name:    "a write sends JSON with its idempotency key, actor and correlation, and decodes the answer",
			answers: []func(http.ResponseWriter){answer(201, `{"order_id":"o1","position":"12-12"}`)},
			call: func(t *testing.T, c *Client) error {
				var w Written
				err := c.Post(t.Context(), "/v1/orders", Headers{IdempotencyKey: "run/o1/place", CorrelationID: "run-o1"}, map[string]any{"order_id": "o1"}, &w)
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
				for h, want := range map[string]string{"Idempotency-Key": "run/o1/place", "X-Correlation-ID": "run-o1", "X-Actor": "demo", "Content-Type": "application/json", "Authorization": "Bearer s3cret"} {
					if r.header.Get(h) != want {
						t.Errorf("header %s = %q, want %q", h, r.header.Get(h), want)
					}
				}
			},
		},
		{
			name:    "a read sends its query and no body",
			answers: []func(http.ResponseWriter){answer(200, `{"status":"confirmed"}`)},
			call: func(t *testing.T, c *Client) error {
				var doc Order
				err := c.Get(t.Context(), "/v1/orders/o1", url.Values{"after": {"12-12"}}, &doc)
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
			call: func(t *testing.T, c *Client) error {
				return c.Post(t.Context(), "/v1/inventory/X/adjustments", Headers{IdempotencyKey: "k"}, map[string]any{"delta": -5}, nil)
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
			call: func(t *testing.T, c *Client) error {
				return c.Post(t.Context(), "/v1/purchase-orders/PO-1/receipt", Headers{IdempotencyKey: "run/receipt/PO-1"}, map[string]any{}, nil)
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
			call: func(t *testing.T, c *Client) error {
				return c.Get(t.Context(), "/v1/inventory", nil, nil)
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
			call: func(t *testing.T, c *Client) error {
				var doc Order
				return c.Get(t.Context(), "/v1/orders/o1", nil, &doc)
			},
			requests: 1,
			check: func(t *testing.T, err error, _ []seen) {
				if err == nil || !strings.Contains(err.Error(), "decode answer") {
					t.Fatalf("error %v, want a decode error", err)
				}
			},
		},
		{
			name:    "a write without an Idempotency-Key is not retried: a retry could apply it twice",
			answers: []func(http.ResponseWriter){problem(503, "unavailable", "store unreachable")},
			call: func(t *testing.T, c *Client) error {
				return c.Post(t.Context(), "/v1/orders", Headers{}, map[string]any{"order_id": "o2"}, nil)
			},
			requests: 1,
			check: func(t *testing.T, err error, _ []seen) {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != 503 || apiErr.Code != "unavailable" {
					t.Fatalf("error %v, want the 503", err)
				}
			},
		},
		{
			name:    "AwaitOrder reads with ?after= until the order is as wanted",
			answers: []func(http.ResponseWriter){answer(200, `{"order_id":"o1","status":"pending"}`), answer(200, `{"order_id":"o1","status":"confirmed","invoice_number":"INV-7"}`)},
			call: func(t *testing.T, c *Client) error {
				o, err := c.AwaitOrder(t.Context(), "o1", "3-3", "its invoice", time.Minute, Order.Invoiced)
				if err == nil && *o.InvoiceNumber != "INV-7" {
					t.Errorf("invoice %v", o.InvoiceNumber)
				}
				return err
			},
			requests: 2,
			check: func(t *testing.T, err error, got []seen) {
				if err != nil || got[1].path != "/v1/orders/o1" || got[1].query != "after=3-3" {
					t.Fatalf("err %v, requests %+v", err, got)
				}
			},
		},
		{
			name:    "AwaitOrder gives up after its timeout, saying where the order stands",
			answers: []func(http.ResponseWriter){answer(200, `{"order_id":"o1","status":"backordered","outstanding":500}`)},
			call: func(t *testing.T, c *Client) error {
				_, err := c.AwaitOrder(t.Context(), "o1", "", "its invoice", 0, Order.Invoiced)
				return err
			},
			requests: 1,
			check: func(t *testing.T, err error, got []seen) {
				if err == nil || !strings.Contains(err.Error(), "it is backordered (invoice none, 0 credit notes, outstanding 500)") || got[0].query != "" {
					t.Fatalf("err %v, request %+v", err, got[0])
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
			c := New(srv.URL+"/", WithHTTPClient(srv.Client()), WithActor("demo"), WithToken("s3cret"), WithRetries(4, time.Millisecond))
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
