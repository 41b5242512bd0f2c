package bench

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// TestAlternate checks the turn order (a warm-up of each, then subject and baseline in ABBA
// pairs, ending on a whole pair) and that each rate counts only its own, counted turns.
func TestAlternate(t *testing.T) {
	var order []string
	side := func(name string, ops int64, took time.Duration) turn {
		return func(context.Context) (int64, time.Duration, error) {
			order = append(order, name)
			time.Sleep(took)
			return ops, took, nil
		}
	}
	subject, baseline, err := alternate(t.Context(), 25*time.Millisecond,
		side("s", 10, 10*time.Millisecond), side("b", 30, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s", "b"} // the warm-up
	for pair := 0; len(want) < len(order); pair++ {
		if pair%2 == 0 {
			want = append(want, "s", "b")
		} else {
			want = append(want, "b", "s")
		}
	}
	if len(order) < 4 || !slices.Equal(order, want) {
		t.Fatalf("turns %v, want %v: a warm-up of each, then whole ABBA pairs", order, want)
	}
	if subject != 1000 || baseline != 3000 {
		t.Errorf("rates %v and %v, want 1000 and 3000 ops/s", subject, baseline)
	}
}

func TestPercentile(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(samples, q); got != want {
			t.Errorf("percentile %v of 1..100 ms = %v, want %v", q, got, want)
		}
	}
	if got := percentile(samples[:1], 0.99); got != 100*time.Millisecond {
		t.Errorf("percentile of one sample = %v, want the sample", got)
	}
}

// TestCheckOnly: --only takes figure names and refuses anything else, naming it.
func TestCheckOnly(t *testing.T) {
	got, err := CheckOnly([]string{" export", "append_single", ""})
	if err != nil || !slices.Equal(got, []string{Export, AppendSingle}) {
		t.Errorf("CheckOnly = %v, %v", got, err)
	}
	if _, err := CheckOnly([]string{"projection_lag_p50"}); err == nil || !strings.Contains(err.Error(), `"projection_lag_p50"`) {
		t.Errorf("an extra's name is not a figure to select; err = %v", err)
	}
}

// TestSQLiteRawTableShape: raw_events has the events table's columns, in order with their
// types and constraints, and an index of the same columns for each of its indexes.
func TestSQLiteRawTableShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	store, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	raw, err := openSQLiteRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	if err := raw.createTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	shape := func(table string) []string {
		var out []string
		out = append(out, queryStrings(t, raw.read, `SELECT name || ' ' || type || ' ' || "notnull" || ' ' || pk FROM pragma_table_info(?) ORDER BY cid`, table)...)
		for _, index := range queryStrings(t, raw.read, `SELECT name FROM pragma_index_list(?) ORDER BY name`, table) {
			cols := queryStrings(t, raw.read, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, index)
			out = append(out, "index on "+strings.Join(cols, ","))
		}
		slices.Sort(out)
		return out
	}
	events, copied := shape("events"), shape("raw_events")
	if len(events) < 10 || !slices.Equal(events, copied) {
		t.Errorf("raw_events is\n%v\nevents is\n%v", copied, events)
	}
	if got := queryStrings(t, raw.read, `SELECT sql FROM sqlite_master WHERE tbl_name = 'raw_events' AND type = 'table'`); len(got) != 1 || !strings.Contains(got[0], "STRICT") {
		t.Errorf("raw_events is not STRICT as events is: %v", got)
	}
}

func queryStrings(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPostgresRawTableShape: raw_events has the events table's columns and types, and an
// index of the same definition for each of its indexes; its rows number themselves from a
// sequence of their own.
func TestPostgresRawTableShape(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base, err := openRaw(t.Context(), Stores{EventsDSN: dsn}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer base.close()
	if err := base.createTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	shape := func(table string) []string {
		rows, err := conn.Query(t.Context(), `
			SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_name = $1
			UNION ALL
			SELECT regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes WHERE tablename = $1`, table)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	events, copied := shape("events"), shape("raw_events")
	if len(events) < 13 || !slices.Equal(events, copied) {
		t.Errorf("raw_events is\n%v\nevents is\n%v", copied, events)
	}
	var defaultExpr string
	if err := conn.QueryRow(t.Context(), `SELECT column_default FROM information_schema.columns
		WHERE table_name = 'raw_events' AND column_name = 'position'`).Scan(&defaultExpr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(defaultExpr, "raw_events_position_seq") {
		t.Errorf("raw_events.position defaults to %s, want its own sequence", defaultExpr)
	}
}

// TestAlternateWithoutWarmUp: whole passes over a large log alternate from the first turn,
// and every turn counts.
func TestAlternateWithoutWarmUp(t *testing.T) {
	var order []string
	side := func(name string) turn {
		return func(context.Context) (int64, time.Duration, error) {
			order = append(order, name)
			return 10, 10 * time.Millisecond, nil
		}
	}
	subject, baseline, err := alternateTurns(t.Context(), time.Nanosecond, false, side("s"), side("b"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"s", "b"}) || subject != 1000 || baseline != 1000 {
		t.Errorf("turns %v rates %v/%v; want one counted pair, s then b, at 1000 ops/s", order, subject, baseline)
	}
}

// TestSamplesDropWarmUp: latencies recorded during the uncounted warm-up turn are dropped,
// those of later turns kept.
func TestSamplesDropWarmUp(t *testing.T) {
	s := &samples{}
	n := 0
	counted := s.dropWarmUp(func(context.Context) (int64, time.Duration, error) {
		n++
		s.add(time.Duration(n) * time.Second)
		return 1, time.Millisecond, nil
	})
	for range 3 {
		if _, _, err := counted(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if s.len() != 2 || s.percentile(0.01) != 2*time.Second || s.percentile(1) != 3*time.Second {
		t.Errorf("%d samples kept (%v…%v); want the 2nd and 3rd turns' only", s.len(), s.percentile(0.01), s.percentile(1))
	}
	if got := s.count(func(d time.Duration) bool { return d >= 3*time.Second }); got != 1 {
		t.Errorf("count of samples ≥ 3 s = %d, want 1", got)
	}
}

// TestListenApart holds stream_fanout_apart to the listeners' process's protocol: a line once
// connected, a report once its input ends; a process that does not connect or does not report
// is an error, not a wait.
func TestListenApart(t *testing.T) {
	stop, err := listenApart(t.Context(), exec.Command("sh", "-c", `echo connected; cat >/dev/null; echo "received 1234 cut 5"`))
	if err != nil {
		t.Fatal(err)
	}
	received, cut, err := stop()
	if err != nil || received != 1234 || cut != 5 {
		t.Errorf("stop: received %d cut %d, %v; want 1234, 5 and no error", received, cut, err)
	}

	if _, err := listenApart(t.Context(), exec.Command("sh", "-c", `echo "no server at that address" >&2; exit 1`)); err == nil ||
		!strings.Contains(err.Error(), "did not connect") || !strings.Contains(err.Error(), "no server at that address") {
		t.Errorf("a process that fails to connect: %v; want an error that says so, with what it wrote", err)
	}

	stop, err = listenApart(t.Context(), exec.Command("sh", "-c", `echo connected; cat >/dev/null`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := stop(); err == nil || !strings.Contains(err.Error(), "without a report") {
		t.Errorf("a process that ends without a report: %v; want an error that says so", err)
	}
}
