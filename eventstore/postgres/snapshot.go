package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
)

var (
	_ eventstore.Snapshots   = (*Store)(nil)
	_ eventstore.EventFinder = (*Store)(nil)
)

// LoadSnapshot returns stream's snapshot, if one was saved.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	snap := eventstore.Snapshot{Stream: stream}
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT version, event_id, schema, state FROM snapshots WHERE stream = $1`, stream).
		Scan(&version, &snap.EventID, &snap.Schema, &snap.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return snap, false, nil
	}
	if err != nil {
		return snap, false, wrapErr("load snapshot", err)
	}
	snap.Version = uint64(version)
	return snap, true, nil
}

// SaveSnapshot replaces stream's snapshot with snap unless the one kept is newer.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO snapshots (stream, version, event_id, schema, state) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version, event_id = excluded.event_id,
			schema = excluded.schema, state = excluded.state
		WHERE excluded.version >= snapshots.version OR excluded.schema <> snapshots.schema`,
		snap.Stream, int64(snap.Version), snap.EventID, snap.Schema, snap.State)
	if err != nil {
		return wrapErr("save snapshot", err)
	}
	return nil
}

// FindEvent returns the event of stream with id: one probe of events_stream_id_key.
func (s *Store) FindEvent(ctx context.Context, stream string, id uuid.UUID) (eventstore.Event, bool, error) {
	events, err := s.query(ctx, "find event", 1, nil, `SELECT `+eventColumns+` FROM events WHERE stream = $1 AND id = $2`, stream, id)
	if err != nil || len(events) == 0 {
		return eventstore.Event{}, false, err
	}
	return events[0], true, nil
}
