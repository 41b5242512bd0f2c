package automation

import (
	"context"
	"time"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// command is one command the automation sends in answer to an event.
type command struct {
	// purpose names the command among those one event causes ("reserve/SKU-1"); with the
	// event's ID it determines the command's ID, so a replay sends the very same command.
	purpose string
	stream  string // the stream the command goes to
	send    sendFunc
	// refresh re-reads the stream the command goes to into the handler's cache.
	refresh func(ctx context.Context, h *commands.Handler) error
	// meta, when set, makes the command's Meta in answer to an event instead of commandMeta.
	meta func(eventstore.Event) commands.Meta
}

type sendFunc func(ctx context.Context, h *commands.Handler, meta commands.Meta) (commands.Result, error)

func toOrder(purpose, orderID string, send sendFunc) command {
	return command{purpose: purpose, stream: domain.OrderStream(orderID), send: send, refresh: refresher(domain.OrderStream(orderID), domain.EvolveOrder)}
}

// toStock is a command on sku's stream, sent through stock with the other commands waiting on
// that SKU (see stockBatching); build makes it with the time it is sent at.
func toStock(purpose, sku string, stock *stockBatching, build func(at time.Time) domain.StockCommand) command {
	send := func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
		return stock.send(ctx, sku, build(h.Now()), m)
	}
	return command{purpose: purpose, stream: domain.StockStream(sku), send: send, refresh: refresher(domain.StockStream(sku), domain.EvolveStock)}
}

func toSeries(purpose, stream string, send sendFunc) command {
	return command{purpose: purpose, stream: stream, send: send, refresh: refresher(stream, domain.EvolveSeries)}
}

func toPurchaseOrder(purpose, id string, send sendFunc) command {
	return command{purpose: purpose, stream: domain.PurchaseOrderStream(id), send: send, refresh: refresher(domain.PurchaseOrderStream(id), domain.EvolvePurchaseOrder)}
}

func refresher[S any](stream string, fold commands.Fold[S]) func(context.Context, *commands.Handler) error {
	return func(ctx context.Context, h *commands.Handler) error {
		return commands.Read(ctx, h, stream, fold, func(S, bool) error { return nil })
	}
}

// subject names what an event is about — an order or a purchase order — for handling events
// about one subject in log order. Every order the reactions rely on is between two events
// about one subject: an order's placement before its cancellation (reserve before release), a
// line's allocation before the backorder it fills (both recorded on the order as deltas), an
// order's invoice before its cancellation, a purchase order's raising before its receipt.
func subject(e domain.Event) string {
	switch e := e.(type) {
	case domain.AboutOrder:
		return "order:" + e.AboutOrder()
	case domain.AboutPurchaseOrder:
		return "purchase_order:" + e.AboutPurchaseOrder()
	}
	return ""
}

