package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/internal/handoff"
	"github.com/orderledger/orderledger/eventstore/storetest"
)

// harness makes each store in a file of its own under the test's temporary directory.
type harness struct{}

func (harness) NewStore(t *testing.T) eventstore.Store {
	return openStore(t, filepath.Join(t.TempDir(), "events.db"))
}

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// BeginAppend applies the append in a transaction on the write connection and keeps it open;
// the writer goroutine, and with it every other append, waits for that connection meanwhile.
func (harness) BeginAppend(ctx context.Context, t *testing.T, store eventstore.Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (commit, rollback func() error, err error) {
	s := store.(*Store)
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return nil, nil, err
	}
	w, err := s.beginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := w.apply(ctx, stream, expected, events); err != nil {
		w.tx.Rollback()
		return nil, nil, err
	}
	var once sync.Once
	resolve := func(commit bool) error {
		err := errors.New("the held append was already committed or rolled back")
		once.Do(func() {
			if !commit {
				err = w.tx.Rollback()
				return
			}
			if err = w.tx.Commit(); err == nil {
				s.notify()
			}
		})
		return err
	}
	// A test that fails while the transaction is open must still free the writer.
	t.Cleanup(func() { resolve(false) })
	return func() error { return resolve(true) }, func() error { return resolve(false) }, nil
}

func TestContract(t *testing.T) {
	storetest.Run(t, harness{})
}

func TestReopenContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "events.db")
	first, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open in a missing directory: %v", err)
	}
	before, err := first.Append(t.Context(), "order-1", eventstore.NoStream(), storetest.NewEvents(3, "Placed.v1")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := openStore(t, path)
	after, err := again.Append(t.Context(), "order-1", eventstore.Exact(2), storetest.NewEvents(2, "Shipped.v1")...)
	if err != nil {
		t.Fatalf("Append after reopening, expecting the version written before: %v", err)
	}
	if after.Version != 4 || after.Position.Compare(before.Position) <= 0 {
		t.Errorf("after reopening the append landed at %+v, after %+v", after, before)
	}
	events, err := again.ReadStream(t.Context(), "order-1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("stream has %d events, want 5", len(events))
	}
	var prev eventstore.Hash
	for _, e := range events {
		if e.Recompute(prev) != e.Hash {
			t.Errorf("version %d does not chain onto version %d", e.Version, e.Version-1)
		}
		prev = e.Hash
	}

	var version int
	if err := again.read.QueryRowContext(t.Context(), `SELECT version FROM schema_migrations WHERE component = 'eventstore'`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("schema_migrations has eventstore at %d (err %v), want %d", version, err, len(migrations))
	}
}

func TestSchemaFromANewerBuildIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	openStore(t, path).Close()
	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations VALUES ('projections', 3)`); err != nil {
		t.Fatal(err)
	}
	// Another component's row is not ours to judge.
	openStore(t, path).Close()
	if _, err := db.ExecContext(t.Context(), `UPDATE schema_migrations SET version = 99 WHERE component = 'eventstore'`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open of a schema at version 99: err %v, want it refused as newer", err)
	}
}

func TestEventsCannotBeUpdatedOrDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path)
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), storetest.NewEvent("Placed.v1", `{"total":100}`)); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, stmt := range []string{
		`UPDATE events SET data = CAST('{"total":1}' AS BLOB)`,
		`UPDATE events SET hash = zeroblob(32)`,
		`DELETE FROM events`,
	} {
		_, err := db.ExecContext(t.Context(), stmt)
		if err == nil || !strings.Contains(err.Error(), "events are immutable") {
			t.Errorf("%s: err %v, want it refused by the trigger", stmt, err)
		}
	}
	events, err := s.ReadStream(t.Context(), "order-1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || string(events[0].Data) != `{"total":100}` || events[0].Recompute(eventstore.Hash{}) != events[0].Hash {
		t.Errorf("after refused changes the stream reads %+v", events)
	}
}

func TestAppendFromAnotherStoreWakesSubscriber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	subscribed, other := openStore(t, path), openStore(t, path)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	delivered := make(chan eventstore.Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- subscribed.Subscribe(ctx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				delivered <- e
			}
			return nil
		})
	}()
	// Let the subscriber catch up with the empty log and wait.
	time.Sleep(50 * time.Millisecond)
	event := storetest.NewEvent("Placed.v1", `{}`)
	if _, err := other.Append(t.Context(), "order-1", eventstore.NoStream(), event); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-delivered:
		if e.ID != event.ID {
			t.Errorf("delivered %s, want %s", e.ID, event.ID)
		}
	case err := <-done:
		t.Fatalf("Subscribe returned %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("an append through another Store on the same file did not reach the subscriber within 5s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v, want context.Canceled", err)
	}
}

// TestAppendCancelledWhileQueued cancels an append that waits for the writer: it returns at
// once and is never applied, although the writer runs it after the held transaction ends.
func TestAppendCancelledWhileQueued(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	commit, _, err := harness{}.BeginAppend(t.Context(), t, s, "order-1", eventstore.NoStream(), storetest.NewEvent("Held.v1", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "order-2", eventstore.NoStream(), storetest.NewEvent("Queued.v1", `{}`))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("queued Append returned %v after cancellation, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("a queued Append did not return within 1s of its context being cancelled")
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	// The writer has moved past the cancelled request once this append returns.
	if _, err := s.Append(t.Context(), "order-3", eventstore.NoStream(), storetest.NewEvent("After.v1", `{}`)); err != nil {
		t.Fatal(err)
	}
	if events, err := s.ReadStream(t.Context(), "order-2", 0, 10); err != nil || len(events) != 0 {
		t.Errorf("the cancelled append left %d events (err %v)", len(events), err)
	}
}

// TestGroupCommitIsolatesAppends queues appends behind a held transaction so that the writer
// commits them as one group, in queue order: each sees the ones before it, and a refused one
// changes nothing for the others.
func TestGroupCommitIsolatesAppends(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	commit, _, err := harness{}.BeginAppend(t.Context(), t, s, "held-1", eventstore.NoStream(), storetest.NewEvent("Held.v1", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	first := storetest.NewEvent("Placed.v1", `{}`)
	steps := []struct {
		name     string
		expected eventstore.ExpectedRevision
		events   []eventstore.EventData
		want     error // nil: appended
		version  uint64
	}{
		{"create", eventstore.NoStream(), []eventstore.EventData{first}, nil, 0},
		{"create again", eventstore.NoStream(), storetest.NewEvents(1, "Placed.v1"), eventstore.ErrWrongExpectedRevision, 0},
		{"retry of create", eventstore.NoStream(), []eventstore.EventData{first}, nil, 0},
		{"repeat plus new", eventstore.Any(), []eventstore.EventData{first, storetest.NewEvent("Paid.v1", `{}`)}, eventstore.ErrDuplicateEventID, 0},
		{"follow create", eventstore.Exact(0), storetest.NewEvents(2, "Paid.v1"), nil, 2},
		{"stale", eventstore.Exact(0), storetest.NewEvents(1, "Paid.v1"), eventstore.ErrWrongExpectedRevision, 0},
		{"follow again", eventstore.StreamExists(), storetest.NewEvents(1, "Shipped.v1"), nil, 3},
	}
	// Queue the requests as Append would, in order, while the writer waits for the connection.
	requests := make([]*appendRequest, len(steps))
	for i, step := range steps {
		requests[i] = &appendRequest{Ticket: handoff.NewTicket(), stream: "order-1", expected: step.expected, events: step.events}
		s.appends <- requests[i]
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	var positions []eventstore.Position
	for i, step := range steps {
		out := <-requests[i].Done()
		switch {
		case step.want != nil && !errors.Is(out.Err, step.want):
			t.Errorf("%s: err %v, want %v", step.name, out.Err, step.want)
		case step.want == nil && out.Err != nil:
			t.Errorf("%s: %v", step.name, out.Err)
		case step.want == nil && out.Result.Version != step.version:
			t.Errorf("%s: landed at version %d, want %d", step.name, out.Result.Version, step.version)
		case step.want == nil:
			positions = append(positions, out.Result.Position)
		}
	}
	if len(positions) == 4 && positions[1] != positions[0] {
		t.Errorf("the retry answered %v, the original %v", positions[1], positions[0])
	}
	events, err := s.ReadStream(t.Context(), "order-1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 {
		t.Fatalf("stream has %d events, want 4", len(events))
	}
	var prev eventstore.Hash
	for _, e := range events {
		if e.Recompute(prev) != e.Hash {
			t.Errorf("version %d does not chain", e.Version)
		}
		prev = e.Hash
	}
}

// TestFailedWriteFailsItsGroup makes one insert of a group fail: the transaction is rolled back,
// every append in it fails (a refused one keeps its refusal), and the writer goes on.
func TestFailedWriteFailsItsGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, path)
	if _, err := rawDB(t, path).ExecContext(t.Context(), `CREATE TRIGGER poison BEFORE INSERT ON events
		WHEN NEW.type = 'Poison.v1' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	commit, _, err := harness{}.BeginAppend(t.Context(), t, s, "held-1", eventstore.NoStream(), storetest.NewEvent("Held.v1", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		stream   string
		expected eventstore.ExpectedRevision
		event    eventstore.EventData
		refused  bool
	}{
		{"order-1", eventstore.NoStream(), storetest.NewEvent("Placed.v1", `{}`), false},
		{"order-2", eventstore.Exact(5), storetest.NewEvent("Placed.v1", `{}`), true},
		{"order-3", eventstore.NoStream(), storetest.NewEvent("Poison.v1", `{}`), false},
		{"order-4", eventstore.NoStream(), storetest.NewEvent("Placed.v1", `{}`), false},
	}
	requests := make([]*appendRequest, len(steps))
	for i, step := range steps {
		requests[i] = &appendRequest{Ticket: handoff.NewTicket(), stream: step.stream, expected: step.expected, events: []eventstore.EventData{step.event}}
		s.appends <- requests[i]
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	for i, step := range steps {
		out := <-requests[i].Done()
		if step.refused != errors.Is(out.Err, eventstore.ErrWrongExpectedRevision) || out.Err == nil {
			t.Errorf("%s: err %v", step.stream, out.Err)
		}
		if !step.refused && out.Err != nil && !strings.Contains(out.Err.Error(), "poisoned") {
			t.Errorf("%s: err %v, want the failed insert's error", step.stream, out.Err)
		}
	}
	all, err := s.ReadAll(t.Context(), eventstore.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Stream != "held-1" {
		t.Errorf("the failed group left %d events, want only the held one", len(all))
	}
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), storetest.NewEvent("Placed.v1", `{}`)); err != nil {
		t.Errorf("append after a failed group: %v", err)
	}
}

