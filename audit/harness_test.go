package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// backend opens fresh stores of one adapter, each with a raw connection to its database that
// can do what the port forbids: change and delete stored events.
type backend struct {
	name string
	open func(t *testing.T) (eventstore.Store, tamperer)
}

// tamperer runs SQL on the events table with the immutability triggers out of the way. The
// SQL uses ? placeholders.
type tamperer interface {
	exec(t *testing.T, query string, args ...any)
	queryData(t *testing.T, stream string, version uint64) []byte
}

var backends = []backend{
	{name: "sqlite", open: openSQLite},
	{name: "postgres", open: openPostgres},
}

// forEachBackend runs test once per adapter, as subtests named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

func openSQLite(t *testing.T) (eventstore.Store, tamperer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	store := openSQLiteAt(t, path)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open raw sqlite: %v", err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return store, sqliteTamperer{db: db}
}

// openSQLiteAt opens the SQLite event store in the file at path and closes it when t ends.
func openSQLiteAt(t *testing.T, path string) eventstore.Store {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

type sqliteTamperer struct{ db *sql.DB }

// exec drops the triggers that refuse UPDATE and DELETE, runs query and puts them back as the
// adapter's schema creates them, all in one transaction.
func (s sqliteTamperer) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	tx, err := s.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, stmt := range []string{
		`DROP TRIGGER events_refuse_update`,
		`DROP TRIGGER events_refuse_delete`,
		query,
		`CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
		BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END`,
		`CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
		BEGIN SELECT RAISE(ABORT, 'events are immutable: DELETE refused'); END`,
	} {
		var stmtArgs []any
		if stmt == query {
			stmtArgs = args
		}
		res, err := tx.ExecContext(t.Context(), stmt, stmtArgs...)
		if err != nil {
			t.Fatalf("tamper: %s: %v", stmt, err)
		}
		if stmt == query {
			mustAffectOne(t, res, query)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (s sqliteTamperer) queryData(t *testing.T, stream string, version uint64) []byte {
	t.Helper()
	var data []byte
	if err := s.db.QueryRowContext(t.Context(), `SELECT data FROM events WHERE stream = ? AND version = ?`, stream, version).Scan(&data); err != nil {
		t.Fatalf("read %s@%d: %v", stream, version, err)
	}
	return data
}

func mustAffectOne(t *testing.T, res sql.Result, query string) {
	t.Helper()
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tamper: %s affected %d rows (%v), want 1", query, n, err)
	}
}

func openPostgres(t *testing.T) (eventstore.Store, tamperer) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	store := openPostgresAt(t, dsn)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) })
	return store, pgTamperer{conn: conn}
}

// openPostgresAt opens the PostgreSQL event store at dsn and closes it when t ends.
func openPostgresAt(t *testing.T, dsn string) eventstore.Store {
	t.Helper()
	store, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

type pgTamperer struct{ conn *pgx.Conn }

// exec disables the triggers (the one that refuses UPDATE, DELETE and TRUNCATE) around query,
// in one transaction.
func (p pgTamperer) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	err := pgx.BeginFunc(t.Context(), p.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `ALTER TABLE events DISABLE TRIGGER ALL`); err != nil {
			return err
		}
		tag, err := tx.Exec(t.Context(), dollarPlaceholders(query), args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s affected %d rows, want 1", query, tag.RowsAffected())
		}
		_, err = tx.Exec(t.Context(), `ALTER TABLE events ENABLE TRIGGER ALL`)
		return err
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

func (p pgTamperer) queryData(t *testing.T, stream string, version uint64) []byte {
	t.Helper()
	var data []byte
	if err := p.conn.QueryRow(t.Context(), `SELECT data FROM events WHERE stream = $1 AND version = $2`, stream, int64(version)).Scan(&data); err != nil {
		t.Fatalf("read %s@%d: %v", stream, version, err)
	}
	return data
}

// dollarPlaceholders turns ? placeholders into PostgreSQL's $1, $2, …
func dollarPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// seedStreams are the streams seedLog writes to, in the proportions it writes them.
var seedStreams = []string{"order-1", "order-2", "order-3", "stock-SKU1", "payment-7", "customer-42", "invoice_series-INV"}

// seedLog appends n events spread over seedStreams, in batches of one to three events, so the
// global log interleaves the streams. It returns the log as the store holds it.
func seedLog(t *testing.T, store eventstore.Store, n int) []eventstore.Event {
	t.Helper()
	appendEvents(t, store, 0, n)
	return readLog(t, store)
}

// appendEvents appends n more events the way seedLog does, numbering them from first, and
// waits until the store's head covers them.
func appendEvents(t *testing.T, store eventstore.Store, first, n int) {
	t.Helper()
	var last eventstore.Position
	for i := first; i < first+n; {
		stream := seedStreams[(i*5+i/3)%len(seedStreams)]
		batch := make([]eventstore.EventData, 0, 3)
		for j := 0; j < 1+i%3 && i < first+n; j++ {
			batch = append(batch, eventstore.EventData{
				ID:   uuid.New(),
				Type: fmt.Sprintf("Seeded%d.v1", i%4),
				Data: fmt.Appendf(nil, `{"n":%d,"stream":%q,"note":"café <&> \u00e9"}`, i, stream),
				Metadata: eventstore.Metadata{
					CorrelationID: fmt.Sprintf("corr-%d", i/10), Actor: "seed",
				},
			})
			i++
		}
		res, err := store.Append(t.Context(), stream, eventstore.Any(), batch...)
		if err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
		last = res.Position
	}
	waitForHead(t, store, last)
}

// waitForHead waits until the store's head is at or after p. PostgreSQL holds back an event
// while any older transaction on the server still runs (other tests run beside these), so a
// head taken right after an append may not cover it yet.
func waitForHead(t *testing.T, store eventstore.Store, p eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		head, err := store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if head.Compare(p) >= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("head stuck at %s, want %s", head, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readLog reads the whole log in global order, up to the head.
func readLog(t *testing.T, store eventstore.Store) []eventstore.Event {
	t.Helper()
	head, err := store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var all []eventstore.Event
	for from := (eventstore.Position{}); from.Compare(head) < 0; {
		events, err := store.ReadAll(t.Context(), from, 1000)
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		if len(events) == 0 {
			t.Fatalf("read all: nothing after %s, head %s", from, head)
		}
		all = append(all, events...)
		from = events[len(events)-1].Position
	}
	return all
}

// eventOf finds stream@version in a log read with readLog.
func eventOf(t *testing.T, log []eventstore.Event, stream string, version uint64) eventstore.Event {
	t.Helper()
	for _, e := range log {
		if e.Stream == stream && e.Version == version {
			return e
		}
	}
	t.Fatalf("no event %s@%d in the log", stream, version)
	return eventstore.Event{}
}

// lastVersion is the last version of stream in log.
func lastVersion(log []eventstore.Event, stream string) uint64 {
	var last uint64
	for _, e := range log {
		if e.Stream == stream {
			last = e.Version
		}
	}
	return last
}
