package projections

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// sqliteCommits lets the projectors of a SQLite read store share their transactions. SQLite
// has one write lock per file, which the event store's writer, on the same file by default,
// takes back to back under load, so each time a projector takes it costs a wait (see
// beginBatch), and five projectors taking it one after the other waited five times over.
// Instead the projector that gets the batch connection commits the batches the others queued meanwhile in the same transaction, each within a
// savepoint of its own: a batch that fails (its checkpoint moved, a write failed) is rolled
// back to its savepoint and fails alone, and every batch still commits its rows with its
// checkpoint.
type sqliteCommits struct {
	mu      sync.Mutex
	pending []*sqliteCommit
	// leader is held by the projector committing; the others queue behind it.
	leader sync.Mutex
}

// sqliteCommit is one projector's batch waiting for a transaction.
type sqliteCommit struct {
	name     string
	w        writer
	from, to progress
	write    func(q queryer, tx execer) error
	// Set by the committer, under leader.
	done bool
	err  error
}

// groupCheckpointTx is inCheckpointTx on SQLite: the batch joins the next transaction.
func (s *ReadStore) groupCheckpointTx(ctx context.Context, name string, w writer, from, to progress, write func(q queryer, tx execer) error) error {
	c := &sqliteCommit{name: name, w: w, from: from, to: to, write: write}
	g := &s.sqlite
	g.mu.Lock()
	g.pending = append(g.pending, c)
	g.mu.Unlock()
	g.leader.Lock()
	defer g.leader.Unlock()
	if c.done {
		// A projector that had the connection before committed it.
		return c.err
	}
	s.commitPending(ctx)
	return c.err
}

// commitPending takes the write lock, then writes each batch queued by then within a
// savepoint of one transaction, and commits the ones that went through. The batches queued
// while it waited for the lock join: under load the projectors' batches of one stretch of the
// log arrive within that wait.
func (s *ReadStore) commitPending(ctx context.Context) {
	finish := func(cs []*sqliteCommit, err error) {
		for _, c := range cs {
			c.done, c.err = true, err
		}
	}
	g := &s.sqlite
	take := func() []*sqliteCommit {
		g.mu.Lock()
		defer g.mu.Unlock()
		group := g.pending
		g.pending = nil
		return group
	}
	tx, err := s.beginBatch(ctx)
	if err != nil {
		finish(take(), err)
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	group := take()
	var written []*sqliteCommit
	for i, c := range group {
		err := s.writeCommit(ctx, tx, c, len(group) > 1)
		var undo *savepointError
		if errors.As(err, &undo) {
			// The transaction is in no state to go on: nothing of it commits.
			finish(group[i:], err)
			finish(written, err)
			return
		}
		if err != nil {
			finish([]*sqliteCommit{c}, err)
			continue
		}
		written = append(written, c)
	}
	finish(written, tx.Commit())
}

// Waiting for SQLite's write lock, for a batch.
const (
	lockRetry = 500 * time.Microsecond
	lockWait  = 10 * time.Second
)

// beginBatch starts the transaction of a group of batches, trying for the write lock every
// lockRetry. SQLite's busy handler sleeps longer and longer between tries (up to 100 ms), and
// the event store's writer, under load, holds the lock nearly all the time and takes it back
// at once when it commits, so a batch waiting there lost the lock again and again, for
// seconds; the projectors were that far behind.
func (s *ReadStore) beginBatch(ctx context.Context) (*sql.Tx, error) {
	deadline := time.Now().Add(lockWait)
	for {
		tx, err := s.batches.BeginTx(ctx, nil)
		var code interface{ Code() int }
		if err == nil || !errors.As(err, &code) || code.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return tx, err
		}
		sleep(ctx, lockRetry)
	}
}

// sqliteBusy is SQLITE_BUSY, the primary result code of a lock held by another connection.
const sqliteBusy = 5

// savepointError: a savepoint could not be set, released or rolled back to, which leaves the
// transaction in no known state.
type savepointError struct{ err error }

func (e *savepointError) Error() string { return "projections: savepoint: " + e.err.Error() }
func (e *savepointError) Unwrap() error { return e.err }

// writeCommit moves c's checkpoint and writes its batch in tx, within a savepoint when other
// batches share the transaction, and undoes it all when it fails.
func (s *ReadStore) writeCommit(ctx context.Context, tx *sql.Tx, c *sqliteCommit, savepoint bool) error {
	if savepoint {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT projector_batch"); err != nil {
			return &savepointError{err}
		}
	}
	err := s.moveCheckpoint(ctx, tx, c.name, c.w, c.from, c.to)
	if err == nil {
		if err = c.write(tx, tx); err != nil {
			err = writeErr(c.name, err)
		}
	}
	if err == nil && s.beforeCommit != nil {
		err = s.beforeCommit(c.name)
	}
	if !savepoint {
		return err
	}
	if err != nil {
		if _, undoErr := tx.ExecContext(ctx, "ROLLBACK TO projector_batch"); undoErr != nil {
			return &savepointError{undoErr}
		}
	}
	if _, relErr := tx.ExecContext(ctx, "RELEASE projector_batch"); relErr != nil {
		return &savepointError{relErr}
	}
	return err
}
