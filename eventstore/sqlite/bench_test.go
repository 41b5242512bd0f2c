package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// Each benchmark measures the store and then, in the same run and for as long, a baseline: plain
// INSERTs or SELECTs on a table of the same shape (the same DDL) in a file with the same pragmas
// and one write connection. It reports both rates and store/baseline as "ratio".

const (
	singleWriters    = 32
	streamsPerWriter = 4
	batchSize        = 100
	readAllEvents    = 50_000
	readPage         = 1000
)

// benchEvent is an order-sized event with metadata, as the command handlers append.
func benchEvent(i int) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     "OrderPlaced.v1",
		Data:     fmt.Appendf(nil, `{"order_id":"o-%d","customer_id":"c-17","currency":"EUR","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1999},{"sku":"SKU-2","quantity":1,"unit_price":450}],"total":4448}`, i),
		Metadata: eventstore.Metadata{CorrelationID: "corr-" + fmt.Sprint(i), Actor: "bench"},
	}
}

func BenchmarkAppendSingle(b *testing.B) {
	for _, c := range []struct {
		name     string
		maxGroup int
	}{{"group_commit", defaultMaxGroup}, {"one_tx_per_append", 1}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			s := openBenchStore(b, filepath.Join(dir, "events.db"), c.maxGroup)
			base := openBaseline(b, filepath.Join(dir, "baseline.db"))
			ctx := b.Context()
			var writers atomic.Int64
			b.SetParallelism((singleWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				w := writers.Add(1)
				for i := 0; pb.Next(); i++ {
					stream := fmt.Sprintf("order-%d-%d", w, i%streamsPerWriter)
					expected := eventstore.NoStream()
					if i >= streamsPerWriter {
						expected = eventstore.Exact(uint64(i/streamsPerWriter - 1))
					}
					if _, err := s.Append(ctx, stream, expected, benchEvent(i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			baseline := base.run(b, singleWriters, 1, elapsed, func(w, i int) error { return base.write(ctx, w, i, 1) })
			report(b, float64(b.N)/elapsed.Seconds(), baseline)
		})
	}
}

func BenchmarkAppendBatch100(b *testing.B) {
	dir := b.TempDir()
	s := openBenchStore(b, filepath.Join(dir, "events.db"), defaultMaxGroup)
	base := openBaseline(b, filepath.Join(dir, "baseline.db"))
	ctx := b.Context()
	batch := make([]eventstore.EventData, batchSize)
	versions := map[string]uint64{}
	ops := 0
	start := time.Now()
	for b.Loop() {
		stream := fmt.Sprintf("order-%d", ops%16)
		for i := range batch {
			batch[i] = benchEvent(i)
		}
		expected := eventstore.NoStream()
		if v, ok := versions[stream]; ok {
			expected = eventstore.Exact(v)
		}
		res, err := s.Append(ctx, stream, expected, batch...)
		if err != nil {
			b.Fatal(err)
		}
		versions[stream] = res.Version
		ops++
	}
	elapsed := time.Since(start)
	baseline := base.run(b, 1, batchSize, elapsed, func(_, i int) error { return base.write(ctx, 0, i, batchSize) })
	report(b, float64(ops*batchSize)/elapsed.Seconds(), baseline)
}

func BenchmarkReadAll(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.db")
	s := openBenchStore(b, path, defaultMaxGroup)
	ctx := b.Context()
	for i := 0; i < readAllEvents/500; i++ {
		batch := make([]eventstore.EventData, 500)
		for j := range batch {
			batch[j] = benchEvent(j)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), eventstore.NoStream(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	// The baseline reads the very same table through a connection of its own.
	raw, err := sql.Open("sqlite", dsn(path, url.Values{"_busy_timeout": {busyTimeoutMillis}, "_query_only": {"1"}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })

	read := 0
	start := time.Now()
	for b.Loop() {
		var from eventstore.Position
		for {
			page, err := s.ReadAll(ctx, from, readPage)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			read += len(page)
			from = page[len(page)-1].Position
		}
	}
	elapsed := time.Since(start)
	if read%readAllEvents != 0 {
		b.Fatalf("read %d events, not a multiple of the %d in the log", read, readAllEvents)
	}

	baseRead := 0
	baseStart := time.Now()
	for time.Since(baseStart) < elapsed || baseRead == 0 {
		n, err := rawReadAll(ctx, raw)
		if err != nil {
			b.Fatal(err)
		}
		baseRead += n
	}
	report(b, float64(read)/elapsed.Seconds(), float64(baseRead)/time.Since(baseStart).Seconds())
}

// rawReadAll reads the whole log in pages as ReadAll does, scanning the columns and decoding
// nothing.
func rawReadAll(ctx context.Context, db *sql.DB) (int, error) {
	var (
		n, after                 int64
		total                    int
		stream, typ              string
		version, recorded        int64
		id, data, metadata, hash sql.RawBytes
	)
	for {
		rows, err := db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE position > ? ORDER BY position LIMIT ?`, after, readPage)
		if err != nil {
			return total, err
		}
		n = 0
		for rows.Next() {
			if err := rows.Scan(&after, &stream, &version, &id, &typ, &data, &metadata, &recorded, &hash); err != nil {
				rows.Close()
				return total, err
			}
			n++
		}
		if err := rows.Close(); err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += int(n)
	}
}

func report(b *testing.B, store, baseline float64) {
	b.ReportMetric(store, "events/s")
	b.ReportMetric(baseline, "baseline_events/s")
	b.ReportMetric(store/baseline, "ratio")
}

func openBenchStore(b *testing.B, path string, maxGroup int) *Store {
	s, err := open(b.Context(), path, maxGroup)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// baseline is a file with the events table alone, written with plain INSERTs.
type baseline struct {
	db     *sql.DB
	insert *sql.Stmt
}

func openBaseline(b *testing.B, path string) *baseline {
	db, err := sql.Open("sqlite", dsn(path, url.Values{
		"_busy_timeout": {busyTimeoutMillis},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(b.Context(), migrations[0]); err != nil {
		b.Fatal(err)
	}
	insert, err := db.PrepareContext(b.Context(), `INSERT INTO events (stream, version, id, type, data, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	return &baseline{db: db, insert: insert}
}

// run calls op from writers goroutines until d has passed (each at least once) and returns the
// events written per second, op i of writer w writing perOp events.
func (base *baseline) run(b *testing.B, writers, perOp int, d time.Duration, op func(w, i int) error) float64 {
	var (
		wg     sync.WaitGroup
		ops    atomic.Int64
		failed atomic.Bool
		start  = time.Now()
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; (i == 0 || time.Since(start) < d) && !failed.Load(); i++ {
				if err := op(w, i); err != nil {
					b.Error(err)
					failed.Store(true)
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ops.Load()*int64(perOp)) / time.Since(start).Seconds()
}

// write writes op i of writer w: n events in one transaction, at the next versions of the
// writer's streams, with the column values an append would write.
func (base *baseline) write(ctx context.Context, w, i, n int) error {
	tx, err := base.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, base.insert)
	stream := fmt.Sprintf("order-%d-%d", w, i%streamsPerWriter)
	var hash [32]byte
	for j := range n {
		e := benchEvent(j)
		rand.Read(hash[:])
		version := int64(i/streamsPerWriter*n + j)
		if _, err := stmt.ExecContext(ctx, stream, version, e.ID[:], e.Type, e.Data,
			eventstore.EncodeMetadata(e.Metadata), time.Now().UnixMicro(), hash[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}
