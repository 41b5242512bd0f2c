// Package eventstore is the port every part of orderledger writes to and reads from: an
// append-only log of immutable events, grouped in streams, with optimistic concurrency on each
// stream and one global order over all of them.
//
// The semantics follow KurrentDB so that one contract fits every adapter (eventstore/postgres,
// eventstore/sqlite, eventstore/kurrentdb); eventstore/storetest is the suite each adapter runs.
//
//   - A stream is named "<category>-<id>" and its versions start at 0 with no gaps.
//   - Append takes an ExpectedRevision; a mismatch is ErrWrongExpectedRevision (errors.Is).
//   - Appending a batch whose first event ID is already in the stream is a retry: it succeeds,
//     appends nothing and reports where those events are (Retried). With NoStream or an exact
//     revision every adapter recognises a retry of any age, since it looks right after that
//     revision; the command handlers append so. With Any or StreamExists an adapter may look
//     only at the stream's recent events: the SQL adapters recognise any age (a unique event
//     ID), KurrentDB only while at most 64 events were appended after the batch, and a later
//     retry is appended again. Use Any only where a repeat is harmless (generators, benches).
//   - One append holds at most MaxAppendSize bytes (see AppendSize); an event type may not start
//     with "$", nor a stream name.
//   - A stream deleted in the store by other means than this port (KurrentDB's soft delete or
//     tombstone; the SQL stores have no such thing) reads as empty, and every append to it
//     fails with ErrStreamDeleted: its versions could no longer start at 0 nor its hash chain
//     go on.
//   - ReadAll and Subscribe deliver every committed event exactly once, in one global order that
//     agrees with the order of every stream, and never skip an event whose transaction commits
//     late.
//   - Every event carries a SHA-256 hash chained to the previous event of its stream; see Hash
//     for the exact bytes that are hashed.
package eventstore
