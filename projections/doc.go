// Package projections builds orderledger's read models from the event log and answers the
// queries the read routes make on them.
//
// A projector (orders, customers, inventory, sales, ledger) owns its rm_ tables. It follows the
// log from its checkpoint in batches, applies each batch in memory to the rows the batch
// touches, writes them with a few multi-row statements and moves its checkpoint in the same
// transaction, so every event takes effect exactly once however often a batch is retried.
// The Runner runs the projectors, reports their lag and lets readers wait for a position
// (WaitFor, behind ?after=); Rebuild clears projectors and replays the log into them.
//
// The same SQL runs on PostgreSQL and on SQLite (OpenReadStore); what differs between the two
// is kept in dialect. Read models may share a database, even a SQLite file, with the event
// store: they only touch rm_ tables and their own row of schema_migrations.
//
// One process at a time runs a projector. Each holds a lease on its row of rm_projector_state
// and every transaction it commits first moves that row from the checkpoint it read to the
// batch's end, under its lease and generation. Rebuild takes the lease over and bumps the
// generation, so a runner elsewhere fails its next transaction, rolls it back, and waits for
// the lease to come free: a rebuild and a running server can never both write a projector.
package projections
