package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

var (
	_ eventstore.Snapshots   = (*Store)(nil)
	_ eventstore.EventFinder = (*Store)(nil)
)

// LoadSnapshot returns stream's snapshot, if one was saved.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	snap := eventstore.Snapshot{Stream: stream}
	var (
		version int64
		id      []byte
	)
	err := s.read.QueryRowContext(ctx, `SELECT version, event_id, schema, state FROM snapshots WHERE stream = ?`, stream).
		Scan(&version, &id, &snap.Schema, &snap.State)
	if errors.Is(err, sql.ErrNoRows) {
		return snap, false, nil
	}
	if err != nil {
		return snap, false, fmt.Errorf("eventstore/sqlite: load the snapshot of %q: %w", stream, s.readError(ctx, err))
	}
	snap.Version = uint64(version)
	copy(snap.EventID[:], id)
	return snap, true, nil
}

// SaveSnapshot replaces stream's snapshot with snap unless the one kept is newer. It writes
// through the write connection, between the writer's group commits.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO snapshots (stream, version, event_id, schema, state) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version, event_id = excluded.event_id,
			schema = excluded.schema, state = excluded.state
		WHERE excluded.version >= snapshots.version OR excluded.schema <> snapshots.schema`,
		snap.Stream, int64(snap.Version), snap.EventID[:], snap.Schema, snap.State)
	if err != nil {
		return fmt.Errorf("eventstore/sqlite: save the snapshot of %q: %w", snap.Stream, err)
	}
	return nil
}

// FindEvent returns the event of stream with id, by the index that keeps an ID once per stream.
func (s *Store) FindEvent(ctx context.Context, stream string, id uuid.UUID) (eventstore.Event, bool, error) {
	stmt, err := s.read.PrepareContext(ctx, `SELECT `+eventColumns+` FROM events WHERE stream = ? AND id = ?`)
	if err != nil {
		return eventstore.Event{}, false, fmt.Errorf("eventstore/sqlite: find event %s in %q: %w", id, stream, s.readError(ctx, err))
	}
	defer stmt.Close()
	events, err := s.query(ctx, stmt, 1, stream, id[:])
	if err != nil {
		return eventstore.Event{}, false, fmt.Errorf("eventstore/sqlite: find event %s in %q: %w", id, stream, err)
	}
	if len(events) == 0 {
		return eventstore.Event{}, false, nil
	}
	return events[0], true, nil
}
