package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// The group tests give a Store one lane and keep its committer busy in an append that waits for
// a stream lock the test holds, queue the appends of the next group one after the other, then
// release the lock: the committer takes everything queued as one group. (An append to an idle
// store is applied by its caller, so the committer's append is the second one to wait.)

// pendingAppend is an Append running in its own goroutine.
type pendingAppend struct {
	done chan struct{}
	res  eventstore.AppendResult
	err  error
}

// startAppend starts an Append.
func startAppend(ctx context.Context, s *Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) *pendingAppend {
	p := &pendingAppend{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.res, p.err = s.Append(ctx, stream, expected, events...)
	}()
	return p
}

// queueAppend starts an Append while the committer is busy and waits until it is queued
// behind those queued before it.
func queueAppend(t *testing.T, ctx context.Context, s *Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) *pendingAppend {
	t.Helper()
	before := len(s.appends)
	p := startAppend(ctx, s, stream, expected, events...)
	deadline := time.Now().Add(10 * time.Second)
	for len(s.appends) != before+1 {
		select {
		case <-p.done:
			t.Fatalf("append to %q returned before it was seen queued: %v", stream, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("append to %q not queued within 10s (%d queued, want %d)", stream, len(s.appends), before+1)
		}
		time.Sleep(time.Millisecond)
	}
	return p
}

func (p *pendingAppend) wait(t *testing.T) (eventstore.AppendResult, error) {
	t.Helper()
	select {
	case <-p.done:
		return p.res, p.err
	case <-time.After(10 * time.Second):
		t.Fatal("append did not return within 10s")
		return eventstore.AppendResult{}, nil
	}
}

func (p *pendingAppend) mustSucceed(t *testing.T, what string) eventstore.AppendResult {
	t.Helper()
	res, err := p.wait(t)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return res
}

// streamLock holds the lock the append functions take for stream, on a connection of its own,
// until release.
func streamLock(t *testing.T, s *Store, stream string) (release func()) {
	t.Helper()
	conn := connect(t, s)
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock($1, hashtext($2))", streamLockSpace, stream); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.Exec(context.WithoutCancel(t.Context()), "SELECT pg_advisory_unlock($1, hashtext($2))", streamLockSpace, stream); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(release)
	return release
}

// blockCommitter keeps the only committer of s busy in an append to a stream whose lock the
// test holds, until release, which waits for the blocked appends to return. The store must be
// idle and its last append alone (as after Open or a lone append), so that the first blocking
// append is applied by its caller.
func blockCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	unlock := streamLock(t, s, "order-blocker")
	byCaller := startAppend(t.Context(), s, "order-blocker", eventstore.Any(), event("Blocker.v1", `{"n":1}`))
	waitWaiting(t, s, "advisory", 1)
	byCommitter := startAppend(t.Context(), s, "order-blocker", eventstore.Any(), event("Blocker.v1", `{"n":2}`))
	waitWaiting(t, s, "advisory", 2)
	return func() {
		t.Helper()
		unlock()
		byCaller.mustSucceed(t, "the blocking append of a caller")
		byCommitter.mustSucceed(t, "the blocking append of the committer")
	}
}