// reactions returns the commands that carry the news of e to the streams it concerns, in the
// order they are sent. Most follow from the event alone. Two read the order's state, as of the
// event at version of its stream or later; their decisions stay right however late they are
// made (a replay after a crash makes them later), as the comments on them explain. Invoice
// numbers are taken through numbers, which numbers many orders in one append, and commands on
// a SKU go through stock, which decides the commands waiting on one SKU in one append.
func reactions(ctx context.Context, h *commands.Handler, numbers *invoiceNumbering, stock *stockBatching, version uint64, e domain.Event) ([]command, error) {
	switch e := e.(type) {
	case domain.OrderPlaced:
		out := make([]command, 0, len(e.Lines))
		for _, l := range e.Lines {
			out = append(out, toStock("reserve/"+l.SKU, l.SKU, stock, func(at time.Time) domain.StockCommand {
				return domain.ReserveStock{SKU: l.SKU, OrderID: e.OrderID, Quantity: l.Quantity, At: at}
			}))
		}
		return out, nil

	case domain.StockAllocated, domain.BackorderFilled:
		record, _ := allocationNews(e)
		return []command{toOrder(recordAllocation(record.OrderID), record.OrderID, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			cmd := record
			cmd.At = h.Now()
			return h.RecordLineAllocation(ctx, cmd, m)
		})}, nil

	case domain.OrderConfirmed:
		// An order cancelled before it was invoiced needs no invoice. Reading a later state
		// than the event's is safe: a cancellation is final, and an order already invoiced
		// gets its number again from the series, which assigns one per order. So is missing
		// a cancellation after the event (appended by another process): the number is then
		// taken and recorded, and the invoice reversed, as for an order cancelled while it is
		// being invoiced.
		status, invoiced, err := orderStatus(ctx, h, e.OrderID, version)
		if err != nil {
			return nil, err
		}
		if invoiced || status == domain.StatusCancelled {
			// Invoiced already (its number taken ahead, with the allocations): asking the series
			// again is no no-op once the series has forgotten the order (it remembers only its
			// recent assignments), so a second number would be taken.
			return nil, nil
		}
		take := toSeries(numberPurpose+e.OrderID, domain.InvoiceSeriesStream, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			return numbers.assign(ctx, domain.AssignInvoiceNumber{OrderID: e.OrderID, At: h.Now()}, m)
		})
		take.meta = func(ev eventstore.Event) commands.Meta { return numberMeta(ev, e.OrderID) }
		return []command{take}, nil

	case domain.InvoiceNumberAssigned:
		return []command{toOrder("record-invoice/"+e.OrderID, e.OrderID, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			return h.RecordInvoice(ctx, domain.RecordInvoice{OrderID: e.OrderID, InvoiceNumber: domain.InvoiceNumber(e.Number), At: h.Now()}, m)
		})}, nil

	case domain.OrderInvoiced:
		// A number taken for an order that was cancelled meanwhile is still recorded (the
		// series has no gaps); the invoice is then reversed. If the order was cancelled after
		// this invoice, OrderCancelled asks for the same credit note, and the series, keyed by
		// order and reason, numbers it once. A state as of this event is enough: a cancellation
		// after it carries Invoiced, and asks for the credit note itself.
		status, _, err := orderStatus(ctx, h, e.OrderID, version)
		if err != nil {
			return nil, err
		}
		if status != domain.StatusCancelled {
			return nil, nil
		}
		return []command{assignCreditNote(e.OrderID, domain.CreditForCancellation, "")}, nil

	case domain.OrderCancelled:
		out := make([]command, 0, len(e.Lines)+1)
		for _, l := range e.Lines {
			out = append(out, toStock("release/"+l.SKU, l.SKU, stock, func(at time.Time) domain.StockCommand {
				return domain.ReleaseStock{SKU: l.SKU, OrderID: e.OrderID, At: at}
			}))
		}
		if e.Invoiced {
			out = append(out, assignCreditNote(e.OrderID, domain.CreditForCancellation, ""))
		}
		return out, nil

	case domain.CreditNoteNumberAssigned:
		return []command{toOrder("record-credit-note/"+e.OrderID, e.OrderID, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			return h.RecordCreditNote(ctx, domain.RecordCreditNote{OrderID: e.OrderID, CreditNoteNumber: domain.CreditNoteNumber(e.Number), Reason: e.Reason, ReturnID: e.ReturnID, At: h.Now()}, m)
		})}, nil

	case domain.OrderShipped:
		out := make([]command, 0, len(e.Lines))
		for _, l := range e.Lines {
			out = append(out, toStock("ship/"+l.SKU, l.SKU, stock, func(at time.Time) domain.StockCommand {
				return domain.ShipStock{SKU: l.SKU, OrderID: e.OrderID, Quantity: l.Quantity, At: at}
			}))
		}
		return out, nil

	case domain.OrderReturned:
		out := make([]command, 0, len(e.Lines)+1)
		for _, l := range e.Lines {
			out = append(out, toStock("restock/"+l.SKU, l.SKU, stock, func(at time.Time) domain.StockCommand {
				return domain.RestockReturn{SKU: l.SKU, OrderID: e.OrderID, ReturnID: e.ReturnID, Quantity: l.Quantity, At: at}
			}))
		}
		return append(out, assignCreditNote(e.OrderID, domain.CreditForReturn, e.ReturnID)), nil

	case domain.ReplenishmentRequested:
		return []command{toPurchaseOrder("raise-purchase-order/"+e.PurchaseOrderID, e.PurchaseOrderID, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			return h.RaisePurchaseOrder(ctx, domain.RaisePurchaseOrder{PurchaseOrderID: e.PurchaseOrderID, SKU: e.SKU, Supplier: e.Supplier, Quantity: e.Quantity, At: h.Now()}, m)
		})}, nil

	case domain.PurchaseOrderReceived:
		return []command{{purpose: "receive-stock/" + e.PurchaseOrderID, stream: domain.StockStream(e.SKU), send: func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
			return h.ReceiveStock(ctx, domain.ReceiveStock{SKU: e.SKU, Quantity: e.Quantity, PurchaseOrderID: e.PurchaseOrderID, Reference: e.PurchaseOrderID, At: h.Now()}, m)
		}, refresh: refresher(domain.StockStream(e.SKU), domain.EvolveStock)}}, nil
	}
	return nil, nil
}

// allocationNews is the news a stock stream's event brings an order about one of its lines:
// what was reserved and backordered, or what of a backorder was filled. Its command has no
// time yet.
func allocationNews(e domain.Event) (domain.RecordLineAllocation, bool) {
	switch e := e.(type) {
	case domain.StockAllocated:
		return domain.RecordLineAllocation{OrderID: e.OrderID, SKU: e.SKU, Reserved: e.Reserved, Backordered: e.Backordered}, true
	case domain.BackorderFilled:
		return domain.RecordLineAllocation{OrderID: e.OrderID, SKU: e.SKU, Reserved: e.Quantity, Backordered: -e.Quantity}, true
	}
	return domain.RecordLineAllocation{}, false
}

// recordAllocation is the purpose of the command that records allocation news on an order.
func recordAllocation(orderID string) string { return "record-allocation/" + orderID }

func assignCreditNote(orderID, reason, returnID string) command {
	return toSeries("assign-credit-note-number/"+reason, domain.CreditNoteSeriesStream, func(ctx context.Context, h *commands.Handler, m commands.Meta) (commands.Result, error) {
		return h.AssignCreditNoteNumber(ctx, domain.AssignCreditNoteNumber{OrderID: orderID, Reason: reason, ReturnID: returnID, At: h.Now()}, m)
	})
}

// orderStatus reads an order's status and whether it is invoiced, as of version of its stream
// or later: from the handler's cached fold when that has reached version, which spares a read
// of the store for each order confirmed and each invoice.
func orderStatus(ctx context.Context, h *commands.Handler, orderID string, version uint64) (status domain.OrderStatus, invoiced bool, err error) {
	err = commands.ReadAtLeast(ctx, h, domain.OrderStream(orderID), domain.EvolveOrder, version, func(o domain.Order, _ bool) error {
		status, invoiced = o.Status, o.Invoiced()
		return nil
	})
	return status, invoiced, err
}
