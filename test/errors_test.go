package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// refusal is a request the API must refuse: its status, code and a part of the detail that
// names the field or rule at fault.
type refusal struct {
	name         string
	method, path string
	body         any // as send takes it
	headers      []string
	status       int
	code         string
	detail       string
}

// validOrder is a body POST /v1/orders accepts in the fixture; cases change one thing in it.
func validOrder(change func(o map[string]any)) map[string]any {
	o := map[string]any{
		"customer_id": "E-C1", "channel": "web", "currency": "EUR", "tax_rate_bps": 2000,
		"lines": []any{map[string]any{"sku": "E-S1", "quantity": 1, "unit_price": 1000}},
	}
	if change != nil {
		change(o)
	}
	return o
}

// withLine returns validOrder with line 0 changed.
func withLine(change func(l map[string]any)) map[string]any {
	return validOrder(func(o map[string]any) {
		l := maps.Clone(o["lines"].([]any)[0].(map[string]any))
		change(l)
		o["lines"] = []any{l}
	})
}

func without(m map[string]any, field string) map[string]any {
	m = maps.Clone(m)
	delete(m, field)
	return m
}

func lines(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"sku": fmt.Sprintf("E-S%d", i), "quantity": 1, "unit_price": 1}
	}
	return out
}

// tooLongID is one character over the 64 an identifier may have.
var tooLongID = strings.Repeat("x", 65)