// waitWaiting waits until n connections to s's database wait for a lock of the given kind
// (pg_stat_activity.wait_event: "advisory", "transactionid", …) and returns the backend pid of
// one of them.
func waitWaiting(t *testing.T, s *Store, kind string, n int) (pid uint32) {
	t.Helper()
	conn := connect(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		err := conn.QueryRow(t.Context(), `SELECT count(*), coalesce(max(pid), 0) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1`, kind).Scan(&waiting, &pid)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections wait for a %s lock after 10s, want %d", waiting, kind, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkStreamChain reads stream back and checks its versions and hash chain against the
// events, in order, that should be stored there.
func checkStreamChain(t *testing.T, s *Store, stream string, want ...eventstore.EventData) {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q holds %d events, want %d", stream, len(got), len(want))
	}
	var prev eventstore.Hash
	for i, e := range got {
		if e.ID != want[i].ID || e.Version != uint64(i) {
			t.Fatalf("%q version %d is %s at version %d, want %s", stream, i, e.ID, e.Version, want[i].ID)
		}
		if h := eventstore.ComputeHash(prev, stream, uint64(i), want[i].ID, want[i].Type, e.RecordedAt, want[i].Metadata, want[i].Data); e.Hash != h {
			t.Fatalf("%q version %d: hash %s, want %s", stream, i, e.Hash, h)
		}
		prev = e.Hash
	}
}

// TestGroupJudgesEachAppend: one group mixing appends that succeed, a wrong expected revision,
// retries, partial repeats and several appends to one stream gives each its own answer, as if
// it had run alone after the ones queued before it, and commits the successes together.
func TestGroupJudgesEachAppend(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	ctx := t.Context()

	stored := event("Stored.v1", `{}`)
	storedAt := mustAppend(t, s, "order-retry", eventstore.NoStream(), stored)
	w0 := event("A.v1", `{}`)
	mustAppend(t, s, "order-wrong", eventstore.NoStream(), w0)
	d1, d2 := event("D.v1", `{"n":1}`), event("D.v1", `{"n":2}`)
	mustAppend(t, s, "order-partial", eventstore.NoStream(), d1, d2)
	l1 := event("L.v1", `{}`)
	mustAppend(t, s, "order-later", eventstore.NoStream(), l1)

	release := blockCommitter(t, s)
	n1 := event("New.v1", `{"n":1}`)
	t1, t2, t3 := event("Twice.v1", `{"n":1}`), event("Twice.v1", `{"n":2}`), event("Twice.v1", `{"n":3}`)
	b1, b2, b3 := event("Batch.v1", `{"n":1}`), event("Batch.v1", `{"n":2}`), event("Batch.v1", `{"n":3}`)
	n2 := event("New.v1", `{"n":2}`)
	var (
		newOne     = queueAppend(t, ctx, s, "order-new-1", eventstore.NoStream(), n1)
		wrong      = queueAppend(t, ctx, s, "order-wrong", eventstore.Exact(5), event("A.v1", `{}`))
		retry      = queueAppend(t, ctx, s, "order-retry", eventstore.NoStream(), stored)
		partial    = queueAppend(t, ctx, s, "order-partial", eventstore.Any(), d1, event("X.v1", `{}`))
		later      = queueAppend(t, ctx, s, "order-later", eventstore.Any(), event("Y.v1", `{}`), l1)
		twiceFirst = queueAppend(t, ctx, s, "order-twice", eventstore.NoStream(), t1)
		twiceNext  = queueAppend(t, ctx, s, "order-twice", eventstore.Exact(0), t2)
		batch      = queueAppend(t, ctx, s, "order-twice", eventstore.Exact(1), b1, b2, b3)
		twiceStale = queueAppend(t, ctx, s, "order-twice", eventstore.Exact(0), t3)
		twiceRetry = queueAppend(t, ctx, s, "order-twice", eventstore.NoStream(), t1)
		newTwo     = queueAppend(t, ctx, s, "order-new-2", eventstore.Any(), n2)
	)
	release()

	first := newOne.mustSucceed(t, "a new stream")
	if first.Version != 0 || first.Retried {
		t.Errorf("a new stream: %+v, want version 0, not retried", first)
	}
	if _, err := wrong.wait(t); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Errorf("a wrong expected revision: %v, want ErrWrongExpectedRevision", err)
	}
	if res := retry.mustSucceed(t, "a retry of a stored append"); !res.Retried || res.Version != 0 || res.Position != storedAt.Position {
		t.Errorf("a retry of a stored append: %+v, want retried at %+v", res, storedAt)
	}
	if _, err := partial.wait(t); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("a batch repeating a stored first event only: %v, want ErrDuplicateEventID", err)
	}
	if _, err := later.wait(t); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("a batch repeating a stored later event: %v, want ErrDuplicateEventID", err)
	}
	firstOfTwo := twiceFirst.mustSucceed(t, "the first append to a stream twice in the group")
	if r := twiceNext.mustSucceed(t, "the second append to a stream in the group"); r.Version != 1 || r.Position.Compare(firstOfTwo.Position) <= 0 {
		t.Errorf("the second append to a stream in the group: %+v after %+v, want version 1 after it", r, firstOfTwo)
	}
	if r := batch.mustSucceed(t, "a batch after two appends to its stream in the group"); r.Version != 4 {
		t.Errorf("a batch after two appends to its stream in the group: version %d, want 4", r.Version)
	}
	if _, err := twiceStale.wait(t); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Errorf("an append expecting the version an earlier append of the group moved past: %v, want ErrWrongExpectedRevision", err)
	}
	if r := twiceRetry.mustSucceed(t, "a retry of an append earlier in the group"); !r.Retried || r.Position != firstOfTwo.Position {
		t.Errorf("a retry of an append earlier in the group: %+v, want retried at %+v", r, firstOfTwo)
	}
	last := newTwo.mustSucceed(t, "a new stream after the others")

	// One transaction: every event the group appended carries its transaction id.
	for _, r := range []eventstore.AppendResult{firstOfTwo, last} {
		if r.Position.Commit != first.Position.Commit {
			t.Errorf("appends of one group committed in transactions %d and %d", first.Position.Commit, r.Position.Commit)
		}
	}
	checkStreamChain(t, s, "order-twice", t1, t2, b1, b2, b3)
	checkStreamChain(t, s, "order-retry", stored)
	checkStreamChain(t, s, "order-wrong", w0)
	checkStreamChain(t, s, "order-partial", d1, d2)
	checkStreamChain(t, s, "order-later", l1)
	checkStreamChain(t, s, "order-new-1", n1)
	checkStreamChain(t, s, "order-new-2", n2)
}

