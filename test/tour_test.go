package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/test/genclient"
)

// TestGeneratedClientRunsTheTour drives the README's "API in five minutes" with the client
// ogen generated from internal/openapi/openapi.json (package genclient), against the real
// binary: the document is one a maintained generator reads, and the typed answers it expects
// are the ones the server gives, errors included. Every exchange goes through the test client,
// so the conformance checker sees it too.
func TestGeneratedClientRunsTheTour(t *testing.T) {
	srv := startServer(t, backends[0].newEvents(t))
	api, err := genclient.NewClient(srv.base, bearer(""), genclient.WithClient(client))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// Customers and stock.
	reg, err := api.RegisterCustomer(ctx, &genclient.RegisterCustomerRequest{
		CustomerID: genclient.NewOptIdentifier("C-1001"), Name: "Ann Lee", Email: "ann@example.com",
		PaymentPreference: genclient.NewOptPaymentPreference(genclient.PaymentPreferenceCard),
	}, genclient.RegisterCustomerParams{})
	created := as[*genclient.CustomerRegisteredHeaders](t, "register C-1001", reg, err)
	if created.Response.CustomerID != "C-1001" || created.Response.Position == "" {
		t.Errorf("register: %+v", created.Response)
	}
	changed, err := api.ChangeCustomer(ctx, &genclient.ChangeCustomerRequest{Phone: genclient.NewOptString("+1 555 0100")},
		genclient.ChangeCustomerParams{ID: "C-1001"})
	as[*genclient.WriteAcceptedHeaders](t, "change C-1001", changed, err)
	received, err := api.ReceiveStock(ctx, &genclient.ReceiptRequest{Quantity: 100, Reference: genclient.NewOptString("DN-42")},
		genclient.ReceiveStockParams{Sku: "SKU-1"})
	as[*genclient.WriteAcceptedHeaders](t, "receive SKU-1", received, err)
	adjusted, err := api.AdjustStock(ctx, &genclient.AdjustmentRequest{Delta: -2, Reason: "damaged in storage"},
		genclient.AdjustStockParams{Sku: "SKU-1"})
	as[*genclient.WriteAcceptedHeaders](t, "adjust SKU-1", adjusted, err)
	policy, err := api.SetReplenishmentPolicy(ctx, &genclient.ReplenishmentRequest{ReorderPoint: 10, ReorderQuantity: 50, Supplier: "ACME Supplies"},
		genclient.SetReplenishmentPolicyParams{Sku: "SKU-1"})
	as[*genclient.WriteAcceptedHeaders](t, "replenishment SKU-1", policy, err)

	// An order, placed twice under one Idempotency-Key: the second answer is the first, replayed.
	o1 := &genclient.PlaceOrderRequest{
		OrderID: genclient.NewOptIdentifier("O-1"), CustomerID: "C-1001", Channel: genclient.ChannelWeb, Currency: "EUR",
		Lines:      []genclient.OrderLineRequest{{Sku: "SKU-1", Quantity: 2, UnitPrice: 1250}},
		TaxRateBps: genclient.NewOptInt64(2000),
	}
	key := genclient.PlaceOrderParams{IdempotencyKey: genclient.NewOptString("3f1c9a52-order-O-1")}
	placed, err := api.PlaceOrder(ctx, o1, key)
	first := as[*genclient.OrderPlacedHeaders](t, "place O-1", placed, err)
	again, err := api.PlaceOrder(ctx, o1, key)
	replayed := as[*genclient.OrderPlacedHeaders](t, "place O-1 again", again, err)
	if replayed.Response != first.Response || replayed.IdempotentReplayed.Or("") != "true" {
		t.Errorf("the repeat answered %+v (replayed %v), want %+v replayed", replayed.Response, replayed.IdempotentReplayed, first.Response)
	}
	order := waitOrder(t, api, "O-1", first.Response.Position, func(o *genclient.Order) bool { return o.Status == genclient.OrderStatusConfirmed })
	if order.Subtotal != 2500 || order.Tax != 500 || order.Total != 3000 || order.Lines[0].Reserved != 2 {
		t.Errorf("O-1: %+v", order)
	}

	// Payments: one within what is outstanding, one beyond (a typed 409), the rest.
	paid, err := api.RecordPayment(ctx, &genclient.PaymentRequest{Amount: 1000, Method: "card", Reference: genclient.NewOptString("PSP-77")},
		genclient.RecordPaymentParams{ID: "O-1"})
	if p := as[*genclient.PaymentRecordedHeaders](t, "pay 1000", paid, err); p.Response.PaymentID == (uuid.UUID{}) {
		t.Error("a payment without payment_id")
	}
	over, err := api.RecordPayment(ctx, &genclient.PaymentRequest{Amount: 5000, Method: "card"}, genclient.RecordPaymentParams{ID: "O-1"})
	if conflict := as[*genclient.RecordPaymentConflictHeaders](t, "pay 5000", over, err); conflict.Response.Code != "overpayment" || conflict.Response.Status != 409 {
		t.Errorf("overpayment: %+v", conflict.Response)
	}
	paid, err = api.RecordPayment(ctx, &genclient.PaymentRequest{Amount: 2000, Method: "card"}, genclient.RecordPaymentParams{ID: "O-1"})
	as[*genclient.PaymentRecordedHeaders](t, "pay 2000", paid, err)
	shipped, err := api.ShipOrder(ctx, &genclient.ShipmentRequest{Carrier: "DHL", TrackingNumber: "JD014600003"}, genclient.ShipOrderParams{ID: "O-1"})
	as[*genclient.WriteAcceptedHeaders](t, "ship O-1", shipped, err)
	delivered, err := api.DeliverOrder(ctx, &genclient.EmptyRequest{}, genclient.DeliverOrderParams{ID: "O-1"})
	done := as[*genclient.WriteAcceptedHeaders](t, "deliver O-1", delivered, err)
	order = waitOrder(t, api, "O-1", done.Response.Position, func(o *genclient.Order) bool { return o.Status == genclient.OrderStatusCompleted })
	if inv, _ := order.InvoiceNumber.Get(); order.PaymentStatus != genclient.PaymentStatusPaid || order.Outstanding != 0 || inv != "INV-1" {
		t.Errorf("O-1 after delivery: %+v", order)
	}

	// A return, then a refund.
	returned, err := api.ReturnItems(ctx, &genclient.ReturnRequest{Lines: []genclient.ReturnLineRequest{{Sku: "SKU-1", Quantity: 1}}, Reason: "arrived damaged"},
		genclient.ReturnItemsParams{ID: "O-1"})
	as[*genclient.ReturnRecordedHeaders](t, "return 1 of O-1", returned, err)
	refunded, err := api.IssueRefund(ctx, &genclient.RefundRequest{Amount: 1500, Reference: genclient.NewOptString("RF-9")}, genclient.IssueRefundParams{ID: "O-1"})
	as[*genclient.RefundIssuedHeaders](t, "refund 1500", refunded, err)

	// An order beyond the stock is backordered; the purchase order it causes, once received,
	// confirms it; cancelling it after its invoice reverses the invoice.
	placed, err = api.PlaceOrder(ctx, &genclient.PlaceOrderRequest{
		OrderID: genclient.NewOptIdentifier("O-2"), CustomerID: "C-1001", Channel: genclient.ChannelPhone, Currency: "EUR",
		Lines: []genclient.OrderLineRequest{{Sku: "SKU-1", Quantity: 120, UnitPrice: 1000}},
	}, genclient.PlaceOrderParams{})
	o2 := as[*genclient.OrderPlacedHeaders](t, "place O-2", placed, err)
	order = waitOrder(t, api, "O-2", o2.Response.Position, func(o *genclient.Order) bool { return o.Status == genclient.OrderStatusBackordered })
	if order.Lines[0].Reserved != 97 || order.Lines[0].Backordered != 23 {
		t.Errorf("O-2: %+v", order.Lines)
	}
	var purchaseOrder genclient.PurchaseOrder
	eventually(t, "a purchase order for SKU-1", func() []string {
		res, err := api.ListPurchaseOrders(ctx, genclient.ListPurchaseOrdersParams{Sku: genclient.NewOptIdentifier("SKU-1")})
		list := as[*genclient.PurchaseOrderList](t, "purchase orders", res, err)
		if len(list.Items) == 0 {
			return []string{"none yet"}
		}
		purchaseOrder = list.Items[0]
		return nil
	})
	if purchaseOrder.PurchaseOrderID != "PO-SKU-1-1" || purchaseOrder.Quantity != 50 || purchaseOrder.Status != genclient.PurchaseOrderStatusOpen {
		t.Errorf("purchase order: %+v", purchaseOrder)
	}
	receipt, err := api.ReceivePurchaseOrder(ctx, &genclient.EmptyRequest{}, genclient.ReceivePurchaseOrderParams{ID: purchaseOrder.PurchaseOrderID})
	po := as[*genclient.WriteAcceptedHeaders](t, "receive the purchase order", receipt, err)
	waitOrder(t, api, "O-2", po.Response.Position, func(o *genclient.Order) bool {
		inv, _ := o.InvoiceNumber.Get()
		return o.Status == genclient.OrderStatusConfirmed && inv == "INV-2"
	})
	cancelled, err := api.CancelOrder(ctx, &genclient.CancellationRequest{Reason: "customer changed their mind"}, genclient.CancelOrderParams{ID: "O-2"})
	as[*genclient.WriteAcceptedHeaders](t, "cancel O-2", cancelled, err)

	// The books: the README's stock level and trial balance.
	eventually(t, "SKU-1 back to 147 on hand, none reserved", func() []string {
		res, err := api.GetInventory(ctx, genclient.GetInventoryParams{Sku: "SKU-1"})
		level := as[*genclient.Inventory](t, "SKU-1", res, err)
		return unless(level.OnHand == 147 && level.Reserved == 0 && level.Available == 147, fmt.Sprintf("%+v", *level))
	})
	want := map[string][2]genclient.Sum{
		"accounts_receivable": {124500, 124500}, "cash": {3000, 1500}, "revenue": {121250, 122500}, "tax_payable": {250, 500},
	}
	eventually(t, "the README's trial balance", func() []string {
		res, err := api.GetTrialBalance(ctx, genclient.GetTrialBalanceParams{})
		tb := as[*genclient.TrialBalance](t, "trial balance", res, err)
		got := map[string][2]genclient.Sum{}
		for _, a := range tb.Accounts {
			got[string(a.Account)] = [2]genclient.Sum{a.Debit, a.Credit}
		}
		return unless(fmt.Sprint(got) == fmt.Sprint(want) && tb.TotalDebit == 249000 && tb.TotalCredit == 249000, fmt.Sprintf("%+v", *tb))
	})

	verified, err := api.VerifyHashChains(ctx, genclient.VerifyHashChainsParams{})
	if report := as[*genclient.AuditVerification](t, "audit verify", verified, err); !report.Ok || report.Events == 0 {
		t.Errorf("audit verify: %+v", report)
	}
	// And an error the document declares, typed: an order that does not exist.
	missing, err := api.GetOrder(ctx, genclient.GetOrderParams{ID: "O-404"})
	if nf := as[*genclient.GetOrderNotFound](t, "O-404", missing, err); nf.Code != "order_not_found" {
		t.Errorf("O-404: %+v", nf)
	}
}

