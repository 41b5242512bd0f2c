package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// Run runs the contract suite against the stores h makes. Every case is a subtest on a fresh
// store, so an adapter's test can select cases with -run (e.g. -run 'Contract/Concurrency').
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"ExpectedRevision", testExpectedRevision},
		{"IdempotentRetry", testIdempotentRetry},
		{"InvalidInput", testInvalidInput},
		{"ReadYourWrite", testReadYourWrite},
		{"StreamVersions", testStreamVersions},
		{"GlobalOrder", testGlobalOrder},
		{"Concurrency", testConcurrency},
		{"LateCommit", testLateCommit},
		{"RolledBackAppend", testRolledBackAppend},
		{"ContextCancellation", testContextCancellation},
		{"LargeAndUnicode", testLargeAndUnicode},
		{"HashChain", testHashChain},
		{"DeletedStreams", testDeletedStreams},
		{"Snapshots", testSnapshots},
		{"FindEvent", testFindEvent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// NewEvent returns an event to append with a fresh random ID.
func NewEvent(eventType, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: eventType, Data: []byte(data)}
}

// NewEvents returns n events of one type with fresh IDs and data {"n":0}, {"n":1}, ….
func NewEvents(n int, eventType string) []eventstore.EventData {
	events := make([]eventstore.EventData, n)
	for i := range events {
		events[i] = NewEvent(eventType, `{"n":`+strconv.Itoa(i)+`}`)
	}
	return events
}

// pageSize is the limit the suite reads with when it wants everything.
const pageSize = 1000

// settleTimeout bounds how long the suite waits for Head and ReadAll to reach what an append
// committed. They may trail it for a moment: PostgreSQL's read horizon errs on the side of
// waiting when a transaction of another database ends while the horizon is being worked out
// (see eventstore/postgres), so on a server shared with other work a read right after an
// append can miss it. ReadAll's contract is never to skip an event, not to show one at once;
// a store that does not catch up within the timeout fails.
const settleTimeout = 10 * time.Second

