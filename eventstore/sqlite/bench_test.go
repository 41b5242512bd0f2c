package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// Each benchmark measures the store beside a baseline: plain INSERTs or SELECTs on a table of the
// same shape (the same DDL) in a file with the same pragmas and one write connection. The two
// take turns within the run, so that both meet the same load on a shared machine; each benchmark
// reports both rates and store/baseline as "ratio".

const (
	singleWriters    = 32
	streamsPerWriter = 4
	batchSize        = 100
	readAllEvents    = 50_000
	readPage         = 1000
	// turns is how many times the concurrent benchmark hands over between store and baseline.
	turns = 10
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
			// Writer w appends op i to its stream i%streamsPerWriter, where it is op number
			// i/streamsPerWriter.
			appendOne := func(w, i int) error {
				expected := eventstore.NoStream()
				if i >= streamsPerWriter {
					expected = eventstore.Exact(uint64(i/streamsPerWriter - 1))
				}
				_, err := s.Append(ctx, fmt.Sprintf("order-%d-%d", w, i%streamsPerWriter), expected, benchEvent(i))
				return err
			}
			insertOne := func(w, i int) error { return base.write(ctx, w, i, 1) }
			storeCrew, baseCrew := newCrew(singleWriters), newCrew(singleWriters)
			var storeTime, baseTime time.Duration
			baseOps := 0
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(b.N-done, max(b.N/turns, singleWriters))
				start := time.Now()
				if err := storeCrew.runN(n, appendOne); err != nil {
					b.Fatal(err)
				}
				turn := time.Since(start)
				storeTime += turn
				done += n
				b.StopTimer()
				start = time.Now()
				ops, err := baseCrew.runFor(turn, insertOne)
				if err != nil {
					b.Fatal(err)
				}
				baseOps += ops
				baseTime += time.Since(start)
				b.StartTimer()
			}
			report(b, float64(b.N)/storeTime.Seconds(), float64(baseOps)/baseTime.Seconds())
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
	var storeTime, baseTime time.Duration
	ops := 0
	for b.Loop() {
		start := time.Now()
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
		storeTime += time.Since(start)

		b.StopTimer()
		start = time.Now()
		if err := base.write(ctx, 0, ops, batchSize); err != nil {
			b.Fatal(err)
		}
		baseTime += time.Since(start)
		b.StartTimer()
		ops++
	}
	report(b, float64(ops*batchSize)/storeTime.Seconds(), float64(ops*batchSize)/baseTime.Seconds())
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

	var storeTime, baseTime time.Duration
	read, baseRead := 0, 0
	for b.Loop() {
		start := time.Now()
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
		storeTime += time.Since(start)

		b.StopTimer()
		start = time.Now()
		n, err := rawReadAll(ctx, raw)
		if err != nil {
			b.Fatal(err)
		}
		baseRead += n
		baseTime += time.Since(start)
		b.StartTimer()
	}
	if read != baseRead || read%readAllEvents != 0 {
		b.Fatalf("the store read %d events, the baseline %d, the log holds %d", read, baseRead, readAllEvents)
	}
	report(b, float64(read)/storeTime.Seconds(), float64(baseRead)/baseTime.Seconds())
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

// crew is a set of writers taking turns at a benchmark; each keeps count of its own ops across
// turns, so that op i of writer w always means the same stream and version.
type crew struct{ next []int }

func newCrew(writers int) *crew { return &crew{next: make([]int, writers)} }

// runN makes n calls of op, spread over the crew's writers as they become free.
func (c *crew) runN(n int, op func(w, i int) error) error {
	var left atomic.Int64
	left.Store(int64(n))
	return c.each(func(w int) error {
		for left.Add(-1) >= 0 {
			if err := op(w, c.next[w]); err != nil {
				return err
			}
			c.next[w]++
		}
		return nil
	})
}

// runFor has every writer call op until d has passed, at least once, and returns the calls made.
func (c *crew) runFor(d time.Duration, op func(w, i int) error) (int, error) {
	var calls atomic.Int64
	deadline := time.Now().Add(d)
	err := c.each(func(w int) error {
		for first := true; first || time.Now().Before(deadline); first = false {
			if err := op(w, c.next[w]); err != nil {
				return err
			}
			c.next[w]++
			calls.Add(1)
		}
		return nil
	})
	return int(calls.Load()), err
}

// each runs work once per writer, all at once.
func (c *crew) each(work func(w int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.next))
	for w := range c.next {
		wg.Go(func() { errs[w] = work(w) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
