package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

// raw is the baselines' side of an event store: plain SQL on the store's own database, with
// none of the store's work (no append function, no expected revision, no hash chain, no
// late-commit filter, no group commit). Writes go to raw_events, a table of the same shape as
// the store's events table (the same columns, constraints and indexes, copied from it), so
// that the two insert into the same kind of table on the same server.
type raw interface {
	// createTable creates raw_events beside the store's events table, unless it is there.
	createTable(ctx context.Context) error
	// insertOne inserts one row in a transaction of its own.
	insertOne(ctx context.Context, stream string, version int64, e eventstore.EventData) error
	// insertBatch inserts a row per event in one transaction, at consecutive versions.
	insertBatch(ctx context.Context, stream string, version int64, events []eventstore.EventData) error
	close()
}

// openRaw opens plain connections to the database of a stage's event store: as many as
// writers use at once. KurrentDB has no SQL beneath it, so its figures have no baseline.
func openRaw(ctx context.Context, st Stores, writers int) (raw, error) {
	if st.StreamPrefix != "" {
		return nil, nil
	}
	kind, err := stores.KindOf(st.EventsDSN)
	if err != nil {
		return nil, err
	}
	if kind == stores.SQLite {
		s, err := openSQLiteRaw(stores.SQLitePath(st.EventsDSN))
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	config, err := pgxpool.ParseConfig(st.EventsDSN)
	if err != nil {
		return nil, err
	}
	config.MaxConns = int32(writers)
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, err
	}
	return &postgresRaw{pool: pool}, nil
}

// withPoolSize sets pool_max_conns in a postgres:// DSN.
func withPoolSize(dsn string, n int) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

type postgresRaw struct{ pool *pgxpool.Pool }

func (p *postgresRaw) createTable(ctx context.Context) error {
	var exists bool
	if err := p.pool.QueryRow(ctx, `SELECT to_regclass('raw_events') IS NOT NULL`).Scan(&exists); err != nil || exists {
		return err
	}
	// LIKE copies the defaults too, so position would draw on the events table's sequence;
	// raw_events gets one of its own.
	_, err := p.pool.Exec(ctx, `
		CREATE TABLE raw_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
		CREATE SEQUENCE raw_events_position_seq OWNED BY raw_events.position;
		ALTER TABLE raw_events ALTER position SET DEFAULT nextval('raw_events_position_seq')`)
	return err
}

const postgresInsertSQL = `INSERT INTO raw_events (stream, version, id, type, data, metadata, recorded_at, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

func (p *postgresRaw) insertOne(ctx context.Context, stream string, version int64, e eventstore.EventData) error {
	_, err := p.pool.Exec(ctx, postgresInsertSQL, stream, version, e.ID, e.Type, e.Data,
		eventstore.EncodeMetadata(e.Metadata), time.Now(), randomHash())
	return err
}

// insertBatch sends the rows as arrays unnested by one statement: one round trip, as the
// store's append function takes.
func (p *postgresRaw) insertBatch(ctx context.Context, stream string, version int64, events []eventstore.EventData) error {
	n := len(events)
	versions, ids, types := make([]int64, n), make([][16]byte, n), make([]string, n)
	data, metadata, times, hashes := make([][]byte, n), make([][]byte, n), make([]time.Time, n), make([][]byte, n)
	now := time.Now()
	for i, e := range events {
		versions[i], ids[i], types[i], data[i] = version+int64(i), e.ID, e.Type, e.Data
		metadata[i], times[i], hashes[i] = eventstore.EncodeMetadata(e.Metadata), now, randomHash()
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO raw_events (stream, version, id, type, data, metadata, recorded_at, hash)
		SELECT $1, v, i, t, d, m, r, h
		FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bytea[], $6::bytea[], $7::timestamptz[], $8::bytea[]) AS u(v, i, t, d, m, r, h)`,
		stream, versions, ids, types, data, metadata, times, hashes)
	return err
}

func (p *postgresRaw) close() { p.pool.Close() }

// sqliteRaw writes through one connection with the pragmas the store's writer uses (WAL,
// synchronous FULL, IMMEDIATE transactions): SQLite has one writer at a time, so the
// baseline's clients queue for it as the store's appends queue for its writer.
type sqliteRaw struct {
	write, read *sql.DB
	insert      *sql.Stmt
}

func openSQLiteRaw(path string) (*sqliteRaw, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fileDSN := func(params url.Values) string {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
		return u.String()
	}
	write, err := sql.Open("sqlite", fileDSN(url.Values{
		"_busy_timeout": {"10000"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", fileDSN(url.Values{"_busy_timeout": {"10000"}, "_query_only": {"1"}}))
	if err != nil {
		write.Close()
		return nil, err
	}
	return &sqliteRaw{write: write, read: read}, nil
}

// eventsTableWord matches the events table's name, and the names of its indexes, in its DDL.
var eventsTableWord = regexp.MustCompile(`\bevents(_\w+)?\b`)

// createTable replays the events table's own DDL (table and indexes, as sqlite_master keeps
// them) under the name raw_events, so the shape is the store's whatever its migrations did.
// The store's triggers refuse updates and deletes and cost an insert nothing, so they stay
// behind.
func (s *sqliteRaw) createTable(ctx context.Context) error {
	var exists bool
	if err := s.write.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE name = 'raw_events'`).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if err := s.copyEventsTable(ctx); err != nil {
			return err
		}
	}
	var err error
	s.insert, err = s.write.PrepareContext(ctx, `INSERT INTO raw_events (stream, version, id, type, data, metadata, recorded_at, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	return err
}

func (s *sqliteRaw) copyEventsTable(ctx context.Context) error {
	rows, err := s.write.QueryContext(ctx, `SELECT sql FROM sqlite_master
		WHERE tbl_name = 'events' AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index', name`)
	if err != nil {
		return err
	}
	var ddl []string
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			rows.Close()
			return err
		}
		ddl = append(ddl, eventsTableWord.ReplaceAllString(stmt, "raw_events$1"))
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(ddl) == 0 {
		return fmt.Errorf("no events table to copy")
	}
	if _, err := s.write.ExecContext(ctx, strings.Join(ddl, ";\n")); err != nil {
		return fmt.Errorf("create raw_events: %w", err)
	}
	return nil
}

func (s *sqliteRaw) insertOne(ctx context.Context, stream string, version int64, e eventstore.EventData) error {
	return s.insertBatch(ctx, stream, version, []eventstore.EventData{e})
}

func (s *sqliteRaw) insertBatch(ctx context.Context, stream string, version int64, events []eventstore.EventData) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	stmt := tx.StmtContext(ctx, s.insert)
	now := time.Now().UnixMicro()
	for i, e := range events {
		if _, err := stmt.ExecContext(ctx, stream, version+int64(i), e.ID[:], e.Type, e.Data,
			eventstore.EncodeMetadata(e.Metadata), now, randomHash()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteRaw) close() {
	if s.insert != nil {
		s.insert.Close()
	}
	s.write.Close()
	s.read.Close()
}

// randomHash stands in for a chained hash: the same 32 bytes to store, none of the hashing.
func randomHash() []byte {
	h := make([]byte, 32)
	_, _ = rand.Read(h)
	return h
}
