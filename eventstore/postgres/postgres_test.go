package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

func event(eventType, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: eventType, Data: []byte(data)}
}

func mustAppend(t *testing.T, s *Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, events...)
	if err != nil {
		t.Fatalf("append to %q: %v", stream, err)
	}
	return res
}

// TestSQLHashEqualsGoHash checks orderledger_append's SQL chain against eventstore.ComputeHash
// on the inputs most likely to expose a difference in the bytes hashed.
func TestSQLHashEqualsGoHash(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()

	// The largest event one append takes beside the small second event each case appends with
	// it: a JSON string of 'x' between quotes.
	bigMeta := eventstore.Metadata{CorrelationID: "c", CausationID: "d", IdempotencyKey: "k", Actor: "a"}
	big := make([]byte, eventstore.MaxAppendSize-eventstore.AppendSize(eventstore.EventData{Type: "Big.v1", Metadata: bigMeta})-
		eventstore.AppendSize(event("Next.v1", `{"n":2}`)))
	for i := range big {
		big[i] = 'x'
	}
	big[0], big[len(big)-1] = '"', '"'

	cases := []struct {
		name   string
		stream string
		event  eventstore.EventData
	}{
		{"non-ASCII", "order-Ωmega-日本-🦀", eventstore.EventData{ID: uuid.New(), Type: "Bestellung.Aufgegeben.ü.v1",
			Data:     []byte(`{"name":"Zoë 東京 🦀","note":"\u00e9"}`),
			Metadata: eventstore.Metadata{CorrelationID: "korrelation-ä", Actor: "José"}}},
		{"empty metadata", "order-empty", eventstore.EventData{ID: uuid.New(), Type: "T.v1", Data: []byte(`{}`)}},
		{"largest data", "order-big", eventstore.EventData{ID: uuid.New(), Type: "Big.v1", Data: big, Metadata: bigMeta}},
		{"recorded before 1970", "order-old", eventstore.EventData{ID: uuid.New(), Type: "Old.v1", Data: []byte(`[1,2]`),
			RecordedAt: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.FixedZone("x", -5*3600))}},
		{"recorded with nanoseconds", "order-ns", eventstore.EventData{ID: uuid.New(), Type: "Ns.v1", Data: []byte(`null`),
			RecordedAt: time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A second event chains onto the first hash, not onto zero bytes.
			second := event("Next.v1", `{"n":2}`)
			// One at a time (orderledger_append_one) …
			first := mustAppend(t, s, c.stream, eventstore.NoStream(), c.event)
			mustAppend(t, s, c.stream, eventstore.Exact(first.Version), second)
			checkChain(t, s, c.stream, []eventstore.EventData{c.event, second})
			// … and as one batch (orderledger_append), in a stream of its own.
			mustAppend(t, s, c.stream+"/batch", eventstore.NoStream(), c.event, second)
			checkChain(t, s, c.stream+"/batch", []eventstore.EventData{c.event, second})
		})
	}

	// Version 2^31+5 cannot be reached by appending; plant a predecessor at 2^31+4 and let the
	// function chain onto it.
	t.Run("version above 2^31", func(t *testing.T) {
		const stream = "order-tall"
		const planted = 1<<31 + 4
		prev := eventstore.Hash{1, 2, 3, 4, 5}
		conn := connect(t, s)
		if _, err := conn.Exec(ctx, `INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
			VALUES ($1, $2, $3, 'Planted.v1', '{}', '{}', now(), $4)`, stream, planted, uuid.New(), prev[:]); err != nil {
			t.Fatal(err)
		}
		one := event("Tall.v1", `{"tall":true}`)
		batch := []eventstore.EventData{event("Taller.v1", `{"n":1}`), event("Taller.v1", `{"n":2}`)}
		if res := mustAppend(t, s, stream, eventstore.Exact(planted), one); res.Version != planted+1 {
			t.Fatalf("appended at version %d, want %d", res.Version, planted+1)
		}
		if res := mustAppend(t, s, stream, eventstore.Exact(planted+1), batch...); res.Version != planted+3 {
			t.Fatalf("batch appended up to version %d, want %d", res.Version, planted+3)
		}
		got, err := s.ReadStream(ctx, stream, planted+1, 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("read back: %v, %d events", err, len(got))
		}
		for i, e := range append([]eventstore.EventData{one}, batch...) {
			want := eventstore.ComputeHash(prev, stream, uint64(planted+1+i), e.ID, e.Type, got[i].RecordedAt, e.Metadata, e.Data)
			if got[i].Hash != want {
				t.Fatalf("version %d: SQL hash %s, Go hash %s", planted+1+i, got[i].Hash, want)
			}
			prev = want
		}
	})
}

