package commands

import (
	"context"
	"net/http"
	"strconv"

	"github.com/orderledger/orderledger/domain"
)

// Request bodies. Pointers tell a missing field from a zero one.

type registerCustomerRequest struct {
	CustomerID        *string `json:"customer_id"`
	Name              *string `json:"name"`
	Email             *string `json:"email"`
	Phone             *string `json:"phone"`
	PaymentPreference *string `json:"payment_preference"`
}

func (a *API) registerCustomer(w http.ResponseWriter, r *http.Request) {
	var req registerCustomerRequest
	a.write(w, r, &req, func(ctx context.Context, meta Meta) (answer, error) {
		if req.Name == nil {
			return answer{}, required("name")
		}
		if req.Email == nil {
			return answer{}, required("email")
		}
		id, err := newID(req.CustomerID, "customer_id", meta)
		if err != nil {
			return answer{}, err
		}
		res, err := a.h.RegisterCustomer(ctx, domain.RegisterCustomer{
			CustomerID: id, Name: *req.Name, Email: *req.Email, Phone: deref(req.Phone),
			PaymentPreference: deref(req.PaymentPreference), At: a.h.Now(),
		}, meta)
		if err != nil {
			return answer{}, err
		}
		return answer{http.StatusCreated, map[string]string{"customer_id": id, "position": res.Position.String()}}, nil
	})
}

type changeCustomerRequest struct {
	Name              *string `json:"name"`
	Email             *string `json:"email"`
	Phone             *string `json:"phone"`
	PaymentPreference *string `json:"payment_preference"`
}

func (a *API) changeCustomer(w http.ResponseWriter, r *http.Request) {
	var req changeCustomerRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		return positionOf(a.h.ChangeCustomerDetails(ctx, domain.ChangeCustomerDetails{
			CustomerID: id, Name: req.Name, Email: req.Email, Phone: req.Phone,
			PaymentPreference: req.PaymentPreference, At: a.h.Now(),
		}, meta))
	})
}

// eraseCustomer answers DELETE /v1/customers/{id}/personal-data: the body is empty or {}.
func (a *API) eraseCustomer(w http.ResponseWriter, r *http.Request) {
	var req emptyBody
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		return positionOf(a.h.EraseCustomer(ctx, domain.EraseCustomer{CustomerID: id, At: a.h.Now()}, meta))
	})
}

type receiptRequest struct {
	Quantity  *int64 `json:"quantity"`
	Reference string `json:"reference"`
}

func (a *API) receiveStock(w http.ResponseWriter, r *http.Request) {
	var req receiptRequest
	a.writeTo(w, r, "sku", &req, func(ctx context.Context, sku string, meta Meta) (answer, error) {
		if req.Quantity == nil {
			return answer{}, required("quantity")
		}
		return positionOf(a.h.ReceiveStock(ctx, domain.ReceiveStock{SKU: sku, Quantity: *req.Quantity, Reference: req.Reference, At: a.h.Now()}, meta))
	})
}

type adjustmentRequest struct {
	Delta  *int64  `json:"delta"`
	Reason *string `json:"reason"`
}

func (a *API) adjustStock(w http.ResponseWriter, r *http.Request) {
	var req adjustmentRequest
	a.writeTo(w, r, "sku", &req, func(ctx context.Context, sku string, meta Meta) (answer, error) {
		if req.Delta == nil {
			return answer{}, required("delta")
		}
		if req.Reason == nil {
			return answer{}, required("reason")
		}
		return positionOf(a.h.AdjustStock(ctx, domain.AdjustStock{SKU: sku, Delta: *req.Delta, Reason: *req.Reason, At: a.h.Now()}, meta))
	})
}

type replenishmentRequest struct {
	ReorderPoint    *int64  `json:"reorder_point"`
	ReorderQuantity *int64  `json:"reorder_quantity"`
	Supplier        *string `json:"supplier"`
}

func (a *API) setReplenishment(w http.ResponseWriter, r *http.Request) {
	var req replenishmentRequest
	a.writeTo(w, r, "sku", &req, func(ctx context.Context, sku string, meta Meta) (answer, error) {
		switch {
		case req.ReorderPoint == nil:
			return answer{}, required("reorder_point")
		case req.ReorderQuantity == nil:
			return answer{}, required("reorder_quantity")
		case req.Supplier == nil:
			return answer{}, required("supplier")
		}
		return positionOf(a.h.SetReplenishmentPolicy(ctx, domain.SetReplenishmentPolicy{
			SKU: sku, ReorderPoint: *req.ReorderPoint, ReorderQuantity: *req.ReorderQuantity, Supplier: *req.Supplier, At: a.h.Now(),
		}, meta))
	})
}

