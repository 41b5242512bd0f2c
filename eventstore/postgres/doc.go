// Package postgres is the reference eventstore adapter: the log kept in one PostgreSQL table,
// appended to by a PL/pgSQL function in one round trip, read in an order that a late commit
// cannot break, and followed live through LISTEN/NOTIFY.
//
// Global order. A bigserial position alone is not commit order: a transaction that took
// position 10 may commit after one that took 11, and a reader that saw 11 would skip 10. So
// each row also records its transaction id (xid8), readers order and checkpoint on
// (xid, position), and they take only rows whose transaction id is below the oldest transaction
// still running that could write here (the read horizon). Any transaction that commits later
// has a larger xid, so it lands after every checkpoint already handed out.
//
// The horizon is pg_snapshot_xmin narrowed to this database: the oldest running transaction
// of the reader's snapshot, leaving out those that run in a backend connected to another
// database, since a backend never writes to a database other than its own. Without that, any
// long transaction anywhere on a shared server would hold every reader back. A transaction
// that ends between the snapshot and the listing of backends cannot be placed, so it holds the
// horizon back too; a read so held back by a transaction that runs nowhere any more is asked
// again with a new snapshot (up to four times), so that a read right after an append shows it
// even while other databases on the server commit all the time.
//
// Group commit. An append to an idle store is applied at once by its caller; while appends are
// in flight, the others queue for a few committers (lanes, WithAppendLanes), each of which
// applies whatever is queued in one round trip and one transaction, so that concurrent appends
// share the cost of a transaction and its commit.
//
// Pool size: Open uses pgxpool's defaults; a lane holds one connection while it commits, so
// set pool_max_conns in the DSN above the number of lanes when reads run beside the appends.
package postgres