// checkChain reads stream back and checks every hash against the Go computation from what was
// appended (not from what was read, so a field stored wrongly fails too).
func checkChain(t *testing.T, s *Store, stream string, appended []eventstore.EventData) {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(appended) {
		t.Fatalf("read %d events, appended %d", len(got), len(appended))
	}
	var prev eventstore.Hash
	for i, e := range appended {
		if !bytes.Equal(got[i].Data, e.Data) || got[i].Type != e.Type || got[i].Metadata != e.Metadata {
			t.Fatalf("version %d is not stored byte for byte", i)
		}
		if !e.RecordedAt.IsZero() && !got[i].RecordedAt.Equal(eventstore.NormalizeTime(e.RecordedAt)) {
			t.Fatalf("version %d recorded at %v, want %v", i, got[i].RecordedAt, eventstore.NormalizeTime(e.RecordedAt))
		}
		want := eventstore.ComputeHash(prev, stream, uint64(i), e.ID, e.Type, got[i].RecordedAt, e.Metadata, e.Data)
		if got[i].Hash != want {
			t.Fatalf("version %d: SQL hash %s, Go hash %s", i, got[i].Hash, want)
		}
		prev = want
	}
}

func TestMigrationIsIdempotent(t *testing.T) {
	t.Run("open twice", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		first := openStore(t, dsn)
		mustAppend(t, first, "order-1", eventstore.NoStream(), event("A.v1", `{}`))
		second := openStore(t, dsn)
		got, err := second.ReadStream(t.Context(), "order-1", 0, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("second open reads %d events, %v; want the one appended", len(got), err)
		}
		checkSchemaVersion(t, second)
	})
	t.Run("concurrent opens", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		const opens = 4
		errs := make(chan error, opens)
		var wg sync.WaitGroup
		for range opens {
			wg.Go(func() {
				s, err := Open(t.Context(), dsn)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent open: %v", err)
			}
		}
		checkSchemaVersion(t, openStore(t, dsn))
	})
	t.Run("shares schema_migrations", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		s := openStore(t, dsn)
		conn := connect(t, s)
		if _, err := conn.Exec(t.Context(), "INSERT INTO schema_migrations VALUES ('projections', 7)"); err != nil {
			t.Fatal(err)
		}
		openStore(t, dsn)
		var v int
		if err := conn.QueryRow(t.Context(), "SELECT version FROM schema_migrations WHERE component = 'projections'").Scan(&v); err != nil || v != 7 {
			t.Fatalf("another component's row reads %d, %v after Open; want it untouched at 7", v, err)
		}
	})
	t.Run("refuses a newer schema", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		conn := connect(t, openStore(t, dsn))
		if _, err := conn.Exec(t.Context(), "UPDATE schema_migrations SET version = version + 1 WHERE component = $1", schemaComponent); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(t.Context(), dsn); err == nil {
			_ = s.Close()
			t.Fatal("Open accepted a schema newer than it knows")
		}
	})
}

func checkSchemaVersion(t *testing.T, s *Store) {
	t.Helper()
	var v, rows int
	err := connect(t, s).QueryRow(t.Context(),
		"SELECT max(version), count(*) FROM schema_migrations WHERE component = $1", schemaComponent).Scan(&v, &rows)
	if err != nil || v != len(migrations) || rows != 1 {
		t.Fatalf("schema_migrations: version %d in %d rows, %v; want version %d in one row", v, rows, err, len(migrations))
	}
}

