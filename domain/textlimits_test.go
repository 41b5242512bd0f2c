package domain_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orderledger/orderledger/domain"
)

// TestTextLimitsCountCharacters: every length limit is stated in characters, so text of
// two-byte characters is taken up to the limit and refused one character beyond it.
func TestTextLimitsCountCharacters(t *testing.T) {
	e := func(n int) string { return strings.Repeat("é", n) }
	order := func(change func(*domain.PlaceOrder)) error {
		cmd := domain.PlaceOrder{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU1", Quantity: 2, UnitPrice: 1000}}, At: now}
		change(&cmd)
		_, err := domain.DecidePlaceOrder(domain.Order{}, cmd)
		return err
	}
	customer := func(change func(*domain.RegisterCustomer)) error {
		cmd := domain.RegisterCustomer{CustomerID: "C1", Name: "Ada", Email: "ada@example.com", At: now}
		change(&cmd)
		_, err := domain.DecideRegisterCustomer(domain.Customer{}, cmd)
		return err
	}
	cases := []struct {
		field string
		limit int
		try   func(text string) error
	}{
		{"name", 200, func(s string) error { return customer(func(c *domain.RegisterCustomer) { c.Name = s }) }},
		{"phone", 40, func(s string) error { return customer(func(c *domain.RegisterCustomer) { c.Phone = s }) }},
		{"email", 254, func(s string) error {
			n := utf8.RuneCountInString(s) - len("@x.example")
			return customer(func(c *domain.RegisterCustomer) { c.Email = strings.Repeat("é", n) + "@x.example" })
		}},
		{"reference", 200, func(s string) error {
			_, err := domain.DecideReceiveStock(domain.Stock{}, domain.ReceiveStock{SKU: "S1", Quantity: 1, Reference: s, At: now})
			return err
		}},
		{"reason", 500, func(s string) error {
			_, err := domain.DecideAdjustStock(domain.Stock{}, domain.AdjustStock{SKU: "S1", Delta: 1, Reason: s, At: now})
			return err
		}},
		{"supplier", 200, func(s string) error {
			_, err := domain.DecideSetReplenishmentPolicy(domain.Stock{}, domain.SetReplenishmentPolicy{SKU: "S1", ReorderPoint: 1, ReorderQuantity: 1, Supplier: s, At: now})
			return err
		}},
		{"payment_method", 40, func(s string) error { return order(func(o *domain.PlaceOrder) { o.PaymentMethod = s }) }},
		{"shipping_address", 1000, func(s string) error { return order(func(o *domain.PlaceOrder) { o.ShippingAddress = s }) }},
		{"method", 40, func(s string) error {
			_, err := domain.DecideRecordPayment(domain.Order{}, domain.RecordPayment{OrderID: "O1", PaymentID: "P1", Amount: 1, Method: s, At: now})
			return err
		}},
		{"reference", 200, func(s string) error {
			_, err := domain.DecideRecordPayment(domain.Order{}, domain.RecordPayment{OrderID: "O1", PaymentID: "P1", Amount: 1, Method: "card", Reference: s, At: now})
			return err
		}},
		{"reference", 200, func(s string) error {
			_, err := domain.DecideIssueRefund(domain.Order{}, domain.IssueRefund{OrderID: "O1", RefundID: "R1", Amount: 1, Reference: s, At: now})
			return err
		}},
		{"carrier", 100, func(s string) error {
			_, err := domain.DecideShipOrder(domain.Order{}, domain.ShipOrder{OrderID: "O1", Carrier: s, TrackingNumber: "T1", At: now})
			return err
		}},
		{"tracking_number", 100, func(s string) error {
			_, err := domain.DecideShipOrder(domain.Order{}, domain.ShipOrder{OrderID: "O1", Carrier: "DHL", TrackingNumber: s, At: now})
			return err
		}},
		{"reason", 500, func(s string) error {
			_, err := domain.DecideReturnItems(domain.Order{}, domain.ReturnItems{OrderID: "O1", ReturnID: "R1", Lines: []domain.ShippedLine{{SKU: "S1", Quantity: 1}}, Reason: s, At: now})
			return err
		}},
		{"reason", 500, func(s string) error {
			_, err := domain.DecideCancelOrder(domain.Order{}, domain.CancelOrder{OrderID: "O1", Reason: s, At: now})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			if err := c.try(e(c.limit)); err != nil && strings.Contains(err.Error(), c.field+" must") {
				t.Errorf("%d two-byte characters (the limit): %v", c.limit, err)
			}
			err := c.try(e(c.limit + 1))
			if !errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), c.field+" must") {
				t.Errorf("%d characters: got %v, want invalid %s", c.limit+1, err, c.field)
			}
		})
	}
}
