// Package benchlog fills an event store with a synthetic order log of realistic size and shape,
// for measuring what reads the whole log (audit verify, export, projection rebuilds) on
// millions of events without running the order-to-cash cycle to produce them.
package benchlog
