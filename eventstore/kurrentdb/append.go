package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// idempotencyWindow bounds how far back Append looks for a retried batch: a retry is
// recognised while at most this many events have been appended to the stream after the
// original batch. A retry that comes later is appended again, so a caller must not retry
// after long pauses on busy streams and count on it.
const idempotencyWindow = 64

// maxAppendAttempts bounds how often an append expecting Any or StreamExists re-reads the
// stream and tries again after another writer got in between.
const maxAppendAttempts = 5

// Append writes events after the stream's last event, chaining their hashes to it. The
// append is sent pinned to the revision of the event the chain was computed from.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	name := s.prefix + stream
	for attempt := 1; ; attempt++ {
		tail, err := s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, uint64(idempotencyWindow+len(events)))
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		reverse(tail)
		original, retried, err := findRetry(stream, tail, events)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if retried {
			return eventstore.AppendResult{Version: original.Version, Position: original.Position, Retried: true}, nil
		}

		var head *eventstore.Event
		if len(tail) > 0 {
			head = &tail[len(tail)-1]
		}
		pinned, err := pinExpected(stream, expected, head)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		proposed, last := seal(stream, head, events, time.Now())
		var written *esdb.WriteResult
		err = s.call(ctx, func(c *esdb.Client, _ func()) error {
			var err error
			written, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: pinned}, proposed...)
			return err
		})
		if err == nil {
			return s.appendResult(ctx, name, last, events[len(events)-1], written), nil
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			return eventstore.AppendResult{}, err
		}
		if attempt == maxAppendAttempts {
			return eventstore.AppendResult{}, fmt.Errorf("%w: stream %q moved on %d times between reading its head and appending", eventstore.ErrWrongExpectedRevision, stream, attempt)
		}
		// Another writer got in between: read the new head and decide again. For NoStream and
		// Exact that ends in a refusal naming the stream's version (or finds our own retry).
	}
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
// the version the last one will have. Events without a RecordedAt are stamped with now.
func seal(stream string, head *eventstore.Event, events []eventstore.EventData, now time.Time) ([]esdb.EventData, uint64) {
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
	return out, version - 1
}

// appendResult reads back the batch's last event for its position, because the position
// KurrentDB answers an append with is that of the commit, which need not be the position
// ReadAll and Subscribe show for the event. Should the read fail after the append succeeded,
// or the server not fill in positions on stream reads, the append's answer is used.
func (s *Store) appendResult(ctx context.Context, name string, version uint64, last eventstore.EventData, written *esdb.WriteResult) eventstore.AppendResult {
	res := eventstore.AppendResult{Version: version, Position: eventstore.Position{Commit: written.CommitPosition, Prepare: written.PreparePosition}}
	back, err := s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(version)}, 1)
	if err == nil && len(back) == 1 && back[0].ID == last.ID && !back[0].Position.IsZero() {
		res.Position = back[0].Position
	}
	return res
}

func reverse(events []eventstore.Event) {
	for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
		events[i], events[j] = events[j], events[i]
	}
}
