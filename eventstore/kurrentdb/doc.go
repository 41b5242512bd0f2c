// Package kurrentdb is the eventstore.Store adapter for KurrentDB (formerly EventStoreDB),
// built on the official gRPC client github.com/EventStore/EventStore-Client-Go/v4.
//
// KurrentDB already keeps streams, gapless versions, optimistic concurrency and one global
// order ($all). The adapter adds what the port asks for beyond that:
//
//   - The hash chain is computed here, on append, from the stream's last event, and the append
//     is sent pinned to that event's exact revision, so a writer that got in between makes the
//     server refuse it instead of forking the chain. Any and StreamExists then re-read and try
//     again, a bounded number of times; NoStream and Exact report the conflict.
//   - KurrentDB stamps events with its own clock, so recorded_at, the hash and our Metadata
//     travel in each event's user metadata (see envelope).
//   - Idempotent retries are recognised on the client: right after the expected revision for
//     NoStream and an exact revision, among the stream's last idempotencyWindow events for Any
//     and StreamExists; and after the append, when the server took the batch as one it
//     already had.
//   - A stream deleted on the server (soft delete or tombstone) reads as empty and refuses
//     appends with eventstore.ErrStreamDeleted.
//   - Positions are KurrentDB's $all (commit, prepare) pairs. ReadAll, Head and Subscribe skip
//     system events: those whose type or stream starts with "$".
//
// Connection strings are the client's esdb:// and esdb+discover:// forms. kurrentdb:// and
// kurrentdb+discover:// are accepted too and rewritten to them, since client v4.2.0 predates
// those schemes.
package kurrentdb
