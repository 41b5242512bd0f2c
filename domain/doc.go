// Package domain is the pure order-to-cash model: the state of each kind of stream (customer,
// stock, order, numbering series, purchase order), the commands that may change it, the events
// that record each change, and the rules between them.
//
// Every rule is a Decide function — DecideX(state, command) ([]Event, error) — and every state
// change an Evolve function — EvolveX(state, event) state. Neither does I/O, reads a clock or
// makes an ID: time and IDs arrive on the command. A refused command returns one of the
// sentinel errors of errors.go, wrapped with the detail (field, amounts, state), classified by
// Kind for the HTTP layer.
//
// Where each invariant lives: the SKU's stock stream owns on hand, reservations, the backorder
// queue and replenishment (no overselling, oldest backorders first, one purchase order per
// shortfall); the order stream owns its status, payments, refunds, returns and credits (no
// overpayment, no refund above what was paid, no return above what was shipped); a numbering
// stream owns its counter (gapless invoice and credit note numbers).
package domain
