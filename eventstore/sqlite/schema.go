package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// component is this package's row in schema_migrations; other packages (the projections) keep
// their own rows in the same table, possibly in the same file.
const component = "eventstore"

// migrations[i] brings the schema from version i to version i+1. Released entries never change.
var migrations = []string{
	// 1: the log. position is the rowid, which a single writer hands out in commit order.
	// recorded_at is microseconds since the Unix epoch; metadata is eventstore.EncodeMetadata's
	// bytes, which the hash covers. The triggers make the log append-only for every connection.
	`CREATE TABLE events (
		position    INTEGER PRIMARY KEY,
		stream      TEXT    NOT NULL,
		version     INTEGER NOT NULL CHECK (version >= 0),
		id          BLOB    NOT NULL CHECK (length(id) = 16),
		type        TEXT    NOT NULL,
		data        BLOB    NOT NULL,
		metadata    BLOB    NOT NULL,
		recorded_at INTEGER NOT NULL,
		hash        BLOB    NOT NULL CHECK (length(hash) = 32),
		UNIQUE (stream, version)
	) STRICT;
	CREATE UNIQUE INDEX events_stream_id ON events (stream, id);
	CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
	BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;
	CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
	BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END;`,
	// 2: snapshots of long streams' folded state, beside the log and outside its hash chains
	// (see eventstore.Snapshot): one row per stream, replaced as the stream grows.
	`CREATE TABLE snapshots (
		stream   TEXT    PRIMARY KEY,
		version  INTEGER NOT NULL CHECK (version >= 0),
		event_id BLOB    NOT NULL CHECK (length(event_id) = 16),
		schema   TEXT    NOT NULL,
		state    BLOB    NOT NULL
	) STRICT;`,
}

// migrate creates or upgrades the schema in one write transaction, so that processes opening
// the same file at once migrate it once.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, component).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("migrate: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: the %s schema is at version %d, newer than this build knows (%d)", component, version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", component, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, len(migrations)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
