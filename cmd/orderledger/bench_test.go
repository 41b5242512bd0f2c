package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/cmd/orderledger/internal/bench"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// benchResult is one result as docs/api.md fixes it; decoding with DisallowUnknownFields holds the
// output to exactly these fields.
type benchResult struct {
	Name     string   `json:"name"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	Baseline *float64 `json:"baseline"`
	Ratio    *float64 `json:"ratio"`
}

// withBaseline are the figures measured beside a baseline on SQLite and PostgreSQL; the others
// have none.
var withBaseline = []string{
	bench.AppendSingle, bench.AppendBatch100, bench.OrderIntake, bench.ReadCustomer, bench.ReadInventory,
	bench.StreamFanout, bench.StreamFanoutApart, bench.ProjectionRebuild, bench.AuditVerify, bench.Export,
	// The larger history's figures, beside the smaller's (TestBenchSQLite's --history-orders).
	bench.RSSAfterOrders + "_600", bench.ColdFirstInvoice + "_600",
}

// decodeBenchJSON parses stdout as exactly one JSON object of the shape docs/api.md gives and checks
// every result's fields: a positive finite value, a unit, and a baseline and ratio that are
// both there (ratio = value/baseline) where a baseline applies and both null elsewhere.
func decodeBenchJSON(t *testing.T, stdout string) map[string]benchResult {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var report struct {
		Results []benchResult `json:"results"`
	}
	if err := dec.Decode(&report); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("stdout holds more than one JSON object:\n%s", stdout)
	}
	byName := map[string]benchResult{}
	for _, r := range report.Results {
		if _, dup := byName[r.Name]; dup {
			t.Errorf("%s reported twice", r.Name)
		}
		byName[r.Name] = r
		// sustained_orders is 0 when no rate tried held its p99: a real outcome of a 100 ms
		// run on a loaded machine, not a broken figure. Every other figure is positive.
		if r.Unit == "" || r.Value < 0 || r.Value == 0 && r.Name != bench.SustainedOrders || math.IsInf(r.Value, 0) {
			t.Errorf("%s: value %v unit %q", r.Name, r.Value, r.Unit)
		}
		if !slices.Contains(withBaseline, r.Name) {
			if r.Baseline != nil || r.Ratio != nil {
				t.Errorf("%s has a baseline (%v) or ratio (%v); want null", r.Name, r.Baseline, r.Ratio)
			}
			continue
		}
		if r.Baseline == nil || r.Ratio == nil || *r.Baseline <= 0 {
			t.Errorf("%s: baseline %v ratio %v; want both", r.Name, r.Baseline, r.Ratio)
			continue
		}
		// value and baseline are rounded to 0.01, the ratio (of the unrounded two) to 0.001.
		if want := r.Value / *r.Baseline; math.Abs(*r.Ratio-want) > 0.001+0.01*want {
			t.Errorf("%s: ratio %v, but value/baseline = %v", r.Name, *r.Ratio, want)
		}
	}
	return byName
}

// TestBenchSQLite runs every figure with a tiny duration and log next to a SQLite file that
// does not exist: the report has every figure docs/api.md names and every extra, the serve process
// it started over the log read all of it, and the run leaves the directory as it found it (no
// user file created, the scratch directory gone).
func TestBenchSQLite(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	out := run(t, bin, nil, 0, "bench", "--events", "sqlite:"+filepath.Join(dir, "orderledger.db"),
		"--duration", "100ms", "--clients", "4", "--log-events", "2000", "--history-orders", "300,600", "--json")

	results := decodeBenchJSON(t, out.stdout)
	extras := []string{bench.OrderIntakeP50, bench.OrderIntakeP99, bench.ProjectionLagP50, bench.OrderToCashCommits,
		bench.CommitsPerCycle, bench.PlacedToInvoicedP50, bench.PlacedToInvoicedP99, bench.ReadCustomerP99, bench.ReadInventoryP99, bench.LogEvents, bench.ServeStartup, bench.ServeCatchUp,
		bench.StreamFanoutApart}
	for _, name := range append(slices.Clone(bench.Names), extras...) {
		if name == bench.RSSAfterOrders || name == bench.ColdFirstInvoice {
			// Reported per history size: the sizes asked for.
			for _, size := range []string{"_300", "_600"} {
				if _, ok := results[name+size]; !ok {
					t.Errorf("no %s in the report", name+size)
				}
			}
			continue
		}
		if _, ok := results[name]; !ok {
			t.Errorf("no %s in the report", name)
		}
	}
	if got := results[bench.LogEvents].Value; got != 2000 {
		t.Errorf("log_events %v, want the 2000 --log-events asked for", got)
	}
	// commits_per_cycle is only checked to be positive (above): in a 100 ms run most of the
	// cycles counted made their commits before the window opened, so the ratio of the two
	// counts says nothing here (0.63 was seen in CI); over --duration 10s it is the figure.
	// stream_fanout_apart's listeners ran in a process of their own (orderledger bench listen)
	// and said what they received.
	if !regexp.MustCompile(`(?m)^bench: stream_fanout_apart: the listeners received [1-9][0-9]* events`).MatchString(out.stderr) {
		t.Errorf("stderr does not report what the listeners' process received:\n%s", out.stderr)
	}
	if !regexp.MustCompile(`(?m)^bench: serve_catchup: `).MatchString(out.stderr) {
		t.Errorf("stderr does not report the serve process's catch-up:\n%s", out.stderr)
	}
	if !regexp.MustCompile(`(?m)^bench: removed the scratch directory `).MatchString(out.stderr) {
		t.Errorf("stderr does not say the scratch directory was removed:\n%s", out.stderr)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("the directory holds %v after the run (%v); want it as it was, empty", left, err)
	}
}

// TestBenchPostgres runs one figure of each stage against a server: the report has just
// those (and the log's size), the scratch database is gone, and the user's database, which
// the DSN names, holds no table.
func TestBenchPostgres(t *testing.T) {
	user := postgresDSN(t)
	bin := buildBinary(t)
	out := run(t, bin, nil, 0, "bench", "--events", user, "--duration", "100ms", "--clients", "4", "--json",
		"--log-events", "2000", "--only", "append_single,read_inventory,audit_verify,serve_rss")

	results := decodeBenchJSON(t, out.stdout)
	var names []string
	for name := range results {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{bench.AppendSingle, bench.AuditVerify, bench.LogEvents, bench.ReadInventory, bench.ReadInventoryP99,
		bench.ServeCatchUp, bench.ServeRSS, bench.ServeStartup}; !slices.Equal(names, want) {
		t.Errorf("the report has %v, want %v", names, want)
	}
	assertScratchDropped(t, user, out.stderr)
}

// TestBenchInterrupted sends SIGINT in the middle of a long measurement: the run stops with a
// failure and still drops its scratch database.
func TestBenchInterrupted(t *testing.T) {
	user := postgresDSN(t)
	bin := buildBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "--events", user, "--duration", "10m", "--clients", "4",
		"--only", "append_single")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bytes.Buffer
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "measuring append_single") {
			break
		}
	}
	// Inside the measurement: past the warm-up turns, into the counted ones.
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("an interrupted run ended with %v, want exit status 1\nstderr:\n%s", err, seen.String())
	}
	if !strings.Contains(seen.String(), "interrupt") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", seen.String())
	}
	assertScratchDropped(t, user, seen.String())
}

// TestBenchUnreachable: a DSN that cannot be opened is a clear failure, before anything is
// created.
func TestBenchUnreachable(t *testing.T) {
	bin := buildBinary(t)
	out := run(t, bin, nil, 1, "bench", "--events", "postgres://postgres@127.0.0.1:1/orderledger?sslmode=disable&connect_timeout=5",
		"--duration", "100ms")
	if !strings.Contains(out.stderr, "bench: cannot open postgres://postgres@127.0.0.1:1/orderledger") {
		t.Errorf("stderr does not say which DSN could not be opened:\n%s", out.stderr)
	}
	if out.stdout != "" {
		t.Errorf("a failed run printed a report:\n%s", out.stdout)
	}
}

// postgresDSN returns a fresh database on the test server, standing for the user's; the bench
// takes postgres:// URLs, as every command does.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		t.Skipf("%s is not a postgres:// URL, the only form the stores take", pgtest.EnvDSN)
	}
	return dsn
}

// assertScratchDropped finds the scratch database the run named on stderr and checks that it
// is gone from the server, and that the user's database holds no table.
func assertScratchDropped(t *testing.T, user, stderr string) {
	t.Helper()
	m := regexp.MustCompile(`created the scratch database (` + bench.ScratchPrefix + `[0-9a-f]+) `).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("stderr does not name the scratch database:\n%s", stderr)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left, tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, m[1]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("the scratch database %s is still there", m[1])
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("the user's database holds %d tables after the run; want none", tables)
	}
}
