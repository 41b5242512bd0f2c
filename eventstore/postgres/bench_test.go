package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// The benchmarks set the Store beside a raw baseline, run in the same process on the same pool
// and database: plain statements on raw_events, a table of the same shape as events (columns,
// defaults, constraints and indexes copied with LIKE) but with no function, no lock, no hash
// chain and no late-commit filter. Store and raw alternate within every iteration, so a load
// that other work puts on the machine falls on both alike. Each reports events/s for both and
// the ratio store/raw.

const benchWriters = 32

var (
	benchData     = []byte(`{"order_id":"ord-000123","customer_id":"cust-42","channel":"web","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1999}]}`)
	benchMetadata = eventstore.Metadata{CorrelationID: "0c6f1c1e-8a4e-4a55-9d5b-3f0b2a1d9e77", Actor: "bench"}
)

func benchEvent() eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "OrderPlaced.v1", Data: benchData, Metadata: benchMetadata}
}

// benchStore opens a Store whose pool has a connection for every writer and one for its
// notifier, and creates raw_events beside events.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s := openStore(b, withPoolSize(pgtest.NewDatabase(b), benchWriters+2))
	if _, err := s.pool.Exec(b.Context(), `
		CREATE TABLE raw_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
		CREATE SEQUENCE raw_events_position_seq OWNED BY raw_events.position;
		ALTER TABLE raw_events ALTER position SET DEFAULT nextval('raw_events_position_seq')`); err != nil {
		b.Fatal(err)
	}
	return s
}

// withPoolSize sets pool_max_conns in a DSN of either form.
func withPoolSize(dsn string, n int) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return fmt.Sprintf("%s pool_max_conns=%d", dsn, n)
	case strings.Contains(dsn, "?"):
		return fmt.Sprintf("%s&pool_max_conns=%d", dsn, n)
	}
	return fmt.Sprintf("%s?pool_max_conns=%d", dsn, n)
}

