package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// logCounter is the name of the row that counts the events of the log, so that each
// projector's lag can be told in events on every kind of event store.
const logCounter = "log"

// checkpoint is a projector's row of rm_projector_state.
type checkpoint struct {
	generation int64
	progress   progress
	leaseOwner string
}

// Positions are uint64; BIGINT columns hold their bits.
func posArgs(p eventstore.Position) (int64, int64) { return int64(p.Commit), int64(p.Prepare) }

// ensureStateRows creates the rows of projectors that have none yet.
func (s *ReadStore) ensureStateRows(ctx context.Context, names []string) error {
	rows := make([][]any, len(names))
	for i, n := range names {
		rows[i] = []any{n, int64(0), int64(0), int64(0), int64(0), int64(0), "", int64(0), int64(0)}
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	if err := stateTable.insertRows(ctx, tx, s.dialect, rows, " ON CONFLICT (name) DO NOTHING"); err != nil {
		return err
	}
	return tx.Commit()
}

var stateTable = table{name: "rm_projector_state", key: 1, columns: []string{
	"name", "generation", "pos_commit", "pos_prepare", "events", "last_recorded_at", "lease_owner", "lease_expires", "updated_at",
}}

// readCheckpoint reads a projector's row.
func (s *ReadStore) readCheckpoint(ctx context.Context, q queryer, name string) (checkpoint, error) {
	var (
		cp              checkpoint
		commit, prepare int64
		found           bool
	)
	err := queryRows(ctx, q, s.dialect, `SELECT generation, pos_commit, pos_prepare, events, last_recorded_at, lease_owner
		FROM rm_projector_state WHERE name = ?`, []any{name}, func(r *sql.Rows) error {
		found = true
		return r.Scan(&cp.generation, &commit, &prepare, &cp.progress.events, &cp.progress.lastRecordedAt, &cp.leaseOwner)
	})
	if err != nil {
		return cp, err
	}
	if !found {
		return cp, fmt.Errorf("%w for %s", errNoCheckpoint, name)
	}
	cp.progress.pos = eventstore.Position{Commit: uint64(commit), Prepare: uint64(prepare)}
	return cp, nil
}

// acquire names owner, a term of the projector's lease (package follow), as the writer of the
// projector's row and returns the row; holds reports whether it now does. The lease is the
// term's, so whichever runner the row names is gone or about to be fenced off by this
// update: the row is taken from any runner. Not from a rebuild (rebuildOwnerPrefix) until it
// releases the row or its lease lapses, nor from a replay's seal.
func (s *ReadStore) acquire(ctx context.Context, name, owner string, ttl time.Duration, now time.Time) (cp checkpoint, holds bool, err error) {
	_, err = s.writes.ExecContext(ctx, s.dialect.sql(`UPDATE rm_projector_state SET lease_owner = ?, lease_expires = ?, updated_at = ?
		WHERE name = ? AND (lease_owner = ? OR lease_owner = '' OR lease_expires < ?
			OR (lease_owner NOT LIKE ? AND lease_owner NOT LIKE ?))`),
		owner, now.Add(ttl).UnixMicro(), now.UnixMicro(), name, owner, now.UnixMicro(),
		rebuildOwnerPrefix+"%", replaySealPrefix+"%")
	if err != nil {
		return cp, false, err
	}
	// A rebuild may take the lease between these two statements; the writer then holds a row
	// whose owner is not itself, and its first write is fenced off.
	cp, err = s.readCheckpoint(ctx, s.writes, name)
	return cp, err == nil && cp.leaseOwner == owner, err
}

// moveCheckpoint moves the checkpoint from `from` to `to`, extending w's lease, if the row is
// still at `from` under w; otherwise the projector was taken over (errFenced).
func (s *ReadStore) moveCheckpoint(ctx context.Context, tx *sql.Tx, name string, w writer, from, to progress) error {
	return s.updateCheckpoint(ctx, tx, name, w, from, to, w.owner, w.now().Add(w.leaseTTL))
}

// stillAt reports whether the projector's checkpoint is at `from` under w, as a batch from
// `from` by w expects.
func (s *ReadStore) stillAt(ctx context.Context, name string, w writer, from progress) (bool, error) {
	cp, err := s.readCheckpoint(ctx, s.writes, name)
	if err != nil {
		return false, err
	}
	return cp.generation == w.generation && cp.leaseOwner == w.owner && cp.progress.pos == from.pos, nil
}

// renew records the progress a projector made in memory (batches it had nothing to write for)
// and extends its lease.
func (s *ReadStore) renew(ctx context.Context, name string, w writer, from, to progress) error {
	return s.updateCheckpoint(ctx, s.writes, name, w, from, to, w.owner, w.now().Add(w.leaseTTL))
}

// release records the progress and frees the lease, so another process can take over at once.
// If the row is not at `from`, a commit whose answer was lost (its context ended as it
// committed) may have moved it: the lease is freed all the same if w holds it, the row's
// checkpoint left as that commit wrote it, with its rows.
func (s *ReadStore) release(ctx context.Context, name string, w writer, from, to progress) error {
	err := s.updateCheckpoint(ctx, s.writes, name, w, from, to, "", time.UnixMicro(0))
	if errors.Is(err, errFenced) {
		if dropErr := s.dropLease(ctx, name, w.owner); dropErr != nil {
			return dropErr
		}
	}
	return err
}

// dropLease frees the projector's lease if owner holds it, leaving its checkpoint as it is.
func (s *ReadStore) dropLease(ctx context.Context, name, owner string) error {
	_, err := s.writes.ExecContext(ctx, s.dialect.sql(`UPDATE rm_projector_state SET lease_owner = '', lease_expires = 0
		WHERE name = ? AND lease_owner = ?`), name, owner)
	return err
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// checkpointUpdate is the statement that moves a projector's checkpoint from `from` to `to`
// and sets its lease, on the condition that the row is still at `from` under w: it updates one
// row, or none when the projector was taken over.
func checkpointUpdate(name string, w writer, from, to progress, owner string, expires time.Time) (string, []any) {
	fromCommit, fromPrepare := posArgs(from.pos)
	toCommit, toPrepare := posArgs(to.pos)
	return `UPDATE rm_projector_state
		SET pos_commit = ?, pos_prepare = ?, events = ?, last_recorded_at = ?, lease_owner = ?, lease_expires = ?, updated_at = ?
		WHERE name = ? AND generation = ? AND lease_owner = ? AND pos_commit = ? AND pos_prepare = ?`,
		[]any{toCommit, toPrepare, to.events, to.lastRecordedAt, owner, expires.UnixMicro(), w.now().UnixMicro(),
			name, w.generation, w.owner, fromCommit, fromPrepare}
}

func (s *ReadStore) updateCheckpoint(ctx context.Context, ex execer, name string, w writer, from, to progress, owner string, expires time.Time) error {
	query, args := checkpointUpdate(name, w, from, to, owner, expires)
	res, err := ex.ExecContext(ctx, s.dialect.sql(query), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errFenced
	}
	return nil
}

// takeOver starts projectors afresh for a rebuild, in one transaction: their tables are
// emptied, their secondary indexes dropped (Rebuild puts them back at the end), and their rows go back to the start of the log under a new generation, leased to
// owner whoever held them. It returns the writer for each.
func (s *ReadStore) takeOver(ctx context.Context, ps []projector, owner string, ttl time.Duration, now func() time.Time) (map[string]writer, error) {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name()
	}
	if err := s.ensureStateRows(ctx, names); err != nil {
		return nil, err
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	writers := make(map[string]writer, len(ps))
	for _, p := range ps {
		// The row first: a runner writing this projector holds it until it commits, so the
		// tables are cleared after its last batch, never under it.
		if _, err := tx.ExecContext(ctx, s.dialect.sql(`UPDATE rm_projector_state
			SET generation = generation + 1, pos_commit = 0, pos_prepare = 0, events = 0, last_recorded_at = 0,
				lease_owner = ?, lease_expires = ?, updated_at = ?
			WHERE name = ?`), owner, now().Add(ttl).UnixMicro(), now().UnixMicro(), p.name()); err != nil {
			return nil, err
		}
		cp, err := s.readCheckpoint(ctx, tx, p.name())
		if err != nil {
			return nil, err
		}
		for _, t := range p.tables() {
			if _, err := tx.ExecContext(ctx, s.dialect.clearTable(t)); err != nil {
				return nil, err
			}
		}
		if err := s.dropIndexes(ctx, tx, p.tables()); err != nil {
			return nil, err
		}
		writers[p.name()] = writer{owner: owner, generation: cp.generation, leaseTTL: ttl, now: now}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	// A Runner of this process that ran them learns of the takeover only at its next write.
	for _, p := range ps {
		s.stopCaching(p.name())
	}
	return writers, nil
}

// errNoCheckpoint: the state row is missing, which ensureStateRows prevents.
var errNoCheckpoint = errors.New("projections: no state row")
