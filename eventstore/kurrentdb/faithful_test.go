package kurrentdb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// Tests of what a real KurrentDB server does that the adapter once assumed it did not; the
// fake server models each behaviour, citing where the server does it.

// TestAppendOverTheServersLimitIsInvalid: a server configured with a MaxAppendSize below the
// default refuses an append the port allows; the adapter reports ErrInvalidEvent, not an
// unknown error, and nothing is stored.
func TestAppendOverTheServersLimitIsInvalid(t *testing.T) {
	f := newFakeServer(t)
	f.set(func(f *fakeServer) { f.maxAppendSize = 4096 })
	s := openFake(t, f)
	e := eventstore.EventData{ID: uuid.New(), Type: "Attachment.v1", Data: []byte(`"` + strings.Repeat("x", 5000) + `"`)}
	_, err := s.Append(t.Context(), "attachment-1", eventstore.NoStream(), e)
	if !errors.Is(err, eventstore.ErrInvalidEvent) || !strings.Contains(err.Error(), "MaxAppendSize") {
		t.Fatalf("append over the server's limit: %v; want ErrInvalidEvent naming MaxAppendSize", err)
	}
	if got := readAllOf(t, s); len(got) != 0 {
		t.Errorf("a refused append left %d events", len(got))
	}
}

// TestEnvelopeFitsTheOverheadThePortCounts: what the adapter adds to an event's metadata stays
// within eventstore.EventOverhead, so an append the port allows is one a default server takes.
func TestEnvelopeFitsTheOverheadThePortCounts(t *testing.T) {
	var h eventstore.Hash
	for i := range h {
		h[i] = 0xff
	}
	m := eventstore.Metadata{CorrelationID: "c", CausationID: "d", IdempotencyKey: "k", Actor: "a"}
	at := eventstore.NormalizeTime(mustTime(t, "9999-12-31T23:59:59.999999Z"))
	if extra := len(encodeEnvelope(at, h, m)) - len(eventstore.EncodeMetadata(m)); extra > eventstore.EventOverhead {
		t.Errorf("the envelope adds %d bytes to the metadata, over eventstore.EventOverhead (%d)", extra, eventstore.EventOverhead)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func mustAppend(t *testing.T, s *Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, events...)
	if err != nil {
		t.Fatalf("append %d events to %q expecting %v: %v", len(events), stream, expected, err)
	}
	return res
}

// checkStreamIDs fails unless stream holds n events with no event ID twice.
func checkStreamIDs(t *testing.T, s *Store, stream string, n int) {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("%s holds event %s twice", stream, e.ID)
		}
		seen[e.ID] = true
	}
	if len(got) != n {
		t.Errorf("%s holds %d events, want %d", stream, len(got), n)
	}
}

// TestRetryFarBehindTheHeadIsRecognised: a batch retried with NoStream or an exact revision
// after more than idempotencyWindow later events is found right after that revision.
func TestRetryFarBehindTheHeadIsRecognised(t *testing.T) {
	s := openFake(t, newFakeServer(t))
	first := newEvents(2)
	original := mustAppend(t, s, "order-1", eventstore.NoStream(), first...)
	mustAppend(t, s, "order-1", eventstore.Exact(1), newEvents(idempotencyWindow+1)...)
	later := newEvents(1)
	laterOriginal := mustAppend(t, s, "order-1", eventstore.Exact(idempotencyWindow+2), later...)
	mustAppend(t, s, "order-1", eventstore.Exact(idempotencyWindow+3), newEvents(idempotencyWindow+1)...)

	for _, r := range []struct {
		expected eventstore.ExpectedRevision
		batch    []eventstore.EventData
		want     eventstore.AppendResult
	}{
		{eventstore.NoStream(), first, original},
		{eventstore.Exact(idempotencyWindow + 2), later, laterOriginal},
	} {
		r.want.Retried = true
		got, err := s.Append(t.Context(), "order-1", r.expected, r.batch...)
		if err != nil || got != r.want {
			t.Errorf("retry expecting %v: %+v, %v; want %+v", r.expected, got, err, r.want)
		}
	}
	checkStreamIDs(t, s, "order-1", 2*idempotencyWindow+5)
}