func TestBatchRepeatingAStoredEventIsRefused(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"))
	stored := storetest.NewEvents(3, "Placed.v1")
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), stored...); err != nil {
		t.Fatal(err)
	}
	batch := storetest.NewEvents(6, "Paid.v1")
	batch[4] = stored[1]
	_, err := s.Append(t.Context(), "order-1", eventstore.Any(), batch...)
	if !errors.Is(err, eventstore.ErrDuplicateEventID) || !strings.Contains(err.Error(), stored[1].ID.String()) {
		t.Errorf("err %v, want ErrDuplicateEventID naming %s", err, stored[1].ID)
	}
	if events, err := s.ReadStream(t.Context(), "order-1", 0, 10); err != nil || len(events) != 3 {
		t.Errorf("the refused batch left the stream at %d events (err %v), want 3", len(events), err)
	}
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	following := make(chan error, 1)
	go func() {
		following <- s.Subscribe(t.Context(), eventstore.Position{}, func(context.Context, []eventstore.Event) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond) // let it wait for events
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-following:
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("Subscribe ended by Close returned %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a live subscription")
	}
	if _, err := s.Append(t.Context(), "order-1", eventstore.Any(), storetest.NewEvent("Late.v1", `{}`)); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Append on a closed store: err %v, want ErrUnavailable", err)
	}
	if _, err := s.ReadAll(t.Context(), eventstore.Position{}, 10); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("ReadAll on a closed store: err %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// rawDB opens the file outside any Store, as another program would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
