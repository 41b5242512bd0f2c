package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// ErrNotFound is what a query for one document answers when there is none.
var ErrNotFound = errors.New("projections: not found")

// ReadStore is the database holding the read models, on PostgreSQL or SQLite. It is safe for
// concurrent use.
type ReadStore struct {
	dialect dialect
	// dsn is what the store was opened with, so that Verify can open scratch space beside it.
	dsn string
	// reads serves queries. writes serves the other writes (leases, checkpoints, schema): on
	// SQLite one connection, so that they queue in Go instead of in SQLite's sleeping busy
	// handler; on PostgreSQL the same pool as reads, which projector batches use too.
	reads  *sql.DB
	writes *sql.DB
	// batches, on SQLite, is the connection projector batches commit on, which does not wait
	// for the write lock in SQLite's busy handler (see beginBatch); nil on PostgreSQL.
	batches *sql.DB

	// beforeCommit, set by tests, runs when a batch is written (on PostgreSQL, queued) and not
	// yet committed: an error there is a crash at the worst moment.
	beforeCommit func(projector string) error

	// sqlite queues the projectors' batches for a shared transaction, on SQLite.
	sqlite sqliteCommits

	// docs caches the documents some read routes answer, by projector (doccache.go).
	docs map[string]*docCache
	// variants holds, per projector, the one variant of its documents docs caches.
	variantsMu sync.Mutex
	variants   map[string]string
}

// sqliteBusyTimeoutMillis is how long a SQLite connection waits for the write lock another
// connection holds (the event store's writer, on a shared file) before failing.
const sqliteBusyTimeoutMillis = "10000"

// OpenReadStore opens the read store a DSN names, "sqlite:PATH" or "postgres://…", and
// creates or migrates the read model schema.
func OpenReadStore(ctx context.Context, dsn string) (*ReadStore, error) {
	var (
		s   *ReadStore
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn)
	default:
		return nil, errors.New("projections: read store DSN must be sqlite:PATH or postgres://…")
	}
	if err != nil {
		return nil, fmt.Errorf("projections: open read store: %w", err)
	}
	s.dsn = dsn
	s.docs = cachedProjectors()
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("projections: migrate read store: %w", err)
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string) (*ReadStore, error) {
	if path == "" {
		return nil, errors.New("sqlite: needs a file path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, err
	}
	fileDSN := func(params url.Values) string {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
		return u.String()
	}
	// IMMEDIATE takes the write lock at BEGIN: a projector transaction then never fails halfway
	// because another connection wrote first. NORMAL synchronous is enough in WAL mode: a
	// crash may lose the last commits, and the projector replays them from its checkpoint.
	writes, err := sql.Open("sqlite", fileDSN(url.Values{
		"_busy_timeout": {sqliteBusyTimeoutMillis},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, err
	}
	writes.SetMaxOpenConns(1)
	writes.SetMaxIdleConns(1)
	writes.SetConnMaxLifetime(0)
	writes.SetConnMaxIdleTime(0)
	if err := writes.PingContext(ctx); err != nil {
		writes.Close()
		return nil, err
	}
	batches, err := sql.Open("sqlite", fileDSN(url.Values{
		"_busy_timeout": {"0"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		writes.Close()
		return nil, err
	}
	batches.SetMaxOpenConns(1)
	batches.SetMaxIdleConns(1)
	batches.SetConnMaxLifetime(0)
	batches.SetConnMaxIdleTime(0)
	reads, err := sql.Open("sqlite", fileDSN(url.Values{
		"_busy_timeout": {sqliteBusyTimeoutMillis},
		"_query_only":   {"1"},
	}))
	if err != nil {
		writes.Close()
		batches.Close()
		return nil, err
	}
	reads.SetMaxOpenConns(8)
	reads.SetMaxIdleConns(8)
	return &ReadStore{dialect: dialect{postgres: false}, reads: reads, writes: writes, batches: batches}, nil
}

func openPostgres(dsn string) (*ReadStore, error) {
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	// Projectors send multi-row statements whose text changes with the number of rows; the
	// default mode would prepare (one more round trip) and cache each of those shapes.
	if !strings.Contains(dsn, "default_query_exec_mode") {
		config.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	// Read models are small enough to stay in memory, where an index lookup costs about what a
	// sequential read does. With the default cost of a random read, the planner scans a whole
	// table rather than look up the few hundred keys a batch touches, and a replay slows down
	// as the tables grow.
	if _, set := config.RuntimeParams["random_page_cost"]; !set {
		config.RuntimeParams["random_page_cost"] = "1.1"
	}
	// A projector's commit need not wait for the disk: a crash may then lose the last
	// batches, rows and checkpoint together (the log is written in order), and the projector
	// replays them; SQLite gets the same from synchronous=NORMAL in WAL mode. Set on the
	// connections rather than in each transaction, which cost a round trip per batch; the
	// other writes (leases, migrations) lose no more than that in a crash, and reads commit
	// nothing.
	if _, set := config.RuntimeParams["synchronous_commit"]; !set {
		config.RuntimeParams["synchronous_commit"] = "off"
	}
	db := stdlib.OpenDB(*config)
	db.SetMaxOpenConns(24)
	db.SetMaxIdleConns(12)
	return &ReadStore{dialect: dialect{postgres: true}, reads: db, writes: db}, nil
}

// Close closes the connections.
func (s *ReadStore) Close() error {
	if s.writes == s.reads {
		return s.reads.Close()
	}
	return errors.Join(s.batches.Close(), s.writes.Close(), s.reads.Close())
}

// Ping checks that the database answers, for a readiness probe.
func (s *ReadStore) Ping(ctx context.Context) error { return s.reads.PingContext(ctx) }

// beginWrite starts a projector transaction.
func (s *ReadStore) beginWrite(ctx context.Context) (*sql.Tx, error) {
	return s.writes.BeginTx(ctx, nil)
}

// readTx runs fn in a read-only transaction, so a document assembled from several queries
// comes from one snapshot.
func (s *ReadStore) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.reads.BeginTx(ctx, s.dialect.snapshotOptions())
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a read-only transaction has nothing to undo
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// dialect is every difference between the SQL sent to PostgreSQL and to SQLite. Everything
// else is written once, with ? placeholders.
type dialect struct{ postgres bool }

// sql rewrites ? placeholders into PostgreSQL's $n. Statements never hold a literal "?".
func (d dialect) sql(q string) string {
	if !d.postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(q)/4)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// keyType is the column type of identifiers that are sorted or compared: byte order on both
// databases, so lists and cursors order alike whatever the server's locale.
func (d dialect) keyType() string {
	if d.postgres {
		return `TEXT COLLATE "C"`
	}
	return "TEXT"
}

// clearTable empties a table for a rebuild.
func (d dialect) clearTable(table string) string {
	if d.postgres {
		return "TRUNCATE " + table
	}
	return "DELETE FROM " + table
}

// indexNamesQuery lists the indexes that exist.
func (d dialect) indexNamesQuery() string {
	if d.postgres {
		return "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
	}
	return "SELECT name FROM sqlite_master WHERE type = 'index'"
}

// snapshotOptions makes a read transaction see one snapshot. SQLite's transactions always do;
// PostgreSQL's default READ COMMITTED takes a snapshot per statement.
func (d dialect) snapshotOptions() *sql.TxOptions {
	if d.postgres {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return &sql.TxOptions{ReadOnly: true}
}
