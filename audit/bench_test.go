package audit_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// benchDSNEnv names a PostgreSQL event store the benchmarks read instead of generating one,
// e.g. a million events appended by `orderledger generate-log --count 1000000`.
const benchDSNEnv = "ORDERLEDGER_AUDIT_BENCH_DSN"

// benchEvents is the size of the log generated when benchDSNEnv is unset: big enough to
// measure a rate, small enough to generate in a benchmark's setup.
const benchEvents = 100_000

// benchStore opens the log the benchmarks read.
func benchStore(b *testing.B) eventstore.Store {
	b.Helper()
	dsn := os.Getenv(benchDSNEnv)
	generate := dsn == ""
	if generate {
		dsn = pgtest.NewDatabase(b) + "&pool_max_conns=8"
	}
	store, err := postgres.Open(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	if generate {
		opts := historygen.SyntheticDefaults
		opts.Events, opts.Streams = benchEvents, benchEvents/10
		if _, err := historygen.Synthetic(b.Context(), store, opts); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

func BenchmarkVerify(b *testing.B) {
	store := benchStore(b)
	var events uint64
	start := time.Now()
	for b.Loop() {
		report, err := audit.Verify(b.Context(), store, audit.Options{})
		if err != nil || !report.OK {
			b.Fatal(report, err)
		}
		events += report.Events
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}

func BenchmarkExport(b *testing.B) {
	store := benchStore(b)
	var events uint64
	start := time.Now()
	for b.Loop() {
		res, err := audit.Export(b.Context(), store, io.Discard, audit.ExportOptions{})
		if err != nil {
			b.Fatal(err)
		}
		events += res.Events
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}