// refusals are docs/api.md's 400, 404, 405, 409 and 413 cases against the fixture refusalFixture
// builds. None may be a 500, and none may append anything.
func refusals() []refusal {
	customer := map[string]any{"name": "Ann", "email": "ann@example.com"}
	maxInt := int64(math.MaxInt64)
	return []refusal{
		// Malformed bodies, on the route with the simplest one.
		{"unknown field", "POST", "/v1/customers", `{"name":"Ann","email":"ann@example.com","nickname":"A"}`, nil, 400, "invalid_input", "nickname"},
		{"bad JSON", "POST", "/v1/customers", `{"name":"Ann",`, nil, 400, "invalid_input", "JSON"},
		{"JSON syntax error", "POST", "/v1/customers", `{"name":'Ann'}`, nil, 400, "invalid_input", "malformed JSON"},
		{"array instead of object", "POST", "/v1/customers", `[1,2]`, nil, 400, "invalid_input", "JSON object"},
		{"empty body", "POST", "/v1/customers", ``, nil, 400, "invalid_input", "empty"},
		{"two objects", "POST", "/v1/customers", `{"name":"Ann","email":"ann@example.com"} {}`, nil, 400, "invalid_input", "after the JSON object"},
		{"null body", "POST", "/v1/customers", `null`, nil, 400, "invalid_input", "name"},
		{"wrong type", "POST", "/v1/customers", `{"name":5,"email":"ann@example.com"}`, nil, 400, "invalid_input", "name"},
		{"field name in capitals", "POST", "/v1/customers", `{"NAME":"Ann","email":"ann@example.com"}`, nil, 400, "invalid_input", `unknown field "NAME"`},
		{"field given twice", "POST", "/v1/customers", `{"name":"Ann","name":"Bob","email":"ann@example.com"}`, nil, 400, "invalid_input", "field name is given more than once"},
		{"invalid UTF-8", "POST", "/v1/customers", "{\"name\":\"A\xffnn\",\"email\":\"ann@example.com\"}", nil, 400, "invalid_input", "field name is not valid UTF-8"},
		{"NUL character", "POST", "/v1/customers", `{"name":"A\u0000nn","email":"ann@example.com"}`, nil, 400, "invalid_input", "field name must not contain control characters"},
		{"201 two-byte characters", "POST", "/v1/customers", map[string]any{"name": strings.Repeat("é", 201), "email": "ann@example.com"}, nil, 400, "invalid_input", "name must be 1..200 characters"},
		{"type error names the line", "POST", "/v1/orders", validOrder(func(o map[string]any) {
			o["lines"] = []any{map[string]any{"sku": "E-S1", "quantity": 1, "unit_price": 1}, map[string]any{"sku": 5, "quantity": 1, "unit_price": 1}}
		}), nil, 400, "invalid_input", "field lines[1].sku must be a string"},
		{"lines of lines", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["lines"] = []any{[]any{1}} }), nil, 400, "invalid_input", "field lines[0] must be an object"},
		{"body over 1 MiB", "POST", "/v1/customers", `{"name":"` + strings.Repeat("a", 1<<20) + `","email":"ann@example.com"}`, nil, 413, "body_too_large", "limit"},

		// Customers.
		{"customer without name", "POST", "/v1/customers", without(customer, "name"), nil, 400, "invalid_input", "name"},
		{"customer without email", "POST", "/v1/customers", without(customer, "email"), nil, 400, "invalid_input", "email"},
		{"customer empty name", "POST", "/v1/customers", map[string]any{"name": " ", "email": "ann@example.com"}, nil, 400, "invalid_input", "name"},
		{"customer bad email", "POST", "/v1/customers", map[string]any{"name": "Ann", "email": "not-an-address"}, nil, 400, "invalid_input", "email"},
		{"customer bad preference", "POST", "/v1/customers", map[string]any{"name": "Ann", "email": "ann@example.com", "payment_preference": "bitcoin"}, nil, 400, "invalid_input", "payment_preference"},
		{"customer invalid id", "POST", "/v1/customers", map[string]any{"customer_id": "has space", "name": "Ann", "email": "ann@example.com"}, nil, 400, "invalid_input", "customer_id"},
		{"customer id too long", "POST", "/v1/customers", map[string]any{"customer_id": tooLongID, "name": "Ann", "email": "ann@example.com"}, nil, 400, "invalid_input", "customer_id"},
		{"existing customer", "POST", "/v1/customers", map[string]any{"customer_id": "E-C1", "name": "Ann", "email": "ann@example.com"}, nil, 409, "customer_exists", "E-C1"},
		{"change unknown customer", "PUT", "/v1/customers/NOPE", map[string]any{"name": "X"}, nil, 404, "customer_not_found", "NOPE"},
		{"change invalid path id", "PUT", "/v1/customers/bad!id", map[string]any{"name": "X"}, nil, 400, "invalid_input", "id"},
		{"change nothing given", "PUT", "/v1/customers/E-C1", map[string]any{}, nil, 400, "invalid_input", "at least one"},
		{"change bad email", "PUT", "/v1/customers/E-C1", map[string]any{"email": "x"}, nil, 400, "invalid_input", "email"},
		{"change unknown field", "PUT", "/v1/customers/E-C1", map[string]any{"customer_id": "E-C2"}, nil, 400, "invalid_input", "customer_id"},

		// Stock receipts.
		{"receipt zero", "POST", "/v1/inventory/E-S1/receipts", map[string]any{"quantity": 0}, nil, 400, "invalid_input", "quantity"},
		{"receipt negative", "POST", "/v1/inventory/E-S1/receipts", map[string]any{"quantity": -5}, nil, 400, "invalid_input", "quantity"},
		{"receipt without quantity", "POST", "/v1/inventory/E-S1/receipts", map[string]any{"reference": "x"}, nil, 400, "invalid_input", "quantity"},
		{"receipt float", "POST", "/v1/inventory/E-S1/receipts", `{"quantity":1.5}`, nil, 400, "invalid_input", "quantity"},
		{"receipt string", "POST", "/v1/inventory/E-S1/receipts", `{"quantity":"5"}`, nil, 400, "invalid_input", "quantity"},
		{"receipt beyond int64", "POST", "/v1/inventory/E-S1/receipts", `{"quantity":9223372036854775808}`, nil, 400, "invalid_input", "quantity"},
		{"receipt on hand overflow", "POST", "/v1/inventory/E-S1/receipts", map[string]any{"quantity": maxInt}, nil, 400, "amount_overflow", "on hand"},
		{"receipt long reference", "POST", "/v1/inventory/E-S1/receipts", map[string]any{"quantity": 1, "reference": strings.Repeat("r", 201)}, nil, 400, "invalid_input", "reference"},
		{"receipt invalid sku", "POST", "/v1/inventory/bad!sku/receipts", map[string]any{"quantity": 1}, nil, 400, "invalid_input", "sku"},
		{"receipt sku too long", "POST", "/v1/inventory/" + tooLongID + "/receipts", map[string]any{"quantity": 1}, nil, 400, "invalid_input", "sku"},

		// Adjustments and replenishment.
		{"adjustment zero", "POST", "/v1/inventory/E-S1/adjustments", map[string]any{"delta": 0, "reason": "count"}, nil, 400, "invalid_input", "delta"},
		{"adjustment without reason", "POST", "/v1/inventory/E-S1/adjustments", map[string]any{"delta": 1}, nil, 400, "invalid_input", "reason"},
		{"adjustment empty reason", "POST", "/v1/inventory/E-S1/adjustments", map[string]any{"delta": 1, "reason": ""}, nil, 400, "invalid_input", "reason"},
		{"adjustment unknown sku", "POST", "/v1/inventory/NOPE/adjustments", map[string]any{"delta": 1, "reason": "count"}, nil, 404, "sku_not_found", "NOPE"},
		{"adjustment below reserved", "POST", "/v1/inventory/E-S1/adjustments", map[string]any{"delta": -11, "reason": "count"}, nil, 409, "insufficient_stock", "reserved"},
		{"replenishment negative point", "PUT", "/v1/inventory/E-S1/replenishment", map[string]any{"reorder_point": -1, "reorder_quantity": 5, "supplier": "ACME"}, nil, 400, "invalid_input", "reorder_point"},
		{"replenishment zero quantity", "PUT", "/v1/inventory/E-S1/replenishment", map[string]any{"reorder_point": 1, "reorder_quantity": 0, "supplier": "ACME"}, nil, 400, "invalid_input", "reorder_quantity"},
		{"replenishment without supplier", "PUT", "/v1/inventory/E-S1/replenishment", map[string]any{"reorder_point": 1, "reorder_quantity": 5}, nil, 400, "invalid_input", "supplier"},
		{"replenishment unknown sku", "PUT", "/v1/inventory/NOPE/replenishment", map[string]any{"reorder_point": 1, "reorder_quantity": 5, "supplier": "ACME"}, nil, 404, "sku_not_found", "NOPE"},

		// Orders.
		{"order unknown field", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["coupon"] = "X" }), nil, 400, "invalid_input", "coupon"},
		{"order unknown line field", "POST", "/v1/orders", withLine(func(l map[string]any) { l["discount"] = 1 }), nil, 400, "invalid_input", "discount"},
		{"order float price", "POST", "/v1/orders", withLine(func(l map[string]any) { l["unit_price"] = 12.5 }), nil, 400, "invalid_input", "unit_price"},
		{"order exponent price", "POST", "/v1/orders", strings.Replace(mustJSON(validOrder(nil)), `"unit_price":1000`, `"unit_price":1e3`, 1), nil, 400, "invalid_input", "unit_price"},
		{"order string quantity", "POST", "/v1/orders", withLine(func(l map[string]any) { l["quantity"] = "2" }), nil, 400, "invalid_input", "quantity"},
		{"order float tax rate", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["tax_rate_bps"] = 20.5 }), nil, 400, "invalid_input", "tax_rate_bps"},
		{"order lines not an array", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["lines"] = map[string]any{} }), nil, 400, "invalid_input", "lines"},
		{"order numeric customer", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["customer_id"] = 42 }), nil, 400, "invalid_input", "customer_id"},
		{"order without customer", "POST", "/v1/orders", without(validOrder(nil), "customer_id"), nil, 400, "invalid_input", "customer_id"},
		{"order without channel", "POST", "/v1/orders", without(validOrder(nil), "channel"), nil, 400, "invalid_input", "channel"},
		{"order without currency", "POST", "/v1/orders", without(validOrder(nil), "currency"), nil, 400, "invalid_input", "currency"},
		{"order without lines", "POST", "/v1/orders", without(validOrder(nil), "lines"), nil, 400, "invalid_input", "lines"},
		{"order line without sku", "POST", "/v1/orders", withLine(func(l map[string]any) { delete(l, "sku") }), nil, 400, "invalid_input", "lines[0].sku"},
		{"order line without quantity", "POST", "/v1/orders", withLine(func(l map[string]any) { delete(l, "quantity") }), nil, 400, "invalid_input", "lines[0].quantity"},
		{"order line without price", "POST", "/v1/orders", withLine(func(l map[string]any) { delete(l, "unit_price") }), nil, 400, "invalid_input", "lines[0].unit_price"},
		{"order invalid order_id", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = "has space" }), nil, 400, "invalid_input", "order_id"},
		{"order order_id too long", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = tooLongID }), nil, 400, "invalid_input", "order_id"},
		{"order invalid customer_id", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["customer_id"] = "a/b" }), nil, 400, "invalid_input", "customer_id"},
		{"order invalid sku", "POST", "/v1/orders", withLine(func(l map[string]any) { l["sku"] = "bad sku" }), nil, 400, "invalid_input", "sku"},
		{"order bad channel", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["channel"] = "fax" }), nil, 400, "invalid_input", "channel"},
		{"order lower-case currency", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["currency"] = "eur" }), nil, 400, "invalid_input", "currency"},
		{"order four-letter currency", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["currency"] = "EURO" }), nil, 400, "invalid_input", "currency"},
		{"order empty currency", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["currency"] = "" }), nil, 400, "invalid_input", "currency"},
		{"order negative tax rate", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["tax_rate_bps"] = -1 }), nil, 400, "invalid_input", "tax_rate_bps"},
		{"order tax rate over 100%", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["tax_rate_bps"] = 10001 }), nil, 400, "invalid_input", "tax_rate_bps"},
		{"order 0 lines", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["lines"] = []any{} }), nil, 400, "invalid_input", "lines"},
		{"order 501 lines", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["lines"] = lines(501) }), nil, 400, "invalid_input", "lines"},
		{"order repeated sku", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["lines"] = append(lines(1), lines(1)...) }), nil, 400, "invalid_input", "repeats"},
		{"order zero quantity", "POST", "/v1/orders", withLine(func(l map[string]any) { l["quantity"] = 0 }), nil, 400, "invalid_input", "quantity"},
		{"order negative price", "POST", "/v1/orders", withLine(func(l map[string]any) { l["unit_price"] = -1 }), nil, 400, "invalid_input", "unit_price"},
		{"order quantity × price overflow", "POST", "/v1/orders", withLine(func(l map[string]any) { l["quantity"] = int64(1) << 62; l["unit_price"] = 2 }), nil, 400, "amount_too_large", "lines[0]"},
		{"order unit price above the cap", "POST", "/v1/orders", withLine(func(l map[string]any) { l["unit_price"] = int64(1_000_000_000_001) }), nil, 400, "amount_too_large", "lines[0].unit_price"},
		{"order unit price of the overflow report", "POST", "/v1/orders", withLine(func(l map[string]any) { l["unit_price"] = int64(5_000_000_000_000_000_000) }), nil, 400, "amount_too_large", "lines[0].unit_price"},
		{"order subtotal above the cap", "POST", "/v1/orders", validOrder(func(o map[string]any) {
			ls := lines(11)
			for _, l := range ls {
				l.(map[string]any)["unit_price"] = int64(1_000_000_000_000)
			}
			o["lines"] = ls
		}), nil, 400, "amount_too_large", "subtotal"},
		{"order total above the cap", "POST", "/v1/orders", validOrder(func(o map[string]any) {
			o["tax_rate_bps"] = 10000
			o["lines"] = []any{map[string]any{"sku": "E-S1", "quantity": 6, "unit_price": int64(1_000_000_000_000)}}
		}), nil, 400, "amount_too_large", "total"},
		{"order unknown currency", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["currency"] = "XYZ" }), nil, 400, "invalid_input", "currency"},
		{"order historic currency", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["currency"] = "DEM" }), nil, 400, "invalid_input", "currency"},
		{"order id dot", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = "." }), nil, 400, "invalid_input", "order_id"},
		{"order id dot dot", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = ".." }), nil, 400, "invalid_input", "order_id"},
		{"order id dash first", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = "-x" }), nil, 400, "invalid_input", "order_id"},
		{"customer id dot dot", "POST", "/v1/customers", map[string]any{"customer_id": "..", "name": "N", "email": "n@example.com"}, nil, 400, "invalid_input", "customer_id"},
		{"first receipt of a sku starting with a dot", "POST", "/v1/inventory/.hidden/receipts", map[string]any{"quantity": 1}, nil, 400, "invalid_input", "sku"},
		{"payment above the cap", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": int64(1_000_000_000_001), "method": "card"}, nil, 400, "amount_too_large", "amount"},
		{"refund above the cap", "POST", "/v1/orders/E-O1/refunds", map[string]any{"amount": int64(1_000_000_000_001)}, nil, 400, "amount_too_large", "amount"},
		{"order long payment method", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["payment_method"] = strings.Repeat("m", 41) }), nil, 400, "invalid_input", "payment_method"},
		{"order long address", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["shipping_address"] = strings.Repeat("a", 1001) }), nil, 400, "invalid_input", "shipping_address"},
		{"order unknown customer", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["customer_id"] = "NOPE" }), nil, 409, "unknown_customer", "NOPE"},
		{"order unknown sku", "POST", "/v1/orders", withLine(func(l map[string]any) { l["sku"] = "NOPE" }), nil, 409, "unknown_sku", "NOPE"},
		{"order existing id", "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = "E-O1" }), nil, 409, "order_exists", "E-O1"},

		// Payments.
		{"payment zero", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": 0, "method": "card"}, nil, 400, "invalid_input", "amount"},
		{"payment negative", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": -1, "method": "card"}, nil, 400, "invalid_input", "amount"},
		{"payment float", "POST", "/v1/orders/E-O1/payments", `{"amount":10.5,"method":"card"}`, nil, 400, "invalid_input", "amount"},
		{"payment without amount", "POST", "/v1/orders/E-O1/payments", map[string]any{"method": "card"}, nil, 400, "invalid_input", "amount"},
		{"payment without method", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": 1}, nil, 400, "invalid_input", "method"},
		{"payment empty method", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": 1, "method": ""}, nil, 400, "invalid_input", "method"},
		{"payment invalid path id", "POST", "/v1/orders/bad%20id/payments", map[string]any{"amount": 1, "method": "card"}, nil, 400, "invalid_input", "id"},
		{"payment unknown order", "POST", "/v1/orders/NOPE/payments", map[string]any{"amount": 1, "method": "card"}, nil, 404, "order_not_found", "NOPE"},
		{"overpayment", "POST", "/v1/orders/E-O1/payments", map[string]any{"amount": 1201, "method": "card"}, nil, 409, "overpayment", "outstanding"},
		{"payment on cancelled order", "POST", "/v1/orders/E-O2/payments", map[string]any{"amount": 1, "method": "card"}, nil, 409, "order_cancelled", "E-O2"},

		// Shipments, deliveries, cancellation, returns.
		{"shipment without carrier", "POST", "/v1/orders/E-OB/shipments", map[string]any{"tracking_number": "T"}, nil, 400, "invalid_input", "carrier"},
		{"shipment without tracking", "POST", "/v1/orders/E-OB/shipments", map[string]any{"carrier": "DHL"}, nil, 400, "invalid_input", "tracking_number"},
		{"shipment unknown order", "POST", "/v1/orders/NOPE/shipments", map[string]any{"carrier": "DHL", "tracking_number": "T"}, nil, 404, "order_not_found", "NOPE"},
		{"shipment of unconfirmed order", "POST", "/v1/orders/E-OB/shipments", map[string]any{"carrier": "DHL", "tracking_number": "T"}, nil, 409, "order_not_confirmed", "E-OB"},
		{"shipment of cancelled order", "POST", "/v1/orders/E-O2/shipments", map[string]any{"carrier": "DHL", "tracking_number": "T"}, nil, 409, "order_cancelled", "E-O2"},
		{"delivery unknown field", "POST", "/v1/orders/E-OB/deliveries", map[string]any{"signed_by": "X"}, nil, 400, "invalid_input", "signed_by"},
		{"delivery unknown order", "POST", "/v1/orders/NOPE/deliveries", map[string]any{}, nil, 404, "order_not_found", "NOPE"},
		{"delivery of unshipped order", "POST", "/v1/orders/E-OB/deliveries", map[string]any{}, nil, 409, "order_not_shipped", "E-OB"},
		{"delivery with empty body", "POST", "/v1/orders/E-OB/deliveries", nil, nil, 409, "order_not_shipped", "E-OB"},
		{"cancellation without reason", "POST", "/v1/orders/E-OB/cancellation", map[string]any{}, nil, 400, "invalid_input", "reason"},
		{"cancellation empty reason", "POST", "/v1/orders/E-OB/cancellation", map[string]any{"reason": ""}, nil, 400, "invalid_input", "reason"},
		{"cancellation unknown order", "POST", "/v1/orders/NOPE/cancellation", map[string]any{"reason": "x"}, nil, 404, "order_not_found", "NOPE"},
		{"cancelling twice", "POST", "/v1/orders/E-O2/cancellation", map[string]any{"reason": "again"}, nil, 409, "order_cancelled", "already cancelled"},
		{"return without lines", "POST", "/v1/orders/E-OB/returns", map[string]any{"reason": "x"}, nil, 400, "invalid_input", "lines"},
		{"return 0 lines", "POST", "/v1/orders/E-OB/returns", map[string]any{"lines": []any{}, "reason": "x"}, nil, 400, "invalid_input", "lines"},
		{"return without reason", "POST", "/v1/orders/E-OB/returns", map[string]any{"lines": []any{map[string]any{"sku": "E-S1", "quantity": 1}}}, nil, 400, "invalid_input", "reason"},
		{"return zero quantity", "POST", "/v1/orders/E-OB/returns", map[string]any{"lines": []any{map[string]any{"sku": "E-S1", "quantity": 0}}, "reason": "x"}, nil, 400, "invalid_input", "quantity"},
		{"return unknown order", "POST", "/v1/orders/NOPE/returns", map[string]any{"lines": []any{map[string]any{"sku": "E-S1", "quantity": 1}}, "reason": "x"}, nil, 404, "order_not_found", "NOPE"},
		{"return of undelivered order", "POST", "/v1/orders/E-OB/returns", map[string]any{"lines": []any{map[string]any{"sku": "E-S1", "quantity": 1}}, "reason": "x"}, nil, 409, "order_not_delivered", "E-OB"},

		// Refunds.
		{"refund zero", "POST", "/v1/orders/E-O3/refunds", map[string]any{"amount": 0}, nil, 400, "invalid_input", "amount"},
		{"refund float", "POST", "/v1/orders/E-O3/refunds", `{"amount":0.5}`, nil, 400, "invalid_input", "amount"},
		{"refund unknown order", "POST", "/v1/orders/NOPE/refunds", map[string]any{"amount": 1}, nil, 404, "order_not_found", "NOPE"},
		{"refund above paid", "POST", "/v1/orders/E-O3/refunds", map[string]any{"amount": 501}, nil, 409, "refund_exceeds_paid", "paid 500"},
		{"refund of unpaid order", "POST", "/v1/orders/E-O1/refunds", map[string]any{"amount": 1}, nil, 409, "refund_exceeds_paid", "paid 0"},

		// Purchase orders.
		{"purchase order unknown", "POST", "/v1/purchase-orders/PO-NOPE-1/receipt", map[string]any{}, nil, 404, "purchase_order_not_found", "PO-NOPE-1"},
		{"purchase order unknown field", "POST", "/v1/purchase-orders/PO-NOPE-1/receipt", map[string]any{"quantity": 5}, nil, 400, "invalid_input", "quantity"},
		{"purchase order invalid id", "POST", "/v1/purchase-orders/" + tooLongID + "/receipt", nil, nil, 400, "invalid_input", "id"},

		// Headers.
		{"idempotency key too long", "POST", "/v1/customers", customer, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_input", "Idempotency-Key"},
		{"idempotency key not ASCII", "POST", "/v1/customers", customer, []string{"Idempotency-Key", "clé"}, 400, "invalid_input", "Idempotency-Key"},
		{"idempotency key twice", "POST", "/v1/customers", customer, []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, 400, "invalid_input", "Idempotency-Key"},

		// Reads: the query and the path are as strict as a body.
		{"read invalid path id", "GET", "/v1/orders/bad!id", nil, nil, 400, "invalid_input", "id"},
		{"read path id too long", "GET", "/v1/customers/" + tooLongID, nil, nil, 400, "invalid_input", "id"},
		{"read unknown order", "GET", "/v1/orders/NOPE", nil, nil, 404, "order_not_found", "NOPE"},
		{"read unknown parameter", "GET", "/v1/orders?Status=confirmed", nil, nil, 400, "invalid_input", `"Status"`},
		{"read parameter twice", "GET", "/v1/orders?limit=1&limit=2", nil, nil, 400, "invalid_input", "limit"},
		{"as_of with an unencoded +", "GET", "/v1/orders/E-O1?as_of=2025-03-01T10:00:00+01:00", nil, nil, 400, "invalid_input", "%2B"},
		{"period from after to", "GET", "/v1/sales/summary?from=2025-03-02&to=2025-03-01", nil, nil, 400, "invalid_input", "from must be before to"},
		{"verify an unknown stream", "GET", "/v1/audit/verify?stream=order-NOPE", nil, nil, 404, "stream_not_found", "order-NOPE"},
		{"verify unknown parameter", "GET", "/v1/audit/verify?streams=order-E-O1", nil, nil, 400, "invalid_input", "streams"},
		{"verify stream twice", "GET", "/v1/audit/verify?stream=order-E-O1&stream=order-E-O2", nil, nil, 400, "invalid_input", "stream"},

		// Routes.
		{"unknown route", "POST", "/v1/nothing-here", map[string]any{}, nil, 404, "route_not_found", "/v1/nothing-here"},
		{"method not allowed", "DELETE", "/v1/orders/E-O1/payments", nil, nil, 405, "method_not_allowed", "DELETE"},
		{"empty path parameter", "GET", "/v1/orders/", nil, nil, 404, "route_not_found", "/v1/orders/"},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// refusalFixture creates what the refusal cases refer to: customer E-C1; SKU E-S1 with 10 on
// hand; order E-O1 (total 1200, unpaid), E-O2 (cancelled), E-O3 (500 paid) and E-OB, which
// asks for more than is in stock and so is never confirmed.
func refusalFixture(t *testing.T, srv *server) {
	t.Helper()
	srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "E-C1", "name": "Ann", "email": "ann@example.com"})
	srv.expect(t, http.StatusOK, "POST", "/v1/inventory/E-S1/receipts", map[string]any{"quantity": 10})
	for _, id := range []string{"E-O1", "E-O2", "E-O3"} {
		srv.expect(t, http.StatusCreated, "POST", "/v1/orders", validOrder(func(o map[string]any) { o["order_id"] = id }))
	}
	srv.expect(t, http.StatusOK, "POST", "/v1/orders/E-O2/cancellation", map[string]any{"reason": "fixture"})
	srv.expect(t, http.StatusOK, "POST", "/v1/orders/E-O3/payments", map[string]any{"amount": 500, "method": "card"})
	srv.expect(t, http.StatusCreated, "POST", "/v1/orders", validOrder(func(o map[string]any) {
		o["order_id"] = "E-OB"
		o["lines"] = []any{map[string]any{"sku": "E-S1", "quantity": 1000, "unit_price": 1}}
	}))
}

// TestRefusals sends every refusal case and checks the problem document, that the answer is
// the one the OpenAPI document gives for that operation, and that nothing was appended.
func TestRefusals(t *testing.T) {
	doc := loadOpenAPI(t)
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		store := openStore(t, events)
		refusalFixture(t, srv)
		for _, c := range refusals() {
			t.Run(c.name, func(t *testing.T) {
				correlation := "refused-" + uuid.NewString()
				from := head(t, store)
				resp := srv.do(t, c.method, c.path, c.body, append(c.headers, "X-Correlation-ID", correlation)...)
				if resp.status >= 500 {
					t.Fatalf("status %d for bad input: %s", resp.status, resp.body)
				}
				if resp.status != c.status {
					t.Fatalf("status %d, want %d: %s", resp.status, c.status, resp.body)
				}
				checkProblem(t, resp, c.status, c.code, c.detail)
				doc.checkDocumented(t, c.method, c.path, c.status, c.code)
				assertNothingAppended(t, srv, store, from, correlation)
			})
		}
		// A correlation ID the server refuses cannot mark the request: check its stream.
		resp := srv.do(t, "POST", "/v1/customers", map[string]any{"customer_id": "E-C9", "name": "Ann", "email": "ann@example.com"}, "X-Correlation-ID", strings.Repeat("c", 129))
		if resp.status != http.StatusBadRequest {
			t.Fatalf("X-Correlation-ID of 129 characters: status %d, want 400: %s", resp.status, resp.body)
		}
		checkProblem(t, resp, 400, "invalid_input", "X-Correlation-ID")
		if len(readStream(t, store, "customer-E-C9")) != 0 {
			t.Error("the refused registration of E-C9 was stored")
		}
		checkLog(t, srv, store)
	})
}

// checkProblem checks an RFC 9457 answer.
func checkProblem(t testing.TB, resp response, status int, code, detail string) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Type, Title, Detail, Code string
		Status                    int
	}
	if err := json.Unmarshal(resp.body, &p); err != nil {
		t.Fatalf("problem document: %v: %s", err, resp.body)
	}
	if p.Type != "https://orderledger.dev/problems/"+code || p.Code != code || p.Status != status || p.Title != http.StatusText(status) {
		t.Errorf("problem %+v, want code %s, status %d", p, code, status)
	}
	if !strings.Contains(p.Detail, detail) {
		t.Errorf("detail %q does not name %q", p.Detail, detail)
	}
}
