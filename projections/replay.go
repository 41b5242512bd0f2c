package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// Errors Replay refuses a target with.
var (
	// ErrTargetNotEmpty: the target holds read models or checkpoints already; a replay would
	// replace them (ReplayOptions.Force).
	ErrTargetNotEmpty = errors.New("projections: the target read store is not empty")
	// ErrTargetLive: a runner holds a projector's lease in the target, so it is some server's
	// live read store; a replay is never written there.
	ErrTargetLive = errors.New("projections: the target read store is being projected into")
)

// ReplayOptions tunes Replay.
type ReplayOptions struct {
	// Force replaces what a non-empty target holds (never a live one's).
	Force bool
	// Progress is called as Rebuild calls it.
	Progress func(done, total int64)
}

// ReplayResult says what a replay covers.
type ReplayResult struct {
	AsOf time.Time
	// Position is the last event applied (zero if none), Events how many were.
	Position eventstore.Position
	Events   int64
	// LeftOut is the first event of the log recorded after AsOf, where the replay stopped;
	// nil when it reached the head of the log first.
	LeftOut *LeftOutEvent
}

// LeftOutEvent names an event by where it is.
type LeftOutEvent struct {
	Position   eventstore.Position
	Stream     string
	Version    uint64
	RecordedAt time.Time
}

// replaySealPrefix begins the lease owner a replay leaves on each projector of its target.
const replaySealPrefix = "replay as of "

// Replay builds every read model as it was at asOf into target, a read store other than the
// live one: the log is replayed in its global order up to, and not including, the first event
// recorded after asOf. Every event after that one is left out too, even one recorded earlier
// (clocks of different processes may disagree by a little, and the log's order is the order
// its appends committed in), so the replay is always a prefix of the log: a state the read
// models really passed through, which ?after= can name. Within a few milliseconds of asOf
// the cut may fall just before an event stamped at or before asOf.
//
// Replay refuses a target a runner is projecting into (ErrTargetLive) and, without
// opts.Force, one that holds anything (ErrTargetNotEmpty). It leaves each projector's lease
// held by "replay as of <asOf>" for ever, so that a server pointed at the target stands by
// instead of carrying the read models on to the head of the log; `projections rebuild` on the
// target takes them back.
func Replay(ctx context.Context, events eventstore.Store, target *ReadStore, asOf time.Time, opts ReplayOptions) (ReplayResult, error) {
	asOf = asOf.UTC()
	if err := target.CheckReplayTarget(ctx, opts.Force); err != nil {
		return ReplayResult{}, err
	}
	res, err := rebuildLog(ctx, events, target, nil, opts.Progress, rebuildLimits{recordedBy: asOf})
	if err != nil {
		return ReplayResult{}, err
	}
	if err := target.seal(ctx, replaySealPrefix+asOf.Format(time.RFC3339Nano)); err != nil {
		return ReplayResult{}, fmt.Errorf("projections: replay: %w", err)
	}
	out := ReplayResult{AsOf: asOf, Position: res.last, Events: res.events}
	if e := res.excluded; e != nil {
		out.LeftOut = &LeftOutEvent{Position: e.Position, Stream: e.Stream, Version: e.Version, RecordedAt: e.RecordedAt}
	}
	return out, nil
}

// ReplayedAsOf reports whether the store holds a replay (Replay sealed its projectors) and as
// of when.
func (s *ReadStore) ReplayedAsOf(ctx context.Context) (time.Time, bool, error) {
	var (
		asOf  time.Time
		found bool
	)
	err := queryRows(ctx, s.reads, s.dialect, "SELECT lease_owner FROM rm_projector_state WHERE lease_expires = ?",
		[]any{int64(math.MaxInt64)}, func(r *sql.Rows) error {
			var owner string
			if err := r.Scan(&owner); err != nil {
				return err
			}
			if at, ok := strings.CutPrefix(owner, replaySealPrefix); ok {
				t, err := time.Parse(time.RFC3339Nano, at)
				asOf, found = t, err == nil
			}
			return nil
		})
	return asOf, found, err
}

// CheckReplayTarget returns the error Replay would refuse the store with: ErrTargetLive if a
// runner holds a projector's lease in it, ErrTargetNotEmpty unless force if it holds any row or
// checkpoint.
func (s *ReadStore) CheckReplayTarget(ctx context.Context, force bool) error {
	var holders []string
	err := queryRows(ctx, s.reads, s.dialect, `SELECT name, lease_owner FROM rm_projector_state
		WHERE lease_owner <> '' AND lease_expires > ? AND lease_expires < ? ORDER BY name`,
		[]any{time.Now().UnixMicro(), int64(math.MaxInt64)}, func(r *sql.Rows) error {
			var name, owner string
			err := r.Scan(&name, &owner)
			holders = append(holders, name+" by "+owner)
			return err
		})
	if err != nil {
		return err
	}
	if len(holders) > 0 {
		return fmt.Errorf("%w: leases held (%s); it looks like a server's live read store", ErrTargetLive, strings.Join(holders, ", "))
	}
	if force {
		return nil
	}
	if asOf, replay, err := s.ReplayedAsOf(ctx); err != nil || replay {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: it holds a replay as of %s", ErrTargetNotEmpty, asOf.Format(time.RFC3339Nano))
	}
	checkpoints := 0
	err = queryRows(ctx, s.reads, s.dialect, "SELECT COUNT(*) FROM rm_projector_state WHERE events > 0", nil, func(r *sql.Rows) error {
		return r.Scan(&checkpoints)
	})
	if err != nil {
		return err
	}
	var tables []string
	for _, p := range allProjectors() {
		for _, t := range p.tables() {
			rows := 0
			if err := queryRows(ctx, s.reads, s.dialect, "SELECT 1 FROM "+t+" LIMIT 1", nil, func(*sql.Rows) error {
				rows++
				return nil
			}); err != nil {
				return err
			}
			if rows > 0 {
				tables = append(tables, t)
			}
		}
	}
	if checkpoints > 0 || len(tables) > 0 {
		return fmt.Errorf("%w: it holds %d projector checkpoints past the start of the log and rows in %d tables %v",
			ErrTargetNotEmpty, checkpoints, len(tables), tables)
	}
	return nil
}

// seal leaves every projector's lease to owner for ever, once a replay has released them.
func (s *ReadStore) seal(ctx context.Context, owner string) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	for _, name := range Names() {
		res, err := tx.ExecContext(ctx, s.dialect.sql(`UPDATE rm_projector_state SET lease_owner = ?, lease_expires = ?
			WHERE name = ? AND lease_owner = ''`), owner, int64(math.MaxInt64), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("projector %s was taken over by another process as the replay ended (%v)", name, err)
		}
	}
	return tx.Commit()
}
