package follow_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// eachDB runs test on a SQLite file and on a PostgreSQL database of its own.
func eachDB(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite:"+filepath.Join(t.TempDir(), "read.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.NewDatabase(t)) })
}

func open(t *testing.T, dsn, holder string) *follow.Store {
	t.Helper()
	s, err := follow.Open(t.Context(), dsn, follow.WithHolder(holder), follow.WithHealthCheck(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitUntil polls cond every 10 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOneHolderAtATimeAndFencedCheckpoints(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		a, b := open(t, dsn, "a"), open(t, dsn, "b")
		ta, err := a.Acquire(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		var held *follow.HeldError
		if _, err := b.Acquire(ctx, "x"); !errors.As(err, &held) || !errors.Is(err, follow.ErrHeld) || held.Holder != ta.Token() {
			t.Fatalf("b takes a's lease: %v; want ErrHeld naming %s", err, ta.Token())
		}
		if _, err := a.Acquire(ctx, "x"); !errors.Is(err, follow.ErrHeld) {
			t.Fatalf("a second term of a: %v; want ErrHeld", err)
		}
		for _, s := range []*follow.Store{a, b} {
			if h, err := s.Held(ctx, "x"); err != nil || !h {
				t.Fatalf("%s sees x held: %v, %v; want true", s.Holder(), h, err)
			}
			if h, err := s.Held(ctx, "y"); err != nil || h {
				t.Fatalf("%s sees y held: %v, %v; want false", s.Holder(), h, err)
			}
		}
		p := eventstore.Position{Commit: 7, Prepare: 7}
		if err := a.Save(ctx, ta, p); err != nil {
			t.Fatal(err)
		}
		ta.Release()
		tb, err := b.Acquire(ctx, "x")
		if err != nil {
			t.Fatalf("b takes the lease a released: %v", err)
		}
		defer tb.Release()
		if got, err := b.Position(ctx, "x"); err != nil || got != p {
			t.Fatalf("checkpoint %s, %v; want %s, kept across the handover", got, err, p)
		}
		// a's term is over: a write of it that was still on its way is refused.
		if err := a.Save(ctx, ta, eventstore.Position{Commit: 9, Prepare: 9}); !errors.Is(err, follow.ErrLeaseLost) {
			t.Fatalf("a saves after its term: %v; want ErrLeaseLost", err)
		}
		if got, _ := b.Position(ctx, "x"); got != p {
			t.Fatalf("checkpoint %s after a's late save; want %s", got, p)
		}
	})
}

// A PostgreSQL lease lives on its holder's session: when the database ends the session, the
// lease is free at once, and the old holder learns its term is lost.
func TestPostgresLeaseFreesWhenTheSessionIsCut(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	a, b := open(t, dsn, "cut-a"), open(t, dsn, "cut-b")
	ta, err := a.Acquire(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var cut int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		follow.ApplicationName("cut-a")).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("terminated %d lease sessions of a, %v; want 1", cut, err)
	}
	var tb *follow.Term
	waitUntil(t, 10*time.Second, "b to take the lease", func() bool {
		tb, err = b.Acquire(ctx, "x")
		return err == nil
	})
	defer tb.Release()
	select {
	case <-ta.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("a's term is not lost 10 s after its session was cut")
	}
	if err := a.Save(ctx, ta, eventstore.Position{Commit: 3, Prepare: 3}); !errors.Is(err, follow.ErrLeaseLost) {
		t.Fatalf("a saves after its session was cut: %v; want ErrLeaseLost", err)
	}
	// a takes leases again on a new session once b is gone.
	tb.Release()
	waitUntil(t, 10*time.Second, "a to take the lease again", func() bool {
		t2, err := a.Acquire(ctx, "x")
		if err == nil {
			t2.Release()
		}
		return err == nil
	})
}

// holderEnv makes the test binary a process that holds a lease until it is killed.
const holderEnv = "FOLLOW_TEST_HOLD_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(holderEnv); dsn != "" {
		s, err := follow.Open(context.Background(), dsn, follow.WithHolder("child"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		t, err := s.Acquire(context.Background(), "x")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("holding", t.Token())
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A process killed with SIGKILL frees its leases at once, on either kind of database.
func TestLeaseFreesWhenItsProcessIsKilled(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), holderEnv+"="+dsn)
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || len(line) < 8 || line[:8] != "holding " {
			t.Fatalf("child said %q, %v", line, err)
		}
		s := open(t, dsn, "parent")
		if _, err := s.Acquire(ctx, "x"); !errors.Is(err, follow.ErrHeld) {
			t.Fatalf("parent takes the child's lease: %v; want ErrHeld", err)
		}
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		killed := time.Now()
		var term *follow.Term
		waitUntil(t, 10*time.Second, "the lease to free", func() bool {
			term, err = s.Acquire(ctx, "x")
			return err == nil
		})
		t.Logf("lease taken %s after the holder was killed", time.Since(killed).Round(time.Millisecond))
		term.Release()
	})
}

