// Package projectionstest sets up what tests of the read side need on both backends: an event
// store and a read store sharing one SQLite file or one PostgreSQL database, a running Runner,
// and a scripted history whose read models the tests know by heart.
//
// Data flows from a scripted history into the event store, through the projectors under test, into
// the read models the tests then query.
package projectionstest