type orderLineRequest struct {
	SKU       *string `json:"sku"`
	Quantity  *int64  `json:"quantity"`
	UnitPrice *int64  `json:"unit_price"`
}

type placeOrderRequest struct {
	OrderID         *string            `json:"order_id"`
	CustomerID      *string            `json:"customer_id"`
	Channel         *string            `json:"channel"`
	Currency        *string            `json:"currency"`
	Lines           []orderLineRequest `json:"lines"`
	TaxRateBps      *int64             `json:"tax_rate_bps"`
	PaymentMethod   *string            `json:"payment_method"`
	ShippingAddress *string            `json:"shipping_address"`
}

func (a *API) placeOrder(w http.ResponseWriter, r *http.Request) {
	if !a.admission.admits(w, r) {
		return
	}
	var req placeOrderRequest
	a.write(w, r, &req, func(ctx context.Context, meta Meta) (answer, error) {
		switch {
		case req.CustomerID == nil:
			return answer{}, required("customer_id")
		case req.Channel == nil:
			return answer{}, required("channel")
		case req.Currency == nil:
			return answer{}, required("currency")
		case req.Lines == nil:
			return answer{}, required("lines")
		}
		id, err := newID(req.OrderID, "order_id", meta)
		if err != nil {
			return answer{}, err
		}
		lines := make([]domain.OrderLine, len(req.Lines))
		for i, l := range req.Lines {
			switch {
			case l.SKU == nil:
				return answer{}, required(indexed("lines", i, "sku"))
			case l.Quantity == nil:
				return answer{}, required(indexed("lines", i, "quantity"))
			case l.UnitPrice == nil:
				return answer{}, required(indexed("lines", i, "unit_price"))
			}
			lines[i] = domain.OrderLine{SKU: *l.SKU, Quantity: *l.Quantity, UnitPrice: *l.UnitPrice}
		}
		var taxRate int64
		if req.TaxRateBps != nil {
			taxRate = *req.TaxRateBps
		}
		res, err := a.h.PlaceOrder(ctx, domain.PlaceOrder{
			OrderID: id, CustomerID: *req.CustomerID, Channel: *req.Channel, Currency: *req.Currency,
			Lines: lines, TaxRateBps: taxRate, PaymentMethod: deref(req.PaymentMethod),
			ShippingAddress: deref(req.ShippingAddress), At: a.h.Now(),
		}, meta)
		if err != nil {
			return answer{}, err
		}
		return answer{http.StatusCreated, map[string]string{"order_id": id, "position": res.Position.String()}}, nil
	})
}

type paymentRequest struct {
	Amount    *int64  `json:"amount"`
	Method    *string `json:"method"`
	Reference string  `json:"reference"`
}

func (a *API) recordPayment(w http.ResponseWriter, r *http.Request) {
	var req paymentRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		switch {
		case req.Amount == nil:
			return answer{}, required("amount")
		case req.Method == nil:
			return answer{}, required("method")
		}
		paymentID := DeriveID(meta.CommandID, "payment_id").String()
		res, err := a.h.RecordPayment(ctx, domain.RecordPayment{
			OrderID: id, PaymentID: paymentID, Amount: *req.Amount, Method: *req.Method, Reference: req.Reference, At: a.h.Now(),
		}, meta)
		if err != nil {
			return answer{}, err
		}
		return answer{http.StatusOK, map[string]string{"payment_id": paymentID, "position": res.Position.String()}}, nil
	})
}

type shipmentRequest struct {
	Carrier        *string `json:"carrier"`
	TrackingNumber *string `json:"tracking_number"`
}

func (a *API) shipOrder(w http.ResponseWriter, r *http.Request) {
	var req shipmentRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		switch {
		case req.Carrier == nil:
			return answer{}, required("carrier")
		case req.TrackingNumber == nil:
			return answer{}, required("tracking_number")
		}
		return positionOf(a.h.ShipOrder(ctx, domain.ShipOrder{OrderID: id, Carrier: *req.Carrier, TrackingNumber: *req.TrackingNumber, At: a.h.Now()}, meta))
	})
}

