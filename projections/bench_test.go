package projections_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// BenchmarkRebuild replays a generated log into every projector on PostgreSQL and reports
// events/s. ORDERLEDGER_BENCH_REBUILD_EVENTS sets the log's size (default 20000); for a log of
// a million events, use the rebuildbench command, which keeps its log between runs:
//
//	go run ./projections/internal/rebuildbench -n 1000000
func BenchmarkRebuild(b *testing.B) {
	n := 20000
	if v := os.Getenv("ORDERLEDGER_BENCH_REBUILD_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("ORDERLEDGER_BENCH_REBUILD_EVENTS: %v", err)
		}
	}
	env := projectionstest.OpenPostgres(b)
	_, records := generate(99, n)
	projectionstest.Append(b, env.Store, records)
	b.ResetTimer()
	for b.Loop() {
		if err := projections.Rebuild(b.Context(), env.Store, env.Read, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(records))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
