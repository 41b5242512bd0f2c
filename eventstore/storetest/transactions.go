package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// observeWindow is how long the late-commit case watches readers while transaction A is open.
const observeWindow = 300 * time.Millisecond

const notTransactional = "the harness does not implement storetest.Transactional, so no append can be held open in a transaction"

// testLateCommit holds transaction A (stream race-a) open, appends B (stream race-b) outside it
// and lets B commit if the store allows it (PostgreSQL does; SQLite's single writer makes B wait
// behind A), then commits A. What it asserts:
//
//   - while A is open, neither a live subscriber nor a ReadAll loop that checkpoints on the last
//     position it got returns anything, and Head stays at zero: B must not be delivered ahead
//     of the still-undecided A;
//   - after A commits, both deliver A's events then B, each exactly once, and Head is B's
//     position.
//
// The essential property is that A is never skipped and nothing is delivered twice; delivering
// nothing while A is open is how the transactional adapters (ordered by transaction start on
// PostgreSQL, by commit on SQLite where B cannot commit first) achieve it.
func testLateCommit(t *testing.T, h Harness) {
	tx, ok := h.(Transactional)
	if !ok {
		t.Skip(notTransactional)
	}
	ctx := t.Context()
	store := h.NewStore(t)
	sub := subscribe(t, store, eventstore.Position{})
	loop := pollReadAll(t, store)

	a := NewEvents(2, "RaceA.v1")
	b := NewEvent("RaceB.v1", `{}`)
	commitA, _, err := tx.BeginAppend(ctx, t, store, "race-a", eventstore.NoStream(), a...)
	if err != nil {
		t.Fatalf("BeginAppend A: %v", err)
	}
	bDone := make(chan error, 1)
	go func() {
		_, err := store.Append(ctx, "race-b", eventstore.NoStream(), b)
		bDone <- err
	}()

	// Watch for a while; if B commits meanwhile, keep watching after it did.
	bCommitted := false
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("Append B while A is open: %v", err)
		}
		bCommitted = true
		time.Sleep(observeWindow)
	case <-time.After(observeWindow):
	}
	if got := sub.snapshot(); len(got) != 0 {
		t.Errorf("while A is open (B committed: %v), the subscriber delivered %v", bCommitted, ids(got))
	}
	if got := loop.snapshot(); len(got) != 0 {
		t.Errorf("while A is open (B committed: %v), the ReadAll loop returned %v", bCommitted, ids(got))
	}
	if hd := head(t, store); !hd.IsZero() {
		t.Errorf("while A is open (B committed: %v), Head is %v, want zero", bCommitted, hd)
	}

	if err := commitA(); err != nil {
		t.Fatalf("commit A: %v", err)
	}
	if !bCommitted {
		select {
		case err := <-bDone:
			if err != nil {
				t.Fatalf("Append B after A committed: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Append B did not return within 10s of A's commit")
		}
	}

	want := append(dataIDs(a), b.ID)
	sub.waitFor(t, len(want), 10*time.Second)
	loop.waitFor(t, len(want), 10*time.Second)
	// Give a duplicate the time to show up.
	time.Sleep(50 * time.Millisecond)
	got, polled := sub.snapshot(), loop.snapshot()
	if !sameIDs(ids(got), want) {
		t.Errorf("subscriber delivered %v, want A then B: %v", ids(got), want)
	}
	if !sameIDs(ids(polled), want) {
		t.Errorf("ReadAll loop returned %v, want A then B: %v", ids(polled), want)
	}
	if len(got) == len(want) {
		headReaches(t, store, got[len(got)-1].Position, "after A and B committed")
	}
}

// testRolledBackAppend rolls back a held transaction while B commits beside it: nothing of the
// rolled-back append is visible, its stream can be created afresh, and the subscriber goes on.
func testRolledBackAppend(t *testing.T, h Harness) {
	tx, ok := h.(Transactional)
	if !ok {
		t.Skip(notTransactional)
	}
	ctx := t.Context()
	store := h.NewStore(t)
	sub := subscribe(t, store, eventstore.Position{})

	x := NewEvents(2, "RolledBack.v1")
	_, rollback, err := tx.BeginAppend(ctx, t, store, "rollback-a", eventstore.NoStream(), x...)
	if err != nil {
		t.Fatalf("BeginAppend: %v", err)
	}
	b := NewEvent("Beside.v1", `{}`)
	bDone := make(chan error, 1)
	go func() {
		_, err := store.Append(ctx, "rollback-b", eventstore.NoStream(), b)
		bDone <- err
	}()
	if err := rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("Append B beside the rolled-back append: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append B did not return within 10s of the rollback")
	}

	if got := readStream(t, store, "rollback-a"); len(got) != 0 {
		t.Fatalf("rolled-back stream reads as %v", ids(got))
	}
	y := NewEvent("Recreated.v1", `{}`)
	res, err := store.Append(ctx, "rollback-a", eventstore.NoStream(), y)
	if err != nil {
		t.Fatalf("Append expecting no stream after the rollback: %v", err)
	}
	if res.Version != 0 {
		t.Errorf("the recreated stream starts at version %d, want 0", res.Version)
	}

	want := []uuid.UUID{b.ID, y.ID}
	if all := readAll(t, store, len(want)); !sameIDs(ids(all), want) {
		t.Errorf("ReadAll returns %v, want B then the recreated event %v", ids(all), want)
	}
	sub.waitFor(t, len(want), 10*time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := sub.snapshot(); !sameIDs(ids(got), want) {
		t.Errorf("subscriber delivered %v, want B then the recreated event %v", ids(got), want)
	}
	headReaches(t, store, res.Position, "after the recreating append")
}

// readAllLoop is a reader that polls ReadAll and checkpoints on the last position it got, as a
// projector does.
type readAllLoop struct {
	mu     sync.Mutex
	events []eventstore.Event
}

func pollReadAll(t *testing.T, store eventstore.Store) *readAllLoop {
	ctx, cancel := context.WithCancel(t.Context())
	l := &readAllLoop{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var checkpoint eventstore.Position
		for ctx.Err() == nil {
			page, err := store.ReadAll(ctx, checkpoint, 100)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("ReadAll from %v: %v", checkpoint, err)
				}
				return
			}
			if len(page) > 0 {
				checkpoint = page[len(page)-1].Position
				l.mu.Lock()
				l.events = append(l.events, page...)
				l.mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func (l *readAllLoop) snapshot() []eventstore.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]eventstore.Event(nil), l.events...)
}

// waitFor waits until the loop has returned at least n events.
func (l *readAllLoop) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if len(l.snapshot()) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ReadAll loop returned %d of %d events within %v", len(l.snapshot()), n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