func TestEventsAreImmutable(t *testing.T) {
	s := newStore(t)
	e := event("A.v1", `{"a":1}`)
	mustAppend(t, s, "order-1", eventstore.NoStream(), e)
	conn := connect(t, s)
	for _, stmt := range []string{
		"UPDATE events SET data = '{}'",
		"UPDATE events SET type = 'B.v1' WHERE false",
		"DELETE FROM events",
		"TRUNCATE events",
	} {
		_, err := conn.Exec(t.Context(), stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "OLIMM" {
			t.Errorf("%s: %v, want the trigger's OLIMM error", stmt, err)
		}
	}
	got, err := s.ReadStream(t.Context(), "order-1", 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Data) != `{"a":1}` {
		t.Fatalf("after the refused changes the stream reads %v, %v", got, err)
	}
}

// TestNotifyWakesAnotherStore: a subscriber in another Store (another pool, as in another
// process) follows appends at once although its safety poll would wait an hour.
func TestNotifyWakesAnotherStore(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	writer := openStore(t, dsn)
	reader := openStore(t, dsn, WithSafetyPoll(time.Hour))

	delivered := make(chan eventstore.Event, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- reader.Subscribe(ctx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				delivered <- e
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v, want context.Canceled", err)
		}
	}()

	waitListening(t, writer)
	// Several appends one after the other: the first could ride on the wake-up the listener
	// gives when it starts, the later ones only on NOTIFY.
	for i := range 4 {
		e := event("A.v1", fmt.Sprintf(`{"n":%d}`, i))
		mustAppend(t, writer, "order-1", eventstore.Any(), e)
		select {
		case got := <-delivered:
			if got.ID != e.ID {
				t.Fatalf("delivered %s, want %s", got.ID, e.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("append %d not delivered within 10s: NOTIFY did not wake the other store", i)
		}
	}
}

// TestListenerReconnects: when the listening connection is killed, the subscription listens
// again and keeps following another store's appends without waiting for its safety poll.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	writer := openStore(t, dsn)
	reader := openStore(t, dsn, WithSafetyPoll(time.Hour))
	delivered := make(chan eventstore.Event, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		_ = reader.Subscribe(ctx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				delivered <- e
			}
			return nil
		})
	}()

	killed := waitListening(t, writer)
	conn := connect(t, writer)
	if _, err := conn.Exec(t.Context(), "SELECT pg_terminate_backend($1)", killed); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for waitListening(t, writer) == killed {
		if time.Now().After(deadline) {
			t.Fatal("the killed listener was not replaced within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		e := event("A.v1", fmt.Sprintf(`{"n":%d}`, i))
		mustAppend(t, writer, "order-1", eventstore.Any(), e)
		select {
		case got := <-delivered:
			if got.ID != e.ID {
				t.Fatalf("delivered %s, want %s", got.ID, e.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("append %d not delivered within 10s of the listener reconnecting", i)
		}
	}
}

// waitListening waits until a connection to s's database listens, and returns its backend pid.
func waitListening(t *testing.T, s *Store) (pid uint32) {
	t.Helper()
	conn := connect(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := conn.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN `+notifyChannel+`' AND state = 'idle'`).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection listens after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUniqueViolationIsWrongExpectedRevision: a row inserted behind orderledger_append's
// back, by a transaction that commits while the append waits on the unique index, makes the
// append fail as a lost race.
func TestUniqueViolationIsWrongExpectedRevision(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	conn := connect(t, s)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash)
		VALUES ('order-1', 0, $1, 'Sneaky.v1', '{}', '{}', now(), '\x00')`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	appendErr := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "order-1", eventstore.NoStream(), event("A.v1", `{}`))
		appendErr <- err
	}()
	waitBlocked(t, s)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-appendErr; !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Fatalf("append racing a committed insert: %v, want ErrWrongExpectedRevision", err)
	}
}

// waitBlocked waits until a connection to s's database waits for a lock.
func waitBlocked(t *testing.T, s *Store) {
	t.Helper()
	conn := connect(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing waits for a lock after 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestConcurrentAppendsToOneStream: writers racing on one stream with Any all succeed, in a
// gapless chain; writers racing with the same exact revision have exactly one winner.
func TestConcurrentAppendsToOneStream(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append(ctx, "stock-SKU1", eventstore.Any(), event("Received.v1", `{"q":1}`)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append with Any: %v", err)
	}
	got, err := s.ReadStream(ctx, "stock-SKU1", 0, 1000)
	if err != nil || len(got) != writers*each {
		t.Fatalf("read %d events, %v; want %d", len(got), err, writers*each)
	}
	var prev eventstore.Hash
	for i, e := range got {
		if e.Version != uint64(i) || e.Recompute(prev) != e.Hash {
			t.Fatalf("event %d: version %d, hash chain holds %v", i, e.Version, e.Recompute(prev) == e.Hash)
		}
		prev = e.Hash
	}

	var wins, conflicts int
	var mu sync.Mutex
	for range writers {
		wg.Go(func() {
			_, err := s.Append(ctx, "stock-SKU1", eventstore.Exact(writers*each-1), event("Reserved.v1", `{}`))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, eventstore.ErrWrongExpectedRevision):
				conflicts++
			default:
				t.Errorf("append with an exact revision: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("%d wins and %d conflicts, want 1 and %d", wins, conflicts, writers-1)
	}
}

// TestLateCommit: an append that commits after a later one still reaches readers, before it,
// and nothing is read past it while it is open.
func TestLateCommit(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	late := event("Late.v1", `{}`)
	commit, rollback, err := beginAppend(ctx, s, "order-late", eventstore.NoStream(), late)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rollback() }()
	early := event("Early.v1", `{}`)
	mustAppend(t, s, "order-early", eventstore.NoStream(), early)

	delivered := make(chan eventstore.Event, 4)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = s.Subscribe(subCtx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				delivered <- e
			}
			return nil
		})
	}()

	if got, err := s.ReadAll(ctx, eventstore.Position{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll with an older append open: %d events, %v; want none yet", len(got), err)
	}
	if head, err := s.Head(ctx); err != nil || !head.IsZero() {
		t.Fatalf("Head with an older append open: %v, %v; want zero", head, err)
	}
	select {
	case e := <-delivered:
		t.Fatalf("subscriber got %s while an older append was open", e.Type)
	case <-time.After(50 * time.Millisecond):
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []eventstore.EventData{late, early} {
		select {
		case e := <-delivered:
			if e.ID != want.ID {
				t.Fatalf("subscriber got %s, want %s first", e.Type, want.Type)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber did not get %s within 10s", want.Type)
		}
	}
}

// TestHeldBackByAnotherTransaction: a transaction that is not an append (it will never notify)
// holds events back; the subscriber gets them soon after it ends, not at the safety poll.
func TestHeldBackByAnotherTransaction(t *testing.T) {
	s := newStore(t, WithSafetyPoll(time.Hour))
	ctx := t.Context()
	conn := connect(t, s)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Taking a transaction id makes it hold back every later commit.
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	delivered := make(chan eventstore.Event, 4)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = s.Subscribe(subCtx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				delivered <- e
			}
			return nil
		})
	}()
	e := event("A.v1", `{}`)
	mustAppend(t, s, "order-1", eventstore.NoStream(), e)
	time.Sleep(20 * time.Millisecond)
	select {
	case <-delivered:
		t.Fatal("delivered while an older transaction was open")
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-delivered:
		if got.ID != e.ID {
			t.Fatalf("delivered %s, want %s", got.ID, e.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered within 10s of the blocking transaction ending")
	}
}

// TestRetryAndDuplicates covers the retry rules orderledger_append enforces in SQL.
func TestRetryAndDuplicates(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	a, b, c := event("A.v1", `{}`), event("B.v1", `{}`), event("C.v1", `{}`)
	first := mustAppend(t, s, "order-1", eventstore.NoStream(), a, b)
	retried := mustAppend(t, s, "order-1", eventstore.NoStream(), a, b)
	if first.Retried || !retried.Retried || retried.Version != first.Version || retried.Position != first.Position {
		t.Fatalf("retry reports %+v, the append reported %+v", retried, first)
	}
	for _, batch := range [][]eventstore.EventData{{a, c}, {c, b}, {a, b, c}} {
		if _, err := s.Append(ctx, "order-1", eventstore.Any(), batch...); !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Errorf("batch %s: %v, want ErrDuplicateEventID", typesOf(batch), err)
		}
	}
	// The same id in another stream is another event.
	mustAppend(t, s, "order-2", eventstore.NoStream(), a)
	if got, _ := s.ReadStream(ctx, "order-1", 0, 10); len(got) != 2 {
		t.Fatalf("order-1 holds %d events, want 2", len(got))
	}
}

func typesOf(events []eventstore.EventData) string {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	return strings.Join(types, ",")
}

// TestOtherDatabasesDoNotHoldBackReads: a transaction open in another database of the same
// server cannot write here, so it holds nothing back.
func TestOtherDatabasesDoNotHoldBackReads(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	other := openStore(t, pgtest.NewDatabase(t))
	conn := connect(t, other)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	res := mustAppend(t, s, "order-1", eventstore.NoStream(), event("A.v1", `{}`))
	if head, err := s.Head(ctx); err != nil || head != res.Position {
		t.Fatalf("Head %v, %v with a transaction open in another database; want %v", head, err, res.Position)
	}
	if got, err := s.ReadAll(ctx, eventstore.Position{}, 10); err != nil || len(got) != 1 {
		t.Fatalf("ReadAll: %d events, %v with a transaction open in another database; want 1", len(got), err)
	}
}

// TestFollowingProbesByIndex: a subscriber reads after its position, and asks whether events
// are held back after every read that came back empty, many times a second while appends go
// on; Head is asked as often by those waiting for the log. PostgreSQL switches a statement
// prepared once and run again to a generic plan, made without knowing that the events after a
// subscriber's position are the last few of the table; that plan must still look them up in
// the primary key, not scan the whole log.
func TestFollowingProbesByIndex(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var last eventstore.AppendResult
	for i := range 20 {
		last = mustAppend(t, s, "order-"+strconv.Itoa(i), eventstore.NoStream(), event("A.v1", `{}`))
	}
	from := last.Position
	for _, q := range []struct {
		name string
		sql  string
		args []any
	}{
		{"the held-back check", heldBackSQL, []any{from.Commit, clampPosition(from.Prepare)}},
		{"ReadAll", readAllSQL, []any{s.databaseOID, from.Commit, clampPosition(from.Prepare), subscribeBatch}},
		{"Head", headSQL, []any{s.databaseOID}},
	} {
		tx, err := connect(t, s).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 { // past the five custom plans after which a generic one may be chosen
			rows, err := tx.Query(ctx, q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
		}
		var scans int64
		if err := tx.QueryRow(ctx, "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'events'").Scan(&scans); err != nil {
			t.Fatal(err)
		}
		if scans != 0 {
			t.Errorf("%s scanned events sequentially %d times", q.name, scans)
		}
		_ = tx.Rollback(ctx)
	}
}

// TestReadsKeepUpWithAppendsBesideABusyDatabase: while another database on the server commits
// short transactions from several connections, Head and ReadAll right after an append show
// it. One of those transactions ending between a read's snapshot and its listing of backends
// holds the read's horizon back (see horizonCTE); the read is then asked again, so it does
// not trail the append (before, Head trailed it 6 to 28 times in 400 and ReadAll 12 to 14).
func TestReadsKeepUpWithAppendsBesideABusyDatabase(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	other, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, `CREATE TABLE busy (n bigint)`); err != nil {
		t.Fatal(err)
	}
	other.Close(ctx)
	busy, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 6 {
		conn, err := pgx.Connect(ctx, other.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close(context.WithoutCancel(busy))
			for busy.Err() == nil {
				_, _ = conn.Exec(busy, `INSERT INTO busy VALUES (1)`)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	const appends = 400
	var headBehind, readBehind int
	var last eventstore.Position
	for i := range appends {
		res := mustAppend(t, s, "busy-"+strconv.Itoa(i%7), eventstore.Any(), event("Busy.v1", `{}`))
		if h, err := s.Head(ctx); err != nil {
			t.Fatal(err)
		} else if h != res.Position {
			headBehind++
		}
		got, err := s.ReadAll(ctx, last, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Position != res.Position {
			readBehind++
		}
		last = res.Position
	}
	t.Logf("of %d appends beside a busy database, Head trailed %d and ReadAll %d", appends, headBehind, readBehind)
	// Asked again up to horizonRetries times, a read trails only if as many snapshots in a row
	// catch a transaction ending, which a loaded machine (CI runs every package at once) may
	// still see now and then; allow two in the run, against 6 or more before.
	if headBehind > 2 || readBehind > 2 {
		t.Errorf("Head trailed the append just made %d times and ReadAll %d times in %d; want at most twice each", headBehind, readBehind, appends)
	}
}
