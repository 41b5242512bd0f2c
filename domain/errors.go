package domain

import (
	"errors"
	"fmt"
)

// Kind classifies a domain error for the HTTP layer's one error→status table.
type Kind uint8

const (
	// KindInvalid: the command itself is malformed or out of range (400).
	KindInvalid Kind = iota + 1
	// KindNotFound: the resource the command addresses does not exist (404).
	KindNotFound
	// KindConflict: a business rule or the current state refuses the command (409).
	KindConflict
)

// Error is a sentinel domain error. Decide returns it wrapped with detail (fmt.Errorf("%w: …")),
// callers match it with errors.Is and classify it with KindOf.
type Error struct {
	kind Kind
	code string
	text string
}

func newError(kind Kind, code, text string) *Error { return &Error{kind: kind, code: code, text: text} }

func (e *Error) Error() string { return e.text }

// Code is a stable machine-readable name, e.g. "overpayment".
func (e *Error) Code() string { return e.code }

// Kind says which class of failure e is.
func (e *Error) Kind() Kind { return e.kind }

// KindOf returns the Kind and code of the domain error err wraps, or ok=false for any other error.
func KindOf(err error) (kind Kind, code string, ok bool) {
	var de *Error
	if errors.As(err, &de) {
		return de.kind, de.code, true
	}
	return 0, "", false
}

// Invalid input (400).
var (
	ErrInvalidInput   = newError(KindInvalid, "invalid_input", "invalid input")
	ErrAmountOverflow = newError(KindInvalid, "amount_overflow", "amount does not fit in a 64-bit count of minor units")
	ErrAmountTooLarge = newError(KindInvalid, "amount_too_large", "amount above its cap (10^12 minor units for a price, payment or refund, 10^13 for an order total)")
)

// Unknown resources (404).
var (
	ErrCustomerNotFound      = newError(KindNotFound, "customer_not_found", "customer not found")
	ErrOrderNotFound         = newError(KindNotFound, "order_not_found", "order not found")
	ErrSKUNotFound           = newError(KindNotFound, "sku_not_found", "SKU not found")
	ErrPurchaseOrderNotFound = newError(KindNotFound, "purchase_order_not_found", "purchase order not found")
)

// Business rules and state conflicts (409).
var (
	ErrCustomerExists       = newError(KindConflict, "customer_exists", "customer already exists")
	ErrOrderExists          = newError(KindConflict, "order_exists", "order already exists")
	ErrUnknownCustomer      = newError(KindConflict, "unknown_customer", "the order names a customer that does not exist")
	ErrUnknownSKU           = newError(KindConflict, "unknown_sku", "the order names a SKU that does not exist")
	ErrInsufficientStock    = newError(KindConflict, "insufficient_stock", "on hand would fall below what is reserved")
	ErrOrderNotConfirmed    = newError(KindConflict, "order_not_confirmed", "only a confirmed order can be shipped")
	ErrOrderNotShipped      = newError(KindConflict, "order_not_shipped", "only a shipped order can be delivered")
	ErrOrderAlreadyShipped  = newError(KindConflict, "order_already_shipped", "the order has already been shipped")
	ErrOrderCancelled       = newError(KindConflict, "order_cancelled", "the order is cancelled")
	ErrOrderNotDelivered    = newError(KindConflict, "order_not_delivered", "only a delivered or completed order can take returns")
	ErrReturnExceedsShipped = newError(KindConflict, "return_exceeds_shipped", "return exceeds what was shipped less what came back")
	ErrOverpayment          = newError(KindConflict, "overpayment", "payment exceeds the outstanding amount")
	ErrRefundExceedsPaid    = newError(KindConflict, "refund_exceeds_paid", "refund exceeds what was paid less what was refunded")
	ErrAlreadyReceived      = newError(KindConflict, "purchase_order_already_received", "the purchase order has already been received")
	ErrNotReserved          = newError(KindConflict, "not_reserved", "the order has not reserved what it would ship")
	ErrDocumentMismatch     = newError(KindConflict, "document_mismatch", "a document number is already recorded differently")
	ErrCustomerErased       = newError(KindConflict, "customer_erased", "the customer's personal data was erased; no personal data can be added to them")
	ErrErasureUnavailable   = newError(KindConflict, "erasure_unavailable", "the customer's personal data cannot be erased")
)

// invalid wraps ErrInvalidInput naming the offending field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidInput, field, fmt.Sprintf(format, args...))
}
