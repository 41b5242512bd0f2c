package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// statements are prepared once per Store; database/sql prepares them again on each connection
// that runs them.
type statements struct {
	// on the write connection
	findID, streamHead, insert, storedIDs *sql.Stmt
	// on the read pool
	readStream, readAll, head *sql.Stmt
}

const eventColumns = `position, stream, version, id, type, data, metadata, recorded_at, hash`

func prepare(ctx context.Context, write, read *sql.DB) (statements, error) {
	var s statements
	for _, p := range []struct {
		db   *sql.DB
		stmt **sql.Stmt
		sql  string
	}{
		{write, &s.findID, `SELECT version FROM events WHERE stream = ? AND id = ?`},
		{write, &s.streamHead, `SELECT version, hash FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1`},
		{write, &s.insert, `INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{write, &s.storedIDs, `SELECT id, version, position FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`},
		{read, &s.readStream, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`},
		{read, &s.readAll, `SELECT ` + eventColumns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`},
		{read, &s.head, `SELECT coalesce(max(position), 0) FROM events`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return s, errors.Join(fmt.Errorf("prepare %q: %w", p.sql, err), s.close())
		}
		*p.stmt = stmt
	}
	return s, nil
}

func (s statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.findID, s.streamHead, s.insert, s.storedIDs, s.readStream, s.readAll, s.head} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}

// ReadStream returns up to limit events of stream from version from on, oldest first.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("eventstore/sqlite: read %q: limit %d, want at least 1", stream, limit)
	}
	if from > math.MaxInt64 {
		return nil, nil
	}
	events, err := s.query(ctx, s.stmts.readStream, stream, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read %q from version %d: %w", stream, from, err)
	}
	return events, nil
}

// ReadAll returns up to limit events after position from. Every committed event can be
// returned: with one writer at a time, no commit can land behind one already visible.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("eventstore/sqlite: read all: limit %d, want at least 1", limit)
	}
	if from.Commit > math.MaxInt64 {
		return nil, nil
	}
	events, err := s.query(ctx, s.stmts.readAll, int64(from.Commit), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read all after %v: %w", from, err)
	}
	return events, nil
}

// Head is the position of the last committed event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p int64
	if err := s.stmts.head.QueryRowContext(ctx).Scan(&p); err != nil {
		return eventstore.Position{}, fmt.Errorf("eventstore/sqlite: head: %w", contextError(ctx, err))
	}
	return eventstore.Position{Commit: uint64(p), Prepare: uint64(p)}, nil
}

func (s *Store) query(ctx context.Context, stmt *sql.Stmt, args ...any) ([]eventstore.Event, error) {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, contextError(ctx, err)
	}
	defer rows.Close()
	var events []eventstore.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, contextError(ctx, err)
	}
	return events, nil
}

// emptyMetadata is EncodeMetadata's form of empty metadata, the common case, decoded without
// JSON.
var emptyMetadata = []byte(`{}`)

func scanEvent(rows *sql.Rows) (eventstore.Event, error) {
	var (
		e                         eventstore.Event
		position, version, micros int64
		id, metadata, hash        sql.RawBytes
	)
	if err := rows.Scan(&position, &e.Stream, &version, &id, &e.Type, &e.Data, &metadata, &micros, &hash); err != nil {
		return e, err
	}
	if len(id) != len(e.ID) || len(hash) != len(e.Hash) {
		return e, fmt.Errorf("event at position %d: id of %d bytes, hash of %d bytes", position, len(id), len(hash))
	}
	e.ID = uuid.UUID(id)
	e.Hash = eventstore.Hash(hash)
	if !bytes.Equal(metadata, emptyMetadata) {
		m, err := eventstore.DecodeMetadata(metadata)
		if err != nil {
			return e, fmt.Errorf("event at position %d: metadata: %w", position, err)
		}
		e.Metadata = m
	}
	e.Version = uint64(version)
	e.RecordedAt = time.UnixMicro(micros).UTC()
	e.Position = eventstore.Position{Commit: uint64(position), Prepare: uint64(position)}
	return e, nil
}

// contextError prefers the context's error when the context ended: the driver reports an
// interrupted statement in its own words.
func contextError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}
