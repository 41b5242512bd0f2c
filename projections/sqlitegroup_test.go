package projections

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// TestSQLiteGroupCommitsEachBatchOrNone: batches of several projectors share a transaction,
// and one that fails, fenced off or in its writes, leaves nothing behind while the others
// commit with their checkpoints.
func TestSQLiteGroupCommitsEachBatchOrNone(t *testing.T) {
	ctx := t.Context()
	s, err := OpenReadStore(ctx, "sqlite:"+filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names := []string{"sales", "ledger", "customers"}
	if err := s.ensureStateRows(ctx, names); err != nil {
		t.Fatal(err)
	}
	writers := map[string]writer{}
	for _, n := range names {
		cp, holds, err := s.acquire(ctx, n, "me", time.Minute, time.Now())
		if err != nil || !holds {
			t.Fatalf("lease of %s: holds %v, err %v", n, holds, err)
		}
		writers[n] = writer{owner: "me", generation: cp.generation, leaseTTL: time.Minute, now: time.Now}
	}
	fenced := writers["customers"]
	fenced.generation++
	to := progress{pos: eventstore.Position{Commit: 7, Prepare: 7}, events: 7}
	exec := func(query string, args ...any) func(queryer, execer) error {
		return func(_ queryer, tx execer) error {
			_, err := tx.ExecContext(ctx, s.dialect.sql(query), args...)
			return err
		}
	}
	boom := errors.New("boom")
	group := []*sqliteCommit{
		{name: "sales", w: writers["sales"], to: to, write: exec("INSERT INTO rm_sales_order_channels (order_id, channel, currency) VALUES (?, ?, ?)", "o1", "web", "EUR")},
		{name: "ledger", w: writers["ledger"], to: to, write: func(q queryer, tx execer) error {
			if err := exec("INSERT INTO rm_ledger_currencies (currency) VALUES (?)", "EUR")(q, tx); err != nil {
				return err
			}
			return boom
		}},
		{name: "customers", w: fenced, to: to, write: exec("INSERT INTO rm_customer_orders (order_id, customer_id, status, currency, total, credited, paid, refunded, invoiced, placed_at) VALUES ('o1', 'c1', 'pending', 'EUR', 1, 0, 0, 0, 0, 1)")},
	}
	s.sqlite.pending = group
	s.commitPending(ctx)
	for _, c := range group {
		if !c.done {
			t.Fatalf("%s: not done", c.name)
		}
	}
	if group[0].err != nil || !errors.Is(group[1].err, boom) || !errors.Is(group[2].err, errFenced) {
		t.Fatalf("errors: sales %v, ledger %v (want boom), customers %v (want fenced)", group[0].err, group[1].err, group[2].err)
	}
	count := func(table string) int {
		var n int
		err := queryRows(ctx, s.reads, s.dialect, "SELECT COUNT(*) FROM "+table, nil, func(r *sql.Rows) error { return r.Scan(&n) })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("rm_sales_order_channels"); n != 1 {
		t.Errorf("sales rows: %d, want 1", n)
	}
	if n := count("rm_ledger_currencies") + count("rm_customer_orders"); n != 0 {
		t.Errorf("rows of the failed batches: %d, want none", n)
	}
	for _, n := range names {
		cp, err := s.readCheckpoint(ctx, s.reads, n)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if n == "sales" {
			want = 7
		}
		if cp.progress.events != want {
			t.Errorf("checkpoint of %s at %d events, want %d", n, cp.progress.events, want)
		}
	}
}

// TestSQLiteGroupCommitQueues: projectors committing at once all get their own outcome.
func TestSQLiteGroupCommitQueues(t *testing.T) {
	ctx := t.Context()
	s, err := OpenReadStore(ctx, "sqlite:"+filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names := []string{"orders", "customers", "inventory", "sales", "ledger"}
	if err := s.ensureStateRows(ctx, names); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, len(names)*20)
	for _, n := range names {
		cp, _, err := s.acquire(ctx, n, "me", time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w := writer{owner: "me", generation: cp.generation, leaseTTL: time.Minute, now: time.Now}
		go func() {
			var from progress
			for i := 1; i <= 20; i++ {
				to := progress{pos: eventstore.Position{Commit: uint64(i), Prepare: uint64(i)}, events: int64(i)}
				err := s.inCheckpointTx(ctx, n, w, from, to, func(queryer, execer) error { return nil })
				results <- err
				if err == nil {
					from = to
				}
			}
		}()
	}
	for range len(names) * 20 {
		select {
		case err := <-results:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a batch never got its outcome")
		}
	}
	for _, n := range names {
		if cp, err := s.readCheckpoint(ctx, s.reads, n); err != nil || cp.progress.events != 20 {
			t.Errorf("checkpoint of %s at %d events (err %v), want 20", n, cp.progress.events, err)
		}
	}
}