// parallel runs work(writer) on benchWriters goroutines and returns the wall time.
func parallel(b *testing.B, work func(writer int) error) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchWriters)
	for w := range benchWriters {
		wg.Go(func() {
			if err := work(w); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

func report(b *testing.B, events int, store, raw time.Duration) {
	storeRate := float64(events) / store.Seconds()
	rawRate := float64(events) / raw.Seconds()
	b.ReportMetric(storeRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(storeRate/rawRate, "ratio")
}

const rawInsertSQL = `INSERT INTO raw_events (stream, version, id, type, data, metadata, recorded_at, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// BenchmarkAppendSingle: 32 writers, each appending one event at a time to a stream of its own
// with the exact expected revision, against one single-row INSERT per transaction.
func BenchmarkAppendSingle(b *testing.B) {
	const perWriter = 50 // events per writer per iteration, for each side
	s := benchStore(b)
	ctx := b.Context()
	metadata := eventstore.EncodeMetadata(benchMetadata)
	hash := make([]byte, 32)
	storeNext := make([]uint64, benchWriters) // next version of each writer's stream
	rawNext := make([]int64, benchWriters)

	storeRound := func() time.Duration {
		return parallel(b, func(w int) error {
			stream := fmt.Sprintf("order-bench%d", w)
			for range perWriter {
				expected := eventstore.NoStream()
				if storeNext[w] > 0 {
					expected = eventstore.Exact(storeNext[w] - 1)
				}
				if _, err := s.Append(ctx, stream, expected, benchEvent()); err != nil {
					return err
				}
				storeNext[w]++
			}
			return nil
		})
	}
	rawRound := func() time.Duration {
		return parallel(b, func(w int) error {
			stream := fmt.Sprintf("order-bench%d", w)
			for range perWriter {
				if _, err := s.pool.Exec(ctx, rawInsertSQL, stream, rawNext[w], uuid.New(), "OrderPlaced.v1",
					benchData, metadata, time.Now(), hash); err != nil {
					return err
				}
				rawNext[w]++
			}
			return nil
		})
	}
	// Warm up: every connection opened and its statements prepared on both sides.
	storeRound()
	rawRound()

	var storeTime, rawTime time.Duration
	iterations := 0
	for b.Loop() {
		storeTime += storeRound()
		b.StopTimer()
		rawTime += rawRound()
		b.StartTimer()
		iterations++
	}
	report(b, iterations*benchWriters*perWriter, storeTime, rawTime)
}

// BenchmarkAppendBatch100: one writer appending batches of 100 events, against one 100-row
// INSERT per transaction (arrays unnested: one round trip).
func BenchmarkAppendBatch100(b *testing.B) {
	const batch, perIteration = 100, 10 // batches per iteration, for each side
	s := benchStore(b)
	ctx := b.Context()
	metadata := eventstore.EncodeMetadata(benchMetadata)
	hash := make([]byte, 32)
	var storeNext uint64
	var rawNext int64

	storeRound := func() time.Duration {
		start := time.Now()
		for range perIteration {
			events := make([]eventstore.EventData, batch)
			for i := range events {
				events[i] = benchEvent()
			}
			expected := eventstore.NoStream()
			if storeNext > 0 {
				expected = eventstore.Exact(storeNext - 1)
			}
			if _, err := s.Append(ctx, "order-batch", expected, events...); err != nil {
				b.Fatal(err)
			}
			storeNext += batch
		}
		return time.Since(start)
	}
	rawRound := func() time.Duration {
		start := time.Now()
		for range perIteration {
			versions := make([]int64, batch)
			ids := make([]uuid.UUID, batch)
			types := make([]string, batch)
			data := make([][]byte, batch)
			metas := make([][]byte, batch)
			times := make([]time.Time, batch)
			hashes := make([][]byte, batch)
			now := time.Now()
			for i := range batch {
				versions[i], ids[i], types[i], data[i], metas[i], times[i], hashes[i] =
					rawNext+int64(i), uuid.New(), "OrderPlaced.v1", benchData, metadata, now, hash
			}
			if _, err := s.pool.Exec(ctx, `INSERT INTO raw_events (stream, version, id, type, data, metadata, recorded_at, hash)
				SELECT 'order-batch', v, i, t, d, m, r, h FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::timestamptz[], $7::bytea[]) AS u(v, i, t, d, m, r, h)`,
				versions, ids, types, data, metas, times, hashes); err != nil {
				b.Fatal(err)
			}
			rawNext += batch
		}
		return time.Since(start)
	}
	storeRound()
	rawRound()

	var storeTime, rawTime time.Duration
	iterations := 0
	for b.Loop() {
		storeTime += storeRound()
		b.StopTimer()
		rawTime += rawRound()
		b.StartTimer()
		iterations++
	}
	report(b, iterations*perIteration*batch, storeTime, rawTime)
}

// BenchmarkReadAll: paging through a log of 100k events with ReadAll, against paging a copy of
// it with SELECT … WHERE position > $1 ORDER BY position, the read a bigserial-only store does.
// raw_events gets the position index that read needs.
func BenchmarkReadAll(b *testing.B) {
	const total, page = 100_000, 1000
	s := benchStore(b)
	ctx := b.Context()
	fill(b, s, total)
	if _, err := s.pool.Exec(ctx, `INSERT INTO raw_events SELECT * FROM events ORDER BY xid, position;
		CREATE INDEX raw_events_position ON raw_events (position)`); err != nil {
		b.Fatal(err)
	}
	// Both tables read with fresh statistics and visibility maps.
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE events, raw_events`); err != nil {
		b.Fatal(err)
	}

	storeRound := func() time.Duration {
		start := time.Now()
		var from eventstore.Position
		n := 0
		for {
			events, err := s.ReadAll(ctx, from, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(events) == 0 {
				break
			}
			n += len(events)
			from = events[len(events)-1].Position
		}
		if n != total {
			b.Fatalf("ReadAll read %d events, want %d", n, total)
		}
		return time.Since(start)
	}
	rawRound := func() time.Duration {
		start := time.Now()
		var from int64
		n := 0
		for {
			events, err := rawPage(ctx, s, from, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(events) == 0 {
				break
			}
			n += len(events)
			from = int64(events[len(events)-1].Position.Prepare)
		}
		if n != total {
			b.Fatalf("raw read %d events, want %d", n, total)
		}
		return time.Since(start)
	}
	storeRound()
	rawRound()

	var storeTime, rawTime time.Duration
	iterations := 0
	for b.Loop() {
		storeTime += storeRound()
		b.StopTimer()
		rawTime += rawRound()
		b.StartTimer()
		iterations++
	}
	report(b, iterations*total, storeTime, rawTime)
}

// rawPage reads one page of raw_events into the same Go values ReadAll fills, so both sides pay
// for scanning alike.
func rawPage(ctx context.Context, s *Store, from int64, limit int) ([]eventstore.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM raw_events
		WHERE position > $1 ORDER BY position LIMIT $2`, from, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.Event, error) {
		var (
			e        eventstore.Event
			xid      uint64
			position int64
			version  int64
			metadata []byte
			hash     []byte
		)
		err := row.Scan(&xid, &position, &e.Stream, &version, (*[16]byte)(&e.ID), &e.Type, &e.Data, &metadata, &e.RecordedAt, &hash)
		e.Position = eventstore.Position{Commit: xid, Prepare: uint64(position)}
		return e, err
	})
}

// fill appends total events through the Store, in batches over many streams from a few
// writers.
func fill(b *testing.B, s *Store, total int) {
	b.Helper()
	const writers, batch = 4, 500
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := w * batch; i < total; i += writers * batch {
				events := make([]eventstore.EventData, min(batch, total-i))
				for j := range events {
					events[j] = benchEvent()
				}
				stream := "order-fill" + strings.Repeat("x", w%3) + fmt.Sprint(i/(writers*batch)%50, "-", w)
				if _, err := s.Append(b.Context(), stream, eventstore.Any(), events...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkAppendOneWriter: the latency of one append when nothing else is appended, one event
// at a time with the exact expected revision, against one single-row INSERT per transaction.
// Group commit must not make a lone writer wait: its µs/append should stay at the raw side's.
func BenchmarkAppendOneWriter(b *testing.B) {
	const perIteration = 50 // appends per iteration, for each side
	s := benchStore(b)
	ctx := b.Context()
	metadata := eventstore.EncodeMetadata(benchMetadata)
	hash := make([]byte, 32)
	var storeNext uint64
	var rawNext int64

	storeRound := func() time.Duration {
		start := time.Now()
		for range perIteration {
			expected := eventstore.NoStream()
			if storeNext > 0 {
				expected = eventstore.Exact(storeNext - 1)
			}
			if _, err := s.Append(ctx, "order-alone", expected, benchEvent()); err != nil {
				b.Fatal(err)
			}
			storeNext++
		}
		return time.Since(start)
	}
	rawRound := func() time.Duration {
		start := time.Now()
		for range perIteration {
			if _, err := s.pool.Exec(ctx, rawInsertSQL, "order-alone", rawNext, uuid.New(), "OrderPlaced.v1",
				benchData, metadata, time.Now(), hash); err != nil {
				b.Fatal(err)
			}
			rawNext++
		}
		return time.Since(start)
	}
	storeRound()
	rawRound()

	var storeTime, rawTime time.Duration
	iterations := 0
	for b.Loop() {
		storeTime += storeRound()
		b.StopTimer()
		rawTime += rawRound()
		b.StartTimer()
		iterations++
	}
	appends := float64(iterations * perIteration)
	b.ReportMetric(float64(storeTime.Microseconds())/appends, "µs/append")
	b.ReportMetric(float64(rawTime.Microseconds())/appends, "raw-µs/append")
}