// TestDuplicateTheServerAbsorbsIsARetry: another writer stores the same batch after the same
// head between this append's read and its arrival; the server answers success without
// writing, and the append must say it was a retry and where the stored events are.
func TestDuplicateTheServerAbsorbsIsARetry(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	batch := newEvents(2)
	for _, expected := range []eventstore.ExpectedRevision{eventstore.Exact(0), eventstore.Any()} {
		t.Run(expected.String(), func(t *testing.T) {
			stream := "order-" + uuid.NewString()[:8]
			mustAppend(t, s, stream, eventstore.NoStream(), newEvents(1)...)
			stored, err := s.ReadStream(t.Context(), stream, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			var once bool
			f.setBeforeAppend(func(name string) {
				if once || name != stream {
					return
				}
				once = true
				// The other writer sealed the same events a second earlier.
				proposed, _, _ := seal(stream, &stored[0], batch, time.Now().Add(-time.Second))
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, p := range proposed {
					f.putLocked(name, p.EventID, p.EventType, "application/json", p.Data, p.Metadata)
				}
			})
			defer f.setBeforeAppend(nil)
			res, err := s.Append(t.Context(), stream, expected, batch...)
			if err != nil {
				t.Fatal(err)
			}
			events, err := s.ReadStream(t.Context(), stream, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 3 {
				t.Fatalf("%s holds %d events, want 3", stream, len(events))
			}
			last := events[2]
			if !res.Retried || res.Version != 2 || res.Position != last.Position {
				t.Errorf("append the server absorbed answered %+v; want a retry at version 2, position %v", res, last.Position)
			}
		})
	}
}

// TestPartialOverlapIsADuplicate: the server finds the first events of a batch right after
// the revision it is pinned to and others after them (CorruptedIdempotency, answered as a
// wrong expected version): the append is refused with ErrDuplicateEventID.
func TestPartialOverlapIsADuplicate(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	mustAppend(t, s, "order-1", eventstore.NoStream(), newEvents(1)...)
	batch := newEvents(2)
	other := newEvents(1)[0]
	var once bool
	f.setBeforeAppend(func(name string) {
		if once {
			return
		}
		once = true
		f.mu.Lock()
		defer f.mu.Unlock()
		f.putLocked(name, batch[0].ID, batch[0].Type, "application/json", batch[0].Data, nil)
		f.putLocked(name, other.ID, other.Type, "application/json", other.Data, nil)
	})
	_, err := s.Append(t.Context(), "order-1", eventstore.Exact(0), batch...)
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("append whose first event another writer stored: %v, want ErrDuplicateEventID", err)
	}
	checkStreamIDs(t, s, "order-1", 3)
}

// TestReadsThatDecideAnAppendRequireTheLeader: on a follower that lags behind, a read that
// does not require the leader sees an old head; the append must read the leader's.
func TestReadsThatDecideAnAppendRequireTheLeader(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	mustAppend(t, s, "order-1", eventstore.NoStream(), newEvents(1)...)
	f.lagFollower()
	mustAppend(t, s, "order-1", eventstore.Exact(0), newEvents(1)...)
	for _, expected := range []eventstore.ExpectedRevision{eventstore.Exact(1), eventstore.Any(), eventstore.StreamExists()} {
		if _, err := s.Append(t.Context(), "order-1", expected, newEvents(1)...); err != nil {
			t.Errorf("append expecting %v with a lagging follower: %v", expected, err)
		}
	}
	f.set(func(f *fakeServer) { f.followerSees = -1 })
	checkStreamIDs(t, s, "order-1", 5)
}

// TestOpenSaysWhichRightIsMissing: a user who may not read $all learns from Open what to
// grant.
func TestOpenSaysWhichRightIsMissing(t *testing.T) {
	f := newFakeServer(t)
	f.set(func(f *fakeServer) { f.denyAll = true })
	_, err := Open(t.Context(), f.connString())
	if err == nil || !strings.Contains(err.Error(), "may not read $all") || !strings.Contains(err.Error(), "$$$all") {
		t.Errorf("Open as a user without read access to $all: %v; want it to name the right and where to grant it", err)
	}
	if errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("a missing right is not an unavailable store: %v", err)
	}
}

// TestReadsFetchWhatTheyNeed: Head reads one record when the store's newest event ends $all,
// and an append expecting an exact revision reads the event at it and the one after at most,
// not the stream's tail.
func TestReadsFetchWhatTheyNeed(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	mustAppend(t, s, "order-1", eventstore.NoStream(), newEvents(100)...)
	f.sentSince()
	if _, err := s.Head(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := f.sentSince(); n != 1 {
		t.Errorf("Head read %d records of $all, want 1", n)
	}
	f.put("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`), nil)
	if h, err := s.Head(t.Context()); err != nil || h.IsZero() {
		t.Fatalf("Head past a system event: %v, %v", h, err)
	}
	if n := f.sentSince(); n > 1+9 {
		t.Errorf("Head past one system event read %d records of $all, want at most 10", n)
	}
	mustAppend(t, s, "order-1", eventstore.Exact(99), newEvents(1)...)
	if n := f.sentSince(); n > 2 {
		// The read that decides the append sends the event at 99; the read-back sends the
		// new one.
		t.Errorf("an append expecting version 99 read %d records, want 2", n)
	}
}

// TestCommitTimeoutSaysTheWriteMayCommit: a server that times out committing may still have
// written the batch; the error says so, and the same batch appended again is a retry.
func TestCommitTimeoutSaysTheWriteMayCommit(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	mustAppend(t, s, "order-1", eventstore.NoStream(), newEvents(1)...)
	batch := newEvents(2)
	f.set(func(f *fakeServer) { f.timeOutCommits = true })
	_, err := s.Append(t.Context(), "order-1", eventstore.Exact(0), batch...)
	if !errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "may still commit") {
		t.Fatalf("append answered with a commit timeout: %v; want ErrUnavailable saying the write may still commit", err)
	}
	f.set(func(f *fakeServer) { f.timeOutCommits = false })
	res, err := s.Append(t.Context(), "order-1", eventstore.Exact(0), batch...)
	if err != nil || !res.Retried || res.Version != 2 {
		t.Errorf("the same batch again: %+v, %v; want a retry at version 2", res, err)
	}
	checkStreamIDs(t, s, "order-1", 3)
}