func (a *API) deliverOrder(w http.ResponseWriter, r *http.Request) {
	a.writeTo(w, r, "id", &emptyBody{}, func(ctx context.Context, id string, meta Meta) (answer, error) {
		return positionOf(a.h.DeliverOrder(ctx, domain.DeliverOrder{OrderID: id, At: a.h.Now()}, meta))
	})
}

type cancellationRequest struct {
	Reason *string `json:"reason"`
}

func (a *API) cancelOrder(w http.ResponseWriter, r *http.Request) {
	var req cancellationRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		if req.Reason == nil {
			return answer{}, required("reason")
		}
		return positionOf(a.h.CancelOrder(ctx, domain.CancelOrder{OrderID: id, Reason: *req.Reason, At: a.h.Now()}, meta))
	})
}

type returnLineRequest struct {
	SKU      *string `json:"sku"`
	Quantity *int64  `json:"quantity"`
}

type returnRequest struct {
	Lines  []returnLineRequest `json:"lines"`
	Reason *string             `json:"reason"`
}

func (a *API) returnItems(w http.ResponseWriter, r *http.Request) {
	var req returnRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		switch {
		case req.Lines == nil:
			return answer{}, required("lines")
		case req.Reason == nil:
			return answer{}, required("reason")
		}
		lines := make([]domain.ShippedLine, len(req.Lines))
		for i, l := range req.Lines {
			switch {
			case l.SKU == nil:
				return answer{}, required(indexed("lines", i, "sku"))
			case l.Quantity == nil:
				return answer{}, required(indexed("lines", i, "quantity"))
			}
			lines[i] = domain.ShippedLine{SKU: *l.SKU, Quantity: *l.Quantity}
		}
		returnID := DeriveID(meta.CommandID, "return_id").String()
		res, err := a.h.ReturnItems(ctx, domain.ReturnItems{OrderID: id, ReturnID: returnID, Lines: lines, Reason: *req.Reason, At: a.h.Now()}, meta)
		if err != nil {
			return answer{}, err
		}
		return answer{http.StatusOK, map[string]string{"return_id": returnID, "position": res.Position.String()}}, nil
	})
}

type refundRequest struct {
	Amount    *int64 `json:"amount"`
	Reference string `json:"reference"`
}

func (a *API) issueRefund(w http.ResponseWriter, r *http.Request) {
	var req refundRequest
	a.writeTo(w, r, "id", &req, func(ctx context.Context, id string, meta Meta) (answer, error) {
		if req.Amount == nil {
			return answer{}, required("amount")
		}
		refundID := DeriveID(meta.CommandID, "refund_id").String()
		res, err := a.h.IssueRefund(ctx, domain.IssueRefund{OrderID: id, RefundID: refundID, Amount: *req.Amount, Reference: req.Reference, At: a.h.Now()}, meta)
		if err != nil {
			return answer{}, err
		}
		return answer{http.StatusOK, map[string]string{"refund_id": refundID, "position": res.Position.String()}}, nil
	})
}

func (a *API) receivePurchaseOrder(w http.ResponseWriter, r *http.Request) {
	a.writeTo(w, r, "id", &emptyBody{}, func(ctx context.Context, id string, meta Meta) (answer, error) {
		return positionOf(a.h.ReceivePurchaseOrder(ctx, domain.ReceivePurchaseOrder{PurchaseOrderID: id, At: a.h.Now()}, meta))
	})
}

// writeTo runs a write on the resource the path names (param), checking its identifier first.
func (a *API) writeTo(w http.ResponseWriter, r *http.Request, param string, req any, exec func(ctx context.Context, id string, meta Meta) (answer, error)) {
	a.write(w, r, req, func(ctx context.Context, meta Meta) (answer, error) {
		id, err := pathID(r, param)
		if err != nil {
			return answer{}, err
		}
		return exec(ctx, id, meta)
	})
}

// positionOf answers 200 {position} for a command that succeeded.
func positionOf(res Result, err error) (answer, error) {
	if err != nil {
		return answer{}, err
	}
	return positionAnswer(res), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func indexed(list string, i int, field string) string {
	return list + "[" + strconv.Itoa(i) + "]." + field
}