// A Follower handles every event once, across a handover from one process to another.
func TestFollowerHandsOverFromItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	events, err := sqlite.Open(t.Context(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	dsn := "sqlite:" + filepath.Join(dir, "read.db")
	appendN := func(n int) {
		for range n {
			if _, err := events.Append(t.Context(), "thing-1", eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Thing.v1", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var (
		mu   sync.Mutex
		seen = map[eventstore.Position]string{}
		dup  []string
	)
	handler := func(who string) follow.Handler {
		return func(_ context.Context, batch []eventstore.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range batch {
				if prev, ok := seen[e.Position]; ok {
					dup = append(dup, fmt.Sprintf("%s by %s and %s", e.Position, prev, who))
				}
				seen[e.Position] = who
			}
			return nil
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	a := follow.New(open(t, dsn, "a"), events, "hooks", handler("a"), follow.WithPoll(20*time.Millisecond))
	b := follow.New(open(t, dsn, "b"), events, "hooks", handler("b"), follow.WithPoll(20*time.Millisecond))
	ctxA, stopA := context.WithCancel(t.Context())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	waitUntil(t, 10*time.Second, "a to be active", func() bool { return a.Status().State == follow.StateActive })
	ctxB, stopB := context.WithCancel(t.Context())
	defer stopB()
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	waitUntil(t, 10*time.Second, "b to stand by", func() bool {
		st := b.Status()
		return st.State == follow.StateStandby && st.LeaseHolder != ""
	})
	appendN(20)
	waitUntil(t, 10*time.Second, "a to handle 20 events", func() bool { return count() == 20 })
	waitUntil(t, 10*time.Second, "a to checkpoint", func() bool {
		head, _ := events.Head(t.Context())
		return a.Status().Position == head.String()
	})
	stopA()
	if err := <-doneA; !errors.Is(err, context.Canceled) || a.Status().State != follow.StateStopped {
		t.Fatalf("a ended with %v in state %s", err, a.Status().State)
	}
	waitUntil(t, 10*time.Second, "b to take over", func() bool { return b.Status().State == follow.StateActive })
	appendN(10)
	waitUntil(t, 10*time.Second, "b to handle 10 more", func() bool { return count() == 30 })
	mu.Lock()
	defer mu.Unlock()
	if len(dup) > 0 {
		t.Fatalf("events handled twice: %v", dup)
	}
	for pos, who := range seen {
		if who != "a" && who != "b" {
			t.Fatalf("event %s handled by %s", pos, who)
		}
	}
}

// An error marked with Fail stops the follower in StateFailed; others are retried.
func TestFollowerRetriesAndFails(t *testing.T) {
	dir := t.TempDir()
	events, err := sqlite.Open(t.Context(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if _, err := events.Append(t.Context(), "thing-1", eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Thing.v1", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	broken := errors.New("cannot handle this")
	f := follow.New(open(t, "sqlite:"+filepath.Join(dir, "read.db"), "a"), events, "hooks", func(context.Context, []eventstore.Event) error {
		calls++
		if calls < 3 {
			return errors.New("transient")
		}
		return follow.Fail(broken)
	})
	err = f.Run(t.Context())
	if !errors.Is(err, broken) || !follow.IsFailure(err) || calls != 3 || f.Status().State != follow.StateFailed {
		t.Fatalf("Run = %v after %d calls, state %s; want the failure after 3 calls, failed", err, calls, f.Status().State)
	}
}

// A database where the automation kept its checkpoint in automation_checkpoints (before this
// package) keeps it: the upgraded server does not handle the log again from the start.
func TestCheckpointsOfTheOldAutomationTableCarryOver(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		s := open(t, dsn, "first")
		if _, err := s.DB().ExecContext(t.Context(), `CREATE TABLE automation_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL,
			holder TEXT NOT NULL DEFAULT '', lease_expires_ms BIGINT NOT NULL DEFAULT 0, updated_ms BIGINT NOT NULL DEFAULT 0)`); err != nil {
			t.Fatal(err)
		}
		p := eventstore.Position{Commit: 41, Prepare: 40}
		if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO automation_checkpoints (name, position) VALUES ('order-to-cash', $1)`, p.String()); err != nil {
			t.Fatal(err)
		}
		again := open(t, dsn, "upgraded")
		if got, err := again.Position(t.Context(), "order-to-cash"); err != nil || got != p {
			t.Fatalf("carried over checkpoint %s, %v; want %s", got, err, p)
		}
	})
}

func TestOpenRejectsOtherDSNsWithoutPrintingThem(t *testing.T) {
	for _, dsn := range []string{"mysql://root:secret@db/x", "sqlite:", "esdb://admin:secret@localhost:2113"} {
		if _, err := follow.Open(t.Context(), dsn); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) = %v; want an error that does not print the password", dsn, err)
		}
	}
}

// A transaction on the leases' SQLite database that reads before it writes (a server starting
// beside another: CREATE TABLE IF NOT EXISTS, then an INSERT) must wait for the other process's
// write, not fail with "database is locked" because its snapshot went stale in between.
func TestSQLiteTransactionThatReadsFirstWaitsForAnotherWriter(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "read.db")
	a, b := open(t, dsn, "a"), open(t, dsn, "b")
	ctx := t.Context()
	tx, err := a.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM follow_checkpoints`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	other := make(chan error, 1)
	go func() {
		_, err := b.DB().ExecContext(ctx, `INSERT INTO follow_checkpoints (name, position) VALUES ('other', '0-0')`)
		other <- err
	}()
	select {
	case err := <-other:
		// Without an immediate transaction the other write lands here, and the write below
		// then finds the snapshot stale.
		if err != nil {
			t.Fatalf("the other process's write: %v", err)
		}
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO follow_checkpoints (name, position) VALUES ('mine', '0-0')`); err != nil {
		t.Fatalf("writing after a read, with another process writing: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-other; err != nil {
		t.Fatalf("the other process's write, after the first committed: %v", err)
	}
	if err := a.DB().QueryRowContext(ctx, `SELECT count(*) FROM follow_checkpoints WHERE name IN ('mine', 'other')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d of the two rows stored, err %v", n, err)
	}
}
