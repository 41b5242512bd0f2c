package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// statements are prepared once per Store; database/sql prepares them again on each connection
// that runs them.
type statements struct {
	// on the write connection
	headAndID, findIDs, insert, storedIDs *sql.Stmt
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
		{write, &s.findIDs, `SELECT id, version FROM events
			WHERE stream = ? AND id IN (SELECT unhex(value) FROM json_each(?)) LIMIT 1`},
		{write, &s.headAndID, `SELECT (SELECT version FROM events WHERE stream = ?1 AND id = ?2), version, hash
			FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT 1`},
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
	for _, stmt := range []*sql.Stmt{s.headAndID, s.findIDs, s.insert, s.storedIDs, s.readStream, s.readAll, s.head} {
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
	// Streams are short and callers ask for all of one with a large limit.
	events, err := s.query(ctx, s.stmts.readStream, min(limit, 16), stream, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read %q from version %d: %w", stream, from, err)
	}
	return events, nil
}

// ReadAll returns up to limit events after position from. Every committed event can be
// returned: with one writer at a time, no commit can land behind one already visible.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	// A caller that pages through the log mostly gets full pages.
	return s.readAll(ctx, from, limit, min(limit, maxPrealloc))
}

// maxPrealloc bounds the room a read makes for the events it expects.
const maxPrealloc = 1024

// readAll is ReadAll making room for expect events up front: growing the slice row by row would
// allocate about as much again as the events themselves.
func (s *Store) readAll(ctx context.Context, from eventstore.Position, limit, expect int) ([]eventstore.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("eventstore/sqlite: read all: limit %d, want at least 1", limit)
	}
	if from.Commit > math.MaxInt64 {
		return nil, nil
	}
	events, err := s.query(ctx, s.stmts.readAll, expect, int64(from.Commit), limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: read all after %v: %w", from, err)
	}
	return events, nil
}

// Head is the position of the last committed event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p int64
	if err := s.stmts.head.QueryRowContext(ctx).Scan(&p); err != nil {
		return eventstore.Position{}, fmt.Errorf("eventstore/sqlite: head: %w", s.readError(ctx, err))
	}
	return eventstore.Position{Commit: uint64(p), Prepare: uint64(p)}, nil
}

func (s *Store) query(ctx context.Context, stmt *sql.Stmt, expect int, args ...any) ([]eventstore.Event, error) {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readError(ctx, err)
	}
	defer rows.Close()
	var (
		events = make([]eventstore.Event, 0, expect)
		row    eventRow
	)
	dest := row.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e, err := row.event()
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readError(ctx, err)
	}
	return events, nil
}

// eventRow holds one row's columns as scanned; one per query, so scanning allocates only
// what the Event keeps.
type eventRow struct {
	position, version, micros int64
	stream, eventType         string
	data                      []byte
	id, metadata, hash        sql.RawBytes
}

// dest lists the scan destinations in eventColumns order.
func (r *eventRow) dest() []any {
	return []any{&r.position, &r.stream, &r.version, &r.id, &r.eventType, &r.data, &r.metadata, &r.micros, &r.hash}
}

func (r *eventRow) event() (eventstore.Event, error) {
	e := eventstore.Event{
		Stream:     r.stream,
		Version:    uint64(r.version),
		Type:       r.eventType,
		Data:       r.data,
		RecordedAt: time.UnixMicro(r.micros).UTC(),
		Position:   eventstore.Position{Commit: uint64(r.position), Prepare: uint64(r.position)},
	}
	if len(r.id) != len(e.ID) || len(r.hash) != len(e.Hash) {
		return e, fmt.Errorf("event at position %d: id of %d bytes, hash of %d bytes", r.position, len(r.id), len(r.hash))
	}
	e.ID = uuid.UUID(r.id)
	e.Hash = eventstore.Hash(r.hash)
	m, err := decodeMetadata(r.metadata)
	if err != nil {
		return e, fmt.Errorf("event at position %d: metadata: %w", r.position, err)
	}
	e.Metadata = m
	return e, nil
}

// readError names why a read failed when the cause is the caller's context or Close, which the
// driver and database/sql report in their own words.
func (s *Store) readError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	select {
	case <-s.closing:
		return errClosed
	default:
		return err
	}
}

// decodeMetadata reads the canonical JSON that EncodeMetadata stores. Decoding it is most of the
// cost of reading an event, so the usual form (known keys, plain string values) is read
// directly; anything else, valid or not, goes through encoding/json.
func decodeMetadata(b []byte) (eventstore.Metadata, error) {
	var m eventstore.Metadata
	rest, ok := bytes.CutPrefix(b, []byte("{"))
	for first := true; ok && len(rest) > 0 && rest[0] != '}'; first = false {
		if !first {
			if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
				break
			}
		}
		var key, value string
		if key, rest, ok = cutString(rest); !ok {
			break
		}
		if rest, ok = bytes.CutPrefix(rest, []byte(":")); !ok {
			break
		}
		if value, rest, ok = cutString(rest); !ok {
			break
		}
		switch key {
		case "correlation_id":
			m.CorrelationID = value
		case "causation_id":
			m.CausationID = value
		case "idempotency_key":
			m.IdempotencyKey = value
		case "actor":
			m.Actor = value
		default:
			ok = false
		}
	}
	if !ok || string(rest) != "}" {
		return eventstore.DecodeMetadata(b)
	}
	return m, nil
}

// cutString reads a JSON string at the start of b that needs no unescaping: valid UTF-8 with
// no backslash or control character.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", b, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", b, false
	}
	raw := b[1 : 1+end]
	for _, c := range raw {
		if c < 0x20 || c == '\\' {
			return "", b, false
		}
	}
	if !utf8.Valid(raw) {
		return "", b, false
	}
	return string(raw), b[end+2:], true
}
