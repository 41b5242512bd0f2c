// Package historygen generates order histories for tests and benchmarks, of two kinds:
//
//   - Generator makes realistic order-to-cash histories for the read side. It drives the
//     domain's Decide and Evolve functions the way the command handlers and process managers
//     do, so every history it makes is one the write side could have written: stock is never
//     oversold, invoice numbers have no gaps, returns follow deliveries, refunds follow
//     payments.
//   - Synthetic fills an event store with a log of realistic size and shape but no meaning,
//     fast, for measuring what reads the whole log byte by byte (audit verify, export) on
//     millions of events.
//
// Data flows one way: from the generator into an event store (or a caller's slice of
// records); nothing is read back.
package historygen