// as checks that a generated call succeeded with the answer type T and returns it.
func as[T any](t *testing.T, what string, res any, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	v, ok := res.(T)
	if !ok {
		t.Fatalf("%s: answer %T %+v, want %T", what, res, res, *new(T))
	}
	return v
}

// waitOrder reads an order after a position until ready accepts it: the automation confirms,
// invoices and completes orders on its own, a moment after the write that causes it.
func waitOrder(t *testing.T, api *genclient.Client, id genclient.Identifier, after genclient.Position, ready func(*genclient.Order) bool) *genclient.Order {
	t.Helper()
	var order *genclient.Order
	eventually(t, "order "+string(id), func() []string {
		res, err := api.GetOrder(t.Context(), genclient.GetOrderParams{ID: id, After: genclient.NewOptPosition(after)})
		order = as[*genclient.Order](t, "order "+string(id), res, err)
		return unless(ready(order), fmt.Sprintf("%+v", *order))
	})
	return order
}

// unless is what eventually reports: nothing when ok holds, else the state seen.
func unless(ok bool, state string) []string {
	if ok {
		return nil
	}
	return []string{state}
}

// bearer is the token a generated client sends; in open mode (the tour's), none is needed.
type bearer string

func (b bearer) Bearer(context.Context, genclient.OperationName) (genclient.Bearer, error) {
	return genclient.Bearer{Token: string(b)}, nil
}
