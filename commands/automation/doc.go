// Package automation runs orderledger's order-to-cash process managers: it follows the event
// log and carries each piece of news from the stream where it happened to the streams it
// concerns, by sending commands — a placed order reserves stock, an allocation is recorded on
// the order, a confirmed order gets an invoice number and then its invoice, a cancelled or
// returned order releases or restocks and gets a credit note, a replenishment raises a
// purchase order and a received purchase order puts stock on hand.
//
// The invariants live in the streams themselves (the SKU's stock stream, the numbering
// series, the order); the runner decides nothing. Every command it sends has an ID derived
// from the triggering event's ID and the command's purpose, so a runner killed at any moment
// and restarted from its checkpoint repeats nothing: the handler recognises a command it has
// applied and appends nothing twice.
//
// Its pace is set by round trips, not work: the subscription reads on while events are being
// handled, the events about different orders are handled at once (pipeline.go), what its own
// commands append about an order is handled at once rather than when the log brings it round
// (ahead.go), and the numbers of the invoices confirmed meanwhile are taken in one append
// (numbering.go).
//
// Only one runner acts on a log at a time: it holds the lease "order-to-cash" of package
// follow, which frees the moment its holder dies (an advisory lock on the holder's database
// session, or a file lock beside a SQLite store). A second server's runner waits in standby
// and takes over from the saved checkpoint at once. Should two ever act at once — a holder
// cut off from the database that has not noticed yet — they send the same commands with the
// same IDs, which costs work and nothing else; the one cut off stops as soon as its lease
// session is found dead, and its checkpoint writes are refused from the moment the other took
// the lease (they are fenced by the term's token).
package automation
