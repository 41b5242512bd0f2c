// Package historygen generates realistic order-to-cash histories for tests and benchmarks of
// the read side. It drives the domain's Decide and Evolve functions the way the command
// handlers and process managers do, so every history it makes is one the write side could
// have written: stock is never oversold, invoice numbers have no gaps, returns follow
// deliveries, refunds follow payments.
package historygen
