package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"

	"github.com/orderledger/orderledger/eventstore"
)

// idempotencyWindow bounds how far back an append expecting Any or StreamExists looks for a
// retried batch: such a retry is recognised while at most this many events have been appended
// to the stream after the original batch; a later one is appended again. An append expecting
// NoStream or an exact revision has no such bound: it looks right after that revision.
const idempotencyWindow = 64

// maxAppendAttempts bounds how often an append expecting Any or StreamExists re-reads the
// stream and tries again after another writer got in between.
const maxAppendAttempts = 5

// Append writes events after the stream's last event, chaining their hashes to it. The
// append is sent pinned to the revision of the event the chain was computed from.
//
// An append is three calls: a read that decides it (the events from the expected revision on,
// or the stream's tail for Any and StreamExists), the append, and a read of the batch's last
// event, for its position in $all and to find out whether the server stored this batch or
// had it already. A new stream costs a fourth, to tell it from a deleted one.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	name := s.prefix + stream
	// The reads that decide an append must see the leader's log, which a follower may lag
	// behind. Client v4.2.0 puts requires-leader on the incoming context of a call
	// (esdb/options.go, configureGrpcCall in EventStore/EventStore-Client-Go), so it never
	// reaches the server; on the outgoing context it does.
	leader := metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
	for attempt := 1; ; attempt++ {
		p, err := s.plan(leader, name, stream, expected, events)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if p.retried != nil {
			return *p.retried, nil
		}
		proposed, last, lastHash := seal(stream, p.head, events, time.Now())
		var written *esdb.WriteResult
		err = s.call(ctx, func(c *esdb.Client, _ func()) error {
			var err error
			written, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: p.pinned}, proposed...)
			return err
		})
		if err == nil {
			return s.appendResult(leader, name, stream, last, lastHash, events[len(events)-1], written)
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			return eventstore.AppendResult{}, err
		}
		if attempt == maxAppendAttempts {
			return eventstore.AppendResult{}, fmt.Errorf("%w: stream %q moved on %d times between reading its head and appending", eventstore.ErrWrongExpectedRevision, stream, attempt)
		}
		// Another writer got in between, or the server found part of the batch already there
		// (CorruptedIdempotency, which it answers as a wrong expected version): read again and
		// decide. For NoStream and Exact that ends in a refusal naming the stream's version, in
		// ErrDuplicateEventID, or in finding the batch stored.
	}
}

// plan is what a read of the stream decided for an append.
type plan struct {
	head    *eventstore.Event        // the event the batch chains to; nil for a new stream
	pinned  esdb.ExpectedRevision    // sent with the append: the revision of head
	retried *eventstore.AppendResult // the batch is already stored there: append nothing
}

// errConflict: the stream is not where the append expects it, and the batch is not there.
var errConflict = errors.New("kurrentdb: conflict")

// plan reads what decides an append of events to the stream named name (prefix included):
// for an exact revision, the events from it on; for NoStream, the first events; otherwise the
// stream's tail.
func (s *Store) plan(ctx context.Context, name, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (plan, error) {
	n := uint64(len(events))
	var (
		read  []eventstore.Event
		state streamState
		err   error
	)
	if rev, exact := expected.Revision(); exact {
		read, state, err = s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(rev)}, n+1)
	} else if expected.IsNoStream() {
		read, state, err = s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Start{}}, n)
	} else {
		read, state, err = s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, idempotencyWindow+n)
		reverse(read)
	}
	if err != nil {
		return plan{}, err
	}
	if state != streamFound {
		if err := s.checkNotDeleted(ctx, name, stream, state); err != nil {
			return plan{}, err
		}
	}
	p, err := planAppend(stream, expected, read, events)
	if !errors.Is(err, errConflict) {
		return p, err
	}
	// Name the stream's version in the refusal.
	last, state, err := s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return plan{}, err
	}
	if len(last) == 0 || state != streamFound {
		return plan{}, expected.Check(stream, 0, false)
	}
	if err := expected.Check(stream, last[0].Version, true); err != nil {
		return plan{}, err
	}
	return plan{}, fmt.Errorf("%w: stream %q moved while the append was decided", eventstore.ErrWrongExpectedRevision, stream)
}

