package commands

import (
	"context"
	"fmt"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/privacy"
)

// run executes one domain command on its stream.
func run[S, C any](ctx context.Context, h *Handler, stream string, fold Fold[S], decide func(S, C) ([]domain.Event, error), cmd C, meta Meta) (Result, error) {
	return Execute(ctx, h, stream, fold, func(s S) ([]domain.Event, error) { return decide(s, cmd) }, meta)
}

// Customers.

// RegisterCustomer registers a new customer on its own stream (customer-<id>).
func (h *Handler) RegisterCustomer(ctx context.Context, cmd domain.RegisterCustomer, meta Meta) (Result, error) {
	return run(ctx, h, domain.CustomerStream(cmd.CustomerID), domain.EvolveCustomer, domain.DecideRegisterCustomer, cmd, meta)
}

// ChangeCustomerDetails records the customer details that change; a change to nothing appends nothing.
func (h *Handler) ChangeCustomerDetails(ctx context.Context, cmd domain.ChangeCustomerDetails, meta Meta) (Result, error) {
	return run(ctx, h, domain.CustomerStream(cmd.CustomerID), domain.EvolveCustomer, domain.DecideChangeCustomerDetails, cmd, meta)
}

// EraseCustomer erases a customer's personal data (GDPR Art. 17). It checks that the customer
// exists and that all their personal data is sealed under their data key, destroys that key,
// then records CustomerErased. The key goes first: a crash in between leaves the data
// unreadable and the erasure for a retry to record, never an erasure on record while the data
// can still be read. Erasing a customer already erased records nothing and answers where the
// erasure is.
func (h *Handler) EraseCustomer(ctx context.Context, cmd domain.EraseCustomer, meta Meta) (Result, error) {
	stream := domain.CustomerStream(cmd.CustomerID)
	var customer domain.Customer
	if err := Read(ctx, h, stream, domain.EvolveCustomer, func(c domain.Customer, _ bool) error {
		customer = c
		return nil
	}); err != nil {
		return Result{}, err
	}
	if !customer.Registered {
		return Result{}, fmt.Errorf("%w: %s", domain.ErrCustomerNotFound, cmd.CustomerID)
	}
	if !customer.Erased {
		sealed := privacy.Of(h.store)
		if sealed == nil {
			return Result{}, fmt.Errorf("%w: this process writes personal data without a key store, so there is no key to destroy", domain.ErrErasureUnavailable)
		}
		if err := sealed.CheckErasable(ctx, cmd.CustomerID); err != nil {
			return Result{}, err
		}
		if err := sealed.Keys().Destroy(ctx, cmd.CustomerID); err != nil {
			return Result{}, err
		}
	}
	return run(ctx, h, stream, domain.EvolveCustomer, domain.DecideEraseCustomer, cmd, meta)
}

// Stock.

// ReceiveStock adds units to a SKU's on hand (creating the SKU on its first receipt) and fills backorders waiting for them.
func (h *Handler) ReceiveStock(ctx context.Context, cmd domain.ReceiveStock, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideReceiveStock, cmd, meta)
}

// AdjustStock corrects a SKU's on hand after a count; it never takes on hand below what is reserved.
func (h *Handler) AdjustStock(ctx context.Context, cmd domain.AdjustStock, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideAdjustStock, cmd, meta)
}

// SetReplenishmentPolicy sets a SKU's reorder point, reorder quantity and supplier.
func (h *Handler) SetReplenishmentPolicy(ctx context.Context, cmd domain.SetReplenishmentPolicy, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideSetReplenishmentPolicy, cmd, meta)
}

// ReserveStock reserves units of a SKU for an order line, backordering what is not available (the automation sends it).
func (h *Handler) ReserveStock(ctx context.Context, cmd domain.ReserveStock, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideReserveStock, cmd, meta)
}

// ReleaseStock frees what a cancelled order held of a SKU and hands it to the oldest backorders.
func (h *Handler) ReleaseStock(ctx context.Context, cmd domain.ReleaseStock, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideReleaseStock, cmd, meta)
}

// ShipStock takes an order's reserved units of a SKU off on hand when the order ships.
func (h *Handler) ShipStock(ctx context.Context, cmd domain.ShipStock, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideShipStock, cmd, meta)
}

// RestockReturn puts returned units of a SKU back on hand.
func (h *Handler) RestockReturn(ctx context.Context, cmd domain.RestockReturn, meta Meta) (Result, error) {
	return run(ctx, h, domain.StockStream(cmd.SKU), domain.EvolveStock, domain.DecideRestockReturn, cmd, meta)
}

// Orders.