// untilSettled calls try until it reports done or settleTimeout has passed, 5 ms apart, and
// says whether it was done.
func untilSettled(try func() (done bool)) bool {
	deadline := time.Now().Add(settleTimeout)
	for !try() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// readAll pages through the whole log from the start, the way a projector would, until it has
// read at least want events (a read that trails the last appends is read again) or
// settleTimeout has passed. want 0 reads once.
func readAll(t *testing.T, store eventstore.Store, want int) []eventstore.Event {
	t.Helper()
	var all []eventstore.Event
	untilSettled(func() bool {
		all = nil
		var from eventstore.Position
		for {
			page, err := store.ReadAll(t.Context(), from, pageSize)
			if err != nil {
				t.Fatalf("ReadAll from %v: %v", from, err)
			}
			if len(page) == 0 {
				return len(all) >= want
			}
			all = append(all, page...)
			from = page[len(page)-1].Position
		}
	})
	return all
}

// readFrom is one ReadAll after from, asked again while it returns fewer than want events (see
// settleTimeout).
func readFrom(t *testing.T, store eventstore.Store, from eventstore.Position, limit, want int) []eventstore.Event {
	t.Helper()
	var events []eventstore.Event
	untilSettled(func() bool {
		var err error
		if events, err = store.ReadAll(t.Context(), from, limit); err != nil {
			t.Fatalf("ReadAll after %v: %v", from, err)
		}
		return len(events) >= want
	})
	return events
}

// headReaches waits until Head is want, the position of the last event appended: it may trail
// it for a moment (see settleTimeout) but never pass it.
func headReaches(t *testing.T, store eventstore.Store, want eventstore.Position, what string) {
	t.Helper()
	var h eventstore.Position
	reached := untilSettled(func() bool {
		h = head(t, store)
		return h.Compare(want) >= 0
	})
	switch {
	case !reached:
		t.Errorf("Head %v %s, want %v (waited %s)", h, what, want, settleTimeout)
	case h != want:
		t.Errorf("Head %v %s, beyond the last event appended %v", h, what, want)
	}
}

// nothingAppendedAfter checks that the log holds no event after last, the position of the
// last event the test appended, once Head has settled: it appends a marker to a stream of its
// own and reads everything after last, which must be the marker alone (an event a refused
// append stored would come before it, and a read that trails shows the older events first).
// It returns the marker's position, the new last.
func nothingAppendedAfter(t *testing.T, store eventstore.Store, last eventstore.Position, what string) eventstore.Position {
	t.Helper()
	marker := NewEvent("Marker.v1", `{}`)
	res := mustAppend(t, store, "marker-"+marker.ID.String(), eventstore.NoStream(), marker)
	after := readFrom(t, store, last, pageSize, 1)
	if len(after) != 1 || after[0].ID != marker.ID {
		t.Errorf("%s: the log holds %v after %v, want only the marker %s", what, ids(after), last, marker.ID)
	}
	return res.Position
}

// readStream reads a whole stream.
func readStream(t *testing.T, store eventstore.Store, stream string) []eventstore.Event {
	t.Helper()
	events, err := store.ReadStream(t.Context(), stream, 0, 1<<20)
	if err != nil {
		t.Fatalf("ReadStream %q: %v", stream, err)
	}
	return events
}

func head(t *testing.T, store eventstore.Store) eventstore.Position {
	t.Helper()
	p, err := store.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return p
}

func mustAppend(t *testing.T, store eventstore.Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := store.Append(t.Context(), stream, expected, events...)
	if err != nil {
		t.Fatalf("Append %d events to %q expecting %v: %v", len(events), stream, expected, err)
	}
	return res
}

func describe(e eventstore.Event) string {
	return fmt.Sprintf("%s/%d@%v", e.Stream, e.Version, e.Position)
}

func ids(events []eventstore.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func dataIDs(events []eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func sameIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkStored reports how a stored event differs from the event that was appended, which
// landed at stream and version. An event appended without RecordedAt must carry the store's
// clock, between notBefore and notAfter.
func checkStored(got eventstore.Event, want eventstore.EventData, stream string, version uint64, notBefore, notAfter time.Time) error {
	var diffs []error
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Errorf("id %s, want %s", got.ID, want.ID))
	}
	if got.Stream != stream {
		diffs = append(diffs, fmt.Errorf("stream %q, want %q", got.Stream, stream))
	}
	if got.Version != version {
		diffs = append(diffs, fmt.Errorf("version %d, want %d", got.Version, version))
	}
	if got.Type != want.Type {
		diffs = append(diffs, fmt.Errorf("type %q, want %q", got.Type, want.Type))
	}
	if !bytes.Equal(got.Data, want.Data) {
		diffs = append(diffs, fmt.Errorf("data %s, want %s", abbreviate(got.Data), abbreviate(want.Data)))
	}
	if got.Metadata != want.Metadata {
		diffs = append(diffs, fmt.Errorf("metadata %+v, want %+v", got.Metadata, want.Metadata))
	}
	if got.RecordedAt.Location() != time.UTC || !got.RecordedAt.Equal(got.RecordedAt.Truncate(eventstore.RecordedAtPrecision)) {
		diffs = append(diffs, fmt.Errorf("recorded_at %v is not UTC truncated to %v", got.RecordedAt, eventstore.RecordedAtPrecision))
	}
	if !want.RecordedAt.IsZero() {
		if w := eventstore.NormalizeTime(want.RecordedAt); !got.RecordedAt.Equal(w) {
			diffs = append(diffs, fmt.Errorf("recorded_at %v, want the given %v", got.RecordedAt, w))
		}
	} else if got.RecordedAt.Before(notBefore) || got.RecordedAt.After(notAfter) {
		diffs = append(diffs, fmt.Errorf("recorded_at %v outside the append's window %v .. %v", got.RecordedAt, notBefore, notAfter))
	}
	return errors.Join(diffs...)
}

// clockSlack widens the window a store's clock must fall in: a server's clock may differ a
// little from the test's.
const clockSlack = 5 * time.Second

// sameEvent reports how two reads of one stored event differ (ReadStream against ReadAll).
func sameEvent(a, b eventstore.Event) error {
	if a.ID != b.ID || a.Stream != b.Stream || a.Version != b.Version || a.Type != b.Type ||
		!bytes.Equal(a.Data, b.Data) || a.Metadata != b.Metadata || !a.RecordedAt.Equal(b.RecordedAt) ||
		a.Position != b.Position || a.Hash != b.Hash {
		return fmt.Errorf("%s/%d read two ways differs:\n  %+v\n  %+v", a.Stream, a.Version, brief(a), brief(b))
	}
	return nil
}

func brief(e eventstore.Event) eventstore.Event {
	e.Data = []byte(abbreviate(e.Data))
	return e
}

func abbreviate(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q… (%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// checkGlobalOrder reports the first event of events (a run of the global order) whose position
// does not increase, or whose stream version does not follow the previous event of its stream
// in the run.
func checkGlobalOrder(events []eventstore.Event) error {
	last := make(map[string]uint64)
	for i, e := range events {
		if i > 0 && e.Position.Compare(events[i-1].Position) <= 0 {
			return fmt.Errorf("event %d (%s/%d) at %v does not come after %v", i, e.Stream, e.Version, e.Position, events[i-1].Position)
		}
		if v, seen := last[e.Stream]; seen && e.Version != v+1 {
			return fmt.Errorf("event %d: %s/%d follows version %d of its stream", i, e.Stream, e.Version, v)
		}
		last[e.Stream] = e.Version
	}
	return nil
}

// subscription records what one live Subscribe delivers.
type subscription struct {
	mu        sync.Mutex
	delivered []eventstore.Event
	batches   chan struct{} // receives a token (without blocking) after each batch
	cancel    context.CancelFunc
	done      chan error
	stopped   bool
}

// subscribe starts Subscribe(from) in a goroutine; t.Cleanup stops it. The handler itself
// reports empty batches and positions that do not increase.
func subscribe(t *testing.T, store eventstore.Store, from eventstore.Position) *subscription {
	ctx, cancel := context.WithCancel(t.Context())
	s := &subscription{batches: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	last := from
	go func() {
		s.done <- store.Subscribe(ctx, from, func(_ context.Context, batch []eventstore.Event) error {
			if len(batch) == 0 {
				t.Errorf("Subscribe from %v delivered an empty batch", from)
			}
			for _, e := range batch {
				if e.Position.Compare(last) <= 0 {
					t.Errorf("Subscribe from %v delivered %s/%d at %v after %v", from, e.Stream, e.Version, e.Position, last)
				}
				last = e.Position
			}
			s.mu.Lock()
			s.delivered = append(s.delivered, batch...)
			s.mu.Unlock()
			select {
			case s.batches <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *subscription) snapshot() []eventstore.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventstore.Event(nil), s.delivered...)
}

func (s *subscription) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// waitFor waits until at least n events have been delivered.
func (s *subscription) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if s.count() >= n {
			return
		}
		select {
		case <-s.batches:
		case err := <-s.done:
			s.done <- err // keep it for stop
			t.Fatalf("Subscribe returned %v after delivering %d of %d events", err, s.count(), n)
		case <-deadline.C:
			t.Fatalf("Subscribe delivered %d of %d events within %v", s.count(), n, timeout)
		}
	}
}

// stop cancels the subscription and checks that Subscribe returns the context's error promptly.
func (s *subscription) stop(t *testing.T) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v after its context was cancelled, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Subscribe did not return within 5s of its context being cancelled")
	}
}

// within runs call and fails t unless it returns within d.
func within(t *testing.T, d time.Duration, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}