// planAppend decides an append of events from read, the events plan read: for an exact
// revision v, the stream's events from v on; for NoStream, its first events; for Any and
// StreamExists, its last events, oldest first. It returns errConflict when the stream is not
// where expected says and the batch is not there either.
func planAppend(stream string, expected eventstore.ExpectedRevision, read []eventstore.Event, events []eventstore.EventData) (plan, error) {
	if rev, exact := expected.Revision(); exact {
		if len(read) == 0 || read[0].Version != rev {
			return plan{}, errConflict
		}
		if len(read) == 1 {
			return plan{head: &read[0], pinned: esdb.Revision(rev)}, nil
		}
		return retriedAt(stream, read[1:], events)
	}
	if expected.IsNoStream() {
		if len(read) == 0 {
			return plan{pinned: esdb.NoStream{}}, nil
		}
		return retriedAt(stream, read, events)
	}
	original, ok, err := findRetry(stream, read, events)
	if err != nil {
		return plan{}, err
	}
	if ok {
		return plan{retried: &eventstore.AppendResult{Version: original.Version, Position: original.Position, Retried: true}}, nil
	}
	var head *eventstore.Event
	if len(read) > 0 {
		head = &read[len(read)-1]
	}
	pinned, err := pinExpected(stream, expected, head)
	if err != nil {
		return plan{}, err
	}
	return plan{head: head, pinned: pinned}, nil
}

// retriedAt decides an append whose expected revision the stream has moved past: after are
// the events right after that revision. The batch is a retry if it is there whole, a partial
// repeat if it is there in part, and a conflict if another writer's events are there.
func retriedAt(stream string, after []eventstore.Event, events []eventstore.EventData) (plan, error) {
	if after[0].ID != events[0].ID {
		return plan{}, errConflict
	}
	for j, e := range events {
		if j >= len(after) || after[j].ID != e.ID {
			return plan{}, fmt.Errorf("%w: the batch repeats only part of the one appended to %q at version %d", eventstore.ErrDuplicateEventID, stream, after[0].Version)
		}
	}
	last := after[len(events)-1]
	return plan{retried: &eventstore.AppendResult{Version: last.Version, Position: last.Position, Retried: true}}, nil
}

// checkNotDeleted returns ErrStreamDeleted for a stream a read found tombstoned, or found
// missing while its metadata truncates it: a soft delete sets $tb, after which the stream reads
// as not found and an append goes on from the version after its last event
// (docs/server/features/streams.md in kurrent-io/KurrentDB), which no hash chain of ours
// continues. A stream that never had events has no $tb.
func (s *Store) checkNotDeleted(ctx context.Context, name, stream string, state streamState) error {
	if state == streamTombstoned {
		return fmt.Errorf("%w: stream %q was tombstoned in kurrentdb at %s", eventstore.ErrStreamDeleted, stream, s.addr)
	}
	meta, _, err := s.readStream(ctx, "$$"+name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return err
	}
	if len(meta) == 0 {
		return nil
	}
	var m struct {
		TruncateBefore *uint64 `json:"$tb"`
	}
	if err := json.Unmarshal(meta[0].Data, &m); err != nil {
		return fmt.Errorf("kurrentdb at %s: the metadata of stream %q is not JSON: %w", s.addr, stream, err)
	}
	if m.TruncateBefore != nil && *m.TruncateBefore > 0 {
		return fmt.Errorf("%w: stream %q was deleted in kurrentdb at %s (its metadata truncates it before version %d): it cannot start again at version 0", eventstore.ErrStreamDeleted, stream, s.addr, *m.TruncateBefore)
	}
	return nil
}

// pinExpected checks expected against the stream's last event head (nil for an empty stream)
// and returns the revision to send: always the exact state that was read, because the hashes
// were chained to head. Sending StreamExists or Any instead would let a concurrent writer
// slip in between and leave two events claiming the same predecessor.
func pinExpected(stream string, expected eventstore.ExpectedRevision, head *eventstore.Event) (esdb.ExpectedRevision, error) {
	if head == nil {
		if err := expected.Check(stream, 0, false); err != nil {
			return nil, err
		}
		return esdb.NoStream{}, nil
	}
	if err := expected.Check(stream, head.Version, true); err != nil {
		return nil, err
	}
	return esdb.Revision(head.Version), nil
}

