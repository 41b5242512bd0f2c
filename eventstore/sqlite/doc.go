// Package sqlite is the embedded event store: the eventstore.Store port on one SQLite file
// (pure Go, modernc.org/sqlite), orderledger's zero-setup default.
//
// SQLite has one writer at a time, so rowid order is commit order and a position is the rowid.
// Appends go through one write connection owned by a writer goroutine that commits the appends
// queued meanwhile in one transaction (group commit): synchronous=FULL makes every acknowledged
// append durable, and grouping shares that fsync among concurrent writers. Reads use a separate
// pool of connections, which WAL lets run beside the writer.
package sqlite