// TestGroupFailureFallsBackToEachAlone: a unique violation the stream locks should have
// prevented (a row inserted behind the append functions' back) fails the whole group; its
// appends are then applied one at a time, each with its own answer: the one that lost the race
// is refused, the others commit, each in a transaction of its own.
func TestGroupFailureFallsBackToEachAlone(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	ctx := t.Context()
	tx, err := connect(t, s).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		VALUES ('order-sneaky', 0, $1, 'Sneaky.v1', '{}', '{}', now(), '\x00')`, uuid.New()); err != nil {
		t.Fatal(err)
	}

	release := blockCommitter(t, s)
	a, b1, b2 := event("A.v1", `{}`), event("B.v1", `{"n":1}`), event("B.v1", `{"n":2}`)
	before := queueAppend(t, ctx, s, "order-a", eventstore.NoStream(), a)
	sneaky := queueAppend(t, ctx, s, "order-sneaky", eventstore.NoStream(), event("Honest.v1", `{}`))
	after := queueAppend(t, ctx, s, "order-b", eventstore.Any(), b1, b2)
	release()
	// The group waits for the sneaky row's transaction on the unique index, then fails.
	waitWaiting(t, s, "transactionid", 1)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := sneaky.wait(t); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Errorf("the append that lost the race: %v, want ErrWrongExpectedRevision", err)
	}
	ra := before.mustSucceed(t, "the append queued before it")
	rb := after.mustSucceed(t, "the append queued after it")
	if ra.Retried || rb.Retried || ra.Version != 0 || rb.Version != 1 {
		t.Errorf("the others: %+v and %+v, want versions 0 and 1, appended", ra, rb)
	}
	if ra.Position.Commit == rb.Position.Commit {
		t.Errorf("after the group failed, its appends still committed together in transaction %d", ra.Position.Commit)
	}
	checkStreamChain(t, s, "order-a", a)
	checkStreamChain(t, s, "order-b", b1, b2)
}

// TestGroupLostConnectionFallsBack: when the connection of a group is lost while the group waits
// for a stream lock, its appends are applied one at a time on other connections, each once.
func TestGroupLostConnectionFallsBack(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	ctx := t.Context()
	unlockHeld := streamLock(t, s, "order-held")
	release := blockCommitter(t, s)
	free, held := event("Free.v1", `{}`), event("Held.v1", `{}`)
	freeDone := queueAppend(t, ctx, s, "order-free", eventstore.NoStream(), free)
	heldDone := queueAppend(t, ctx, s, "order-held", eventstore.NoStream(), held)
	release()

	// The group takes every lock before writing: it waits for order-held's with nothing done.
	pid := waitWaiting(t, s, "advisory", 1)
	if _, err := connect(t, s).Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	rf := freeDone.mustSucceed(t, "the append whose stream was free")
	// Applied alone, the other waits for the lock again.
	waitWaiting(t, s, "advisory", 1)
	unlockHeld()
	rh := heldDone.mustSucceed(t, "the append whose stream was locked")
	if rf.Retried || rh.Retried || rf.Position.Commit == rh.Position.Commit {
		t.Errorf("after the lost connection: %+v and %+v, want each appended in a transaction of its own", rf, rh)
	}
	checkStreamChain(t, s, "order-free", free)
	checkStreamChain(t, s, "order-held", held)
}

// TestCancelWhileQueued: an append whose context ends while it waits for a committer returns
// the context's error at once and is never applied; the appends queued beside it are.
func TestCancelWhileQueued(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	release := blockCommitter(t, s)
	cancelled, cancel := context.WithCancel(t.Context())
	withdrawn := queueAppend(t, cancelled, s, "order-withdrawn", eventstore.NoStream(), event("Withdrawn.v1", `{}`))
	kept := event("Kept.v1", `{}`)
	keptDone := queueAppend(t, t.Context(), s, "order-kept", eventstore.NoStream(), kept)
	cancel()
	if _, err := withdrawn.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("an append cancelled while queued: %v, want context.Canceled", err)
	}
	release()
	keptDone.mustSucceed(t, "the append queued beside it")

	checkStreamChain(t, s, "order-withdrawn")
	checkStreamChain(t, s, "order-kept", kept)
	if all, err := s.ReadAll(t.Context(), eventstore.Position{}, 10); err != nil || len(all) != 3 {
		t.Fatalf("ReadAll: %d events, %v; want the two blockers' and the kept one", len(all), err)
	}
}

// TestCancelInFlight: an append whose context ends once it is sent to the server waits for,
// and returns, the real outcome, whether its caller applies it (the store was idle) or a
// committer does.
func TestCancelInFlight(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	unlock := streamLock(t, s, "order-held")
	ctx, cancel := context.WithCancel(t.Context())
	first, second := event("Held.v1", `{"n":1}`), event("Held.v1", `{"n":2}`)
	byCaller := startAppend(ctx, s, "order-held", eventstore.NoStream(), first)
	waitWaiting(t, s, "advisory", 1)
	byCommitter := startAppend(ctx, s, "order-held", eventstore.Any(), second)
	waitWaiting(t, s, "advisory", 2)
	cancel()
	for _, p := range []*pendingAppend{byCaller, byCommitter} {
		select {
		case <-p.done:
			t.Fatalf("an append in flight returned %v when its context was cancelled, before its outcome was known", p.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	unlock()
	if res := byCaller.mustSucceed(t, "the append its caller applied"); res.Version != 0 {
		t.Errorf("the append its caller applied: version %d, want 0", res.Version)
	}
	if res := byCommitter.mustSucceed(t, "the append a committer applied"); res.Version != 1 {
		t.Errorf("the append a committer applied: version %d, want 1", res.Version)
	}
	checkStreamChain(t, s, "order-held", first, second)
}

// TestGroupLocksBeforeWriting: a group whose stream is locked by another append waits for it
// before writing anything, so the other append, committed first, comes first in the global
// order too. A group that wrote an event to another stream before waiting would carry an older
// transaction id and sort its later version of the stream before the earlier one.
func TestGroupLocksBeforeWriting(t *testing.T) {
	s := newStore(t, WithAppendLanes(1))
	ctx := t.Context()
	tx, err := connect(t, s).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext('order-shared'))", streamLockSpace); err != nil {
		t.Fatal(err)
	}

	release := blockCommitter(t, s)
	other, second := event("Other.v1", `{}`), event("Second.v1", `{}`)
	otherDone := queueAppend(t, ctx, s, "order-other", eventstore.NoStream(), other)
	secondDone := queueAppend(t, ctx, s, "order-shared", eventstore.Any(), second)
	release()
	waitWaiting(t, s, "advisory", 1)

	first := event("First.v1", `{}`)
	if _, _, err := appendAlone(ctx, tx, "order-shared", eventstore.NoStream(), []eventstore.EventData{first}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	otherDone.mustSucceed(t, "the group's append to a free stream")
	secondDone.mustSucceed(t, "the group's append to the locked stream")
	checkStreamChain(t, s, "order-shared", first, second)

	all, err := s.ReadAll(ctx, eventstore.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var shared []uuid.UUID
	for _, e := range all {
		if e.Stream == "order-shared" {
			shared = append(shared, e.ID)
		}
	}
	if len(shared) != 2 || shared[0] != first.ID || shared[1] != second.ID {
		t.Fatalf("ReadAll has order-shared as %v, want version 0 (%s) before version 1 (%s)", shared, first.ID, second.ID)
	}
}

// TestMigrationFromVersion1: a database created by the first release gains the group function
// at Open, and its streams go on chaining through it.
func TestMigrationFromVersion1(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, migrations[:1], nil); err != nil {
		t.Fatal(err)
	}
	old := event("Old.v1", `{"release":1}`)
	if _, _, err := appendAlone(ctx, pool, "order-old", eventstore.NoStream(), []eventstore.EventData{old}); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'orderledger_append_group')").Scan(&exists); err != nil || exists {
		t.Fatalf("a version 1 database has orderledger_append_group: %v, %v", exists, err)
	}

	s := openStore(t, dsn, WithAppendLanes(1))
	checkSchemaVersion(t, s)
	release := blockCommitter(t, s)
	next, last := event("New.v1", `{"n":1}`), event("New.v1", `{"n":2}`)
	nextDone := queueAppend(t, ctx, s, "order-old", eventstore.Exact(0), next)
	lastDone := queueAppend(t, ctx, s, "order-old", eventstore.Exact(1), last)
	release()
	rn := nextDone.mustSucceed(t, "the first group append to a version 1 stream")
	rl := lastDone.mustSucceed(t, "the second group append to a version 1 stream")
	if rn.Position.Commit != rl.Position.Commit {
		t.Errorf("the two appends were not grouped: transactions %d and %d", rn.Position.Commit, rl.Position.Commit)
	}
	checkStreamChain(t, s, "order-old", old, next, last)
}

// TestStuckGroupHoldsUpOthersBriefly: while a group waits for a stream lock held elsewhere, an
// append to another stream goes ahead in the other lane instead of waiting for it.
func TestStuckGroupHoldsUpOthersBriefly(t *testing.T) {
	s := newStore(t, WithAppendLanes(2))
	unlock := streamLock(t, s, "order-held")
	held := startAppend(t.Context(), s, "order-held", eventstore.NoStream(), event("Held.v1", `{}`))
	waitWaiting(t, s, "advisory", 1)
	free := startAppend(t.Context(), s, "order-free", eventstore.NoStream(), event("Free.v1", `{}`))
	select {
	case <-free.done:
		if free.err != nil {
			t.Fatalf("the append beside the stuck group: %v", free.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an append to a free stream waited for a group stuck behind a lock")
	}
	select {
	case <-held.done:
		t.Fatalf("the append behind the held lock returned %v before the lock was released", held.err)
	default:
	}
	unlock()
	held.mustSucceed(t, "the append behind the released lock")
}

// TestGroupFindsRowsByIndex: orderledger_append_group is held to a generic plan, made once per
// connection and usually while events is small; every read of events in it must still be an
// index probe, since a sequential scan per group grows with the log (see functions/orderledger_append_group.sql). Solo
// appends, a batch and two appends to one stream cover both of the function's paths. A
// database that version 2 created gets the same function.
func TestGroupFindsRowsByIndex(t *testing.T) {
	t.Run("created", func(t *testing.T) { checkGroupIndexProbes(t, newStore(t)) })
	t.Run("from version 2", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		pool, err := pgxpool.New(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if err := migrateAsRelease2(t.Context(), pool); err != nil {
			t.Fatal(err)
		}
		checkGroupIndexProbes(t, openStore(t, dsn))
	})
}

func checkGroupIndexProbes(t *testing.T, s *Store) {
	ctx := t.Context()
	conn := connect(t, s)
	for round := range int64(2) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		streams := []string{"order-solo1", "order-solo2", "order-batch", "order-twice", "order-twice"}
		expected := []int64{round - 1, round - 1, 2*round - 1, 2*round - 1, 2 * round}
		offsets := []int32{1, 2, 3, 5, 6}
		rows, err := tx.Query(ctx, appendGroupSQL, append([]any{streams, expected, offsets}, probeEvents(6)...)...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var (
				outcome, version int
				xid              *uint64
				position         *int64
			)
			if err := rows.Scan(&outcome, &version, &xid, &position); err != nil {
				t.Fatal(err)
			}
			if outcome != outcomeAppended {
				t.Fatalf("round %d: outcome %d, want every append appended", round, outcome)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		var scans int64
		if err := tx.QueryRow(ctx, "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'events'").Scan(&scans); err != nil {
			t.Fatal(err)
		}
		if scans != 0 {
			t.Errorf("round %d: the group scanned events sequentially %d times", round, scans)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A stream that grows long must cost a batch no more than a short one did. The plan is
	// made for the table as a server's first batch finds it (many streams of one event each,
	// analysed), where reading every event of the stream and filtering by ID looks cheapest;
	// the check that none of a batch's events is stored already must probe each ID instead,
	// or each batch to a busy SKU's stream reads the whole stream.
	for i := range 1000 {
		if _, err := groupAppend(ctx, conn, fmt.Sprintf("customer-c%d", i), -1, probeEvents(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	fresh := connect(t, s) // plans made from here on see those statistics
	first := probeEvents(2)
	for _, want := range []int{outcomeAppended, outcomeRetry} { // the retry's plans too
		if outcome, err := groupAppend(ctx, fresh, "stock-long", -1, first); err != nil || outcome != want {
			t.Fatalf("a batch to a new stream: outcome %d, %v; want %d", outcome, err, want)
		}
	}
	const long = 2000
	if _, err := groupAppend(ctx, fresh, "stock-long", 1, probeEvents(long)); err != nil {
		t.Fatal(err)
	}
	tx, err := fresh.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	fetched := func() int64 {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'events'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	last := probeEvents(2)
	for _, want := range []int{outcomeAppended, outcomeRetry} {
		before := fetched()
		if outcome, err := groupAppend(ctx, tx, "stock-long", 1+long, last); err != nil || outcome != want {
			t.Fatalf("a batch to the long stream: outcome %d, %v; want %d", outcome, err, want)
		}
		if read := fetched() - before; read > 10 {
			t.Errorf("a batch of 2 events to a stream of %d (outcome %d) read %d of its rows; want a few probes, whatever the stream's length", long+2, want, read)
		}
	}
}

// groupAppend appends events (see probeEvents) to stream with one call of
// orderledger_append_group on q and returns its outcome.
func groupAppend(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, stream string, expected int64, events []any) (int, error) {
	var (
		outcome, version int
		xid              *uint64
		position         *int64
	)
	err := q.QueryRow(ctx, appendGroupSQL, append([]any{[]string{stream}, []int64{expected}, []int32{1}}, events...)...).
		Scan(&outcome, &version, &xid, &position)
	return outcome, err
}

// probeEvents is n empty events as orderledger_append_group takes them: the arrays of their
// IDs, types, data, metadata and times.
func probeEvents(n int) []any {
	var (
		ids      [][16]byte
		types    []string
		data     [][]byte
		metadata [][]byte
		times    []time.Time
	)
	for range n {
		ids = append(ids, uuid.New())
		types = append(types, "Probe.v1")
		data = append(data, []byte(`{}`))
		metadata = append(metadata, eventstore.EncodeMetadata(eventstore.Metadata{}))
		times = append(times, time.Now())
	}
	return []any{ids, types, data, metadata, times}
}