// findRetry looks for events among tail, the stream's last events oldest first. A batch whose
// first event is there, followed by the rest of the batch in order, is a retry: ok is true
// and original is where its last event is. Any other overlap is ErrDuplicateEventID.
func findRetry(stream string, tail []eventstore.Event, events []eventstore.EventData) (original eventstore.Event, ok bool, err error) {
	at := make(map[uuid.UUID]int, len(tail))
	for i, e := range tail {
		at[e.ID] = i
	}
	first, found := at[events[0].ID]
	if !found {
		for _, e := range events[1:] {
			if i, dup := at[e.ID]; dup {
				return eventstore.Event{}, false, fmt.Errorf("%w: event %s is already in %q at version %d", eventstore.ErrDuplicateEventID, e.ID, stream, tail[i].Version)
			}
		}
		return eventstore.Event{}, false, nil
	}
	for j, e := range events {
		if i := first + j; i >= len(tail) || tail[i].ID != e.ID {
			return eventstore.Event{}, false, fmt.Errorf("%w: the batch repeats only part of the one appended to %q at version %d", eventstore.ErrDuplicateEventID, stream, tail[first].Version)
		}
	}
	return tail[first+len(events)-1], true, nil
}

// seal turns events into the client's, chained to head (nil for an empty stream), and returns
// the version and hash the last one will have. Events without a RecordedAt are stamped with now.
func seal(stream string, head *eventstore.Event, events []eventstore.EventData, now time.Time) ([]esdb.EventData, uint64, eventstore.Hash) {
	var prev eventstore.Hash
	var version uint64
	if head != nil {
		prev, version = head.Hash, head.Version+1
	}
	out := make([]esdb.EventData, len(events))
	for i, e := range events {
		at := e.RecordedAt
		if at.IsZero() {
			at = now
		}
		at = eventstore.NormalizeTime(at)
		hash := eventstore.ComputeHash(prev, stream, version, e.ID, e.Type, at, e.Metadata, e.Data)
		out[i] = esdb.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    encodeEnvelope(at, hash, e.Metadata),
		}
		prev = hash
		version++
	}
	return out, version - 1, prev
}

// appendResult reads back the batch's last event, which the server says is at version: for
// its position, because the position KurrentDB answers an append with is that of the commit,
// which need not be the position ReadAll and Subscribe show for the event; and for its hash,
// because a server takes a batch already stored right after the revision the append is pinned
// to as idempotent and answers success without writing (IndexWriter.CheckCommit in
// kurrent-io/KurrentDB): what is stored is then the earlier writer's, sealed with its own
// recorded_at, and the append is a retry. Should the read fail after the append succeeded, or
// the server not fill in positions on stream reads, the append's answer is used.
func (s *Store) appendResult(ctx context.Context, name, stream string, version uint64, sealed eventstore.Hash, last eventstore.EventData, written *esdb.WriteResult) (eventstore.AppendResult, error) {
	if written.NextExpectedVersion != version {
		// Only a stream soft-deleted between the read and the append takes a batch elsewhere.
		return eventstore.AppendResult{}, fmt.Errorf("%w: kurrentdb at %s stored the batch for %q up to version %d, not %d where its hashes chain: the stream was deleted meanwhile",
			eventstore.ErrStreamDeleted, s.addr, stream, written.NextExpectedVersion, version)
	}
	res := eventstore.AppendResult{Version: version, Position: eventstore.Position{Commit: written.CommitPosition, Prepare: written.PreparePosition}}
	back, _, err := s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(version)}, 1)
	if err == nil && len(back) == 1 && back[0].ID == last.ID {
		if !back[0].Position.IsZero() {
			res.Position = back[0].Position
		}
		res.Retried = back[0].Hash != sealed
	}
	return res, nil
}

func reverse(events []eventstore.Event) {
	for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
		events[i], events[j] = events[j], events[i]
	}
}