// PlaceOrder checks the command, then that its customer and every SKU exist, in that order,
// so a 409 names the first unknown one (a customer stays registered and a SKU once received
// stays known, so each is read until it has been seen so, and not after), then places it on a
// stream it takes to be new, and hands the placement to the listeners of OnOrderPlaced.
func (h *Handler) PlaceOrder(ctx context.Context, cmd domain.PlaceOrder, meta Meta) (Result, error) {
	if _, _, _, err := domain.ValidatePlaceOrder(cmd); err != nil {
		return Result{}, err
	}
	err := check(ctx, h, domain.CustomerStream(cmd.CustomerID), domain.EvolveCustomer,
		func(c domain.Customer) bool { return c.Registered },
		func() error { return fmt.Errorf("%w: customer_id %s", domain.ErrUnknownCustomer, cmd.CustomerID) })
	if err != nil {
		return Result{}, err
	}
	for i, l := range cmd.Lines {
		err := check(ctx, h, domain.StockStream(l.SKU), domain.EvolveStock,
			func(s domain.Stock) bool { return s.Exists },
			func() error {
				return fmt.Errorf("%w: lines[%d].sku %s has never been received", domain.ErrUnknownSKU, i, l.SKU)
			})
		if err != nil {
			return Result{}, err
		}
	}
	res, err := execute(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder,
		func(o domain.Order) ([]domain.Event, error) { return domain.DecidePlaceOrder(o, cmd) }, meta, true)
	if err == nil {
		h.placed(res, meta)
	}
	return res, err
}

// RecordLineAllocation records on the order what the SKU's stream reserved or backordered for one line.
func (h *Handler) RecordLineAllocation(ctx context.Context, cmd domain.RecordLineAllocation, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideRecordLineAllocation, cmd, meta)
}

// RecordInvoice records the invoice number the series gave the order.
func (h *Handler) RecordInvoice(ctx context.Context, cmd domain.RecordInvoice, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideRecordInvoice, cmd, meta)
}

// RecordPayment records money received against the order.
func (h *Handler) RecordPayment(ctx context.Context, cmd domain.RecordPayment, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideRecordPayment, cmd, meta)
}

// IssueRefund records money paid back to the customer against the order.
func (h *Handler) IssueRefund(ctx context.Context, cmd domain.IssueRefund, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideIssueRefund, cmd, meta)
}

// ShipOrder ships a confirmed order with its carrier and tracking number.
func (h *Handler) ShipOrder(ctx context.Context, cmd domain.ShipOrder, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideShipOrder, cmd, meta)
}

// DeliverOrder records the order's delivery, completing it when nothing is outstanding.
func (h *Handler) DeliverOrder(ctx context.Context, cmd domain.DeliverOrder, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideDeliverOrder, cmd, meta)
}

// CancelOrder cancels an order that has not shipped; its stock is released and an invoice reversed.
func (h *Handler) CancelOrder(ctx context.Context, cmd domain.CancelOrder, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideCancelOrder, cmd, meta)
}

// ReturnItems records units sent back from a delivered order.
func (h *Handler) ReturnItems(ctx context.Context, cmd domain.ReturnItems, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideReturnItems, cmd, meta)
}

// RecordCreditNote records a numbered credit note on the order (for a return or a cancellation).
func (h *Handler) RecordCreditNote(ctx context.Context, cmd domain.RecordCreditNote, meta Meta) (Result, error) {
	return run(ctx, h, domain.OrderStream(cmd.OrderID), domain.EvolveOrder, domain.DecideRecordCreditNote, cmd, meta)
}

// Numbering.

// AssignInvoiceNumber takes the next gapless invoice number for an order, once per order.
func (h *Handler) AssignInvoiceNumber(ctx context.Context, cmd domain.AssignInvoiceNumber, meta Meta) (Result, error) {
	return run(ctx, h, domain.InvoiceSeriesStream, domain.EvolveSeries, domain.DecideAssignInvoiceNumber, cmd, meta)
}

// AssignCreditNoteNumber takes the next gapless credit note number for a credit note, once per note.
func (h *Handler) AssignCreditNoteNumber(ctx context.Context, cmd domain.AssignCreditNoteNumber, meta Meta) (Result, error) {
	return run(ctx, h, domain.CreditNoteSeriesStream, domain.EvolveSeries, domain.DecideAssignCreditNoteNumber, cmd, meta)
}

// Purchase orders.

// RaisePurchaseOrder raises a purchase order to a SKU's supplier (the automation sends it below the reorder point).
func (h *Handler) RaisePurchaseOrder(ctx context.Context, cmd domain.RaisePurchaseOrder, meta Meta) (Result, error) {
	return run(ctx, h, domain.PurchaseOrderStream(cmd.PurchaseOrderID), domain.EvolvePurchaseOrder, domain.DecideRaisePurchaseOrder, cmd, meta)
}

// ReceivePurchaseOrder receives a purchase order's delivery; its units go on the SKU's on hand.
func (h *Handler) ReceivePurchaseOrder(ctx context.Context, cmd domain.ReceivePurchaseOrder, meta Meta) (Result, error) {
	return run(ctx, h, domain.PurchaseOrderStream(cmd.PurchaseOrderID), domain.EvolvePurchaseOrder, domain.DecideReceivePurchaseOrder, cmd, meta)
}
