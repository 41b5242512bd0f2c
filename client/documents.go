package client

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Written is what every successful write answers with, besides the route's own fields: the
// position of its last event, to read one's own write with ?after=. A write that creates an
// order answers its order_id too.
type Written struct {
	OrderID  string `json:"order_id,omitempty"`
	Position string `json:"position"`
}

// Order is GET /v1/orders/{id}, as far as clients of this package read it.
type Order struct {
	OrderID       string       `json:"order_id"`
	CustomerID    string       `json:"customer_id"`
	Channel       string       `json:"channel"`
	Currency      string       `json:"currency"`
	Status        string       `json:"status"`
	PaymentStatus string       `json:"payment_status"`
	Total         int64        `json:"total"`
	Outstanding   int64        `json:"outstanding"`
	InvoiceNumber *string      `json:"invoice_number"`
	CreditNotes   []CreditNote `json:"credit_notes"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// CreditNote is one of an order's credit notes.
type CreditNote struct {
	Number string `json:"credit_note_number"`
	Reason string `json:"reason"`
	Total  int64  `json:"total"`
}

// Invoiced reports whether the order has its invoice number.
func (o Order) Invoiced() bool { return o.InvoiceNumber != nil && *o.InvoiceNumber != "" }

// Order reads GET /v1/orders/{id}, including at least position after when it is not empty.
func (c *Client) Order(ctx context.Context, id, after string) (Order, error) {
	var q url.Values
	if after != "" {
		q = url.Values{"after": {after}}
	}
	var o Order
	err := c.Get(ctx, "/v1/orders/"+url.PathEscape(id), q, &o)
	return o, err
}

// AwaitOrder reads the order, including at least position after, until done holds or timeout
// passes; what names the wait in the error. The server does its part of an order's life
// (reserving, invoicing, completing) on its own, at its own pace: the reads start 5 ms apart
// and slow to 100 ms.
func (c *Client) AwaitOrder(ctx context.Context, id, after, what string, timeout time.Duration, done func(Order) bool) (Order, error) {
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		o, err := c.Order(ctx, id, after)
		if err != nil {
			return o, err
		}
		if done(o) {
			return o, nil
		}
		if time.Now().After(deadline) {
			invoice := "none"
			if o.InvoiceNumber != nil {
				invoice = *o.InvoiceNumber
			}
			return o, fmt.Errorf("order %s: waited %s for %s; it is %s (invoice %s, %d credit notes, outstanding %d)",
				id, timeout, what, o.Status, invoice, len(o.CreditNotes), o.Outstanding)
		}
		select {
		case <-ctx.Done():
			return o, context.Cause(ctx)
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
