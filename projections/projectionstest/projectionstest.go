package projectionstest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/pgtest"
	"github.com/orderledger/orderledger/projections"
)

// Env is an event store and a read store in the same database.
type Env struct {
	Backend string // "sqlite" or "postgres"
	Store   eventstore.Store
	Read    *projections.ReadStore
	// ReadDSN opens another ReadStore on the same database.
	ReadDSN string
}

// Backends runs fn as a subtest on SQLite and on PostgreSQL (skipped, saying why, when no
// server is reachable outside CI).
func Backends(t *testing.T, fn func(t *testing.T, env *Env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres(t)) })
}

// OpenSQLite opens both stores on one file in a temporary directory.
func OpenSQLite(t testing.TB) *Env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orderledger.db")
	store, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open sqlite event store: %v", err)
	}
	return open(t, "sqlite", store, "sqlite:"+path)
}

// OpenPostgres opens both stores on a database of their own.
func OpenPostgres(t testing.TB) *Env {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("open postgres event store: %v", err)
	}
	return open(t, "postgres", store, dsn)
}

func open(t testing.TB, backend string, store eventstore.Store, readDSN string) *Env {
	t.Cleanup(func() { store.Close() })
	read, err := projections.OpenReadStore(t.Context(), readDSN)
	if err != nil {
		t.Fatalf("open read store: %v", err)
	}
	t.Cleanup(func() { read.Close() })
	return &Env{Backend: backend, Store: store, Read: read, ReadDSN: readDSN}
}

// Append appends records in order, each run of consecutive records of one stream in one
// append, and returns the position of the last.
func Append(t testing.TB, store eventstore.Store, records []historygen.Record) eventstore.Position {
	t.Helper()
	return appendRuns(t, store, records, false)
}

// AppendAsRecorded is Append with every event recorded at the time it carries (placed_at,
// received_at…), as if the write side had decided it then, so that time travel over the
// history can be tested at known instants.
func AppendAsRecorded(t testing.TB, store eventstore.Store, records []historygen.Record) eventstore.Position {
	t.Helper()
	return appendRuns(t, store, records, true)
}

func appendRuns(t testing.TB, store eventstore.Store, records []historygen.Record, asRecorded bool) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	for len(records) > 0 {
		n := 1
		for n < len(records) && records[n].Stream == records[0].Stream && n < 100 {
			n++
		}
		batch := make([]eventstore.EventData, n)
		for i, r := range records[:n] {
			batch[i] = Encode(t, r.Event)
			if asRecorded {
				batch[i].RecordedAt = EventTime(r.Event)
			}
		}
		res, err := store.Append(t.Context(), records[0].Stream, eventstore.Any(), batch...)
		if err != nil {
			t.Fatalf("append to %s: %v", records[0].Stream, err)
		}
		last = res.Position
		records = records[n:]
	}
	return last
}

// EventTime is the time an event carries: every domain event has one time field, the instant
// it was decided at.
func EventTime(e domain.Event) time.Time {
	v := reflect.ValueOf(e)
	for i := range v.NumField() {
		if at, ok := v.Field(i).Interface().(time.Time); ok {
			return at
		}
	}
	panic(fmt.Sprintf("event %T carries no time", e))
}

// Encode makes a domain event ready to append, with a fresh ID.
func Encode(t testing.TB, e domain.Event) eventstore.EventData {
	t.Helper()
	typ, data, err := domain.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: data}
}

// StartRunner runs a Runner, logging to the test's output, until the test ends.
func StartRunner(t testing.TB, env *Env, opts ...projections.Option) *projections.Runner {
	t.Helper()
	opts = append([]projections.Option{projections.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))}, opts...)
	r, err := projections.NewRunner(env.Store, env.Read, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	return r
}

// CatchUp waits until the runner's projectors have read the log up to pos.
func CatchUp(t testing.TB, r *projections.Runner, pos eventstore.Position, projectors ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos, projectors...); err != nil {
		t.Fatalf("projectors did not reach %s: %v\nstatus: %+v", pos, err, r.Status())
	}
}
