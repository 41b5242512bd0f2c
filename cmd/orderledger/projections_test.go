package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/pgtest"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// TestProjectionsCommands runs the built binary on the scripted history, each event recorded at
// the time it carries, on SQLite and on PostgreSQL: rebuild, verify of an untouched and of a
// tampered read store, replay as of a closing date, and a read-only server on the replay.
func TestProjectionsCommands(t *testing.T) {
	bin := buildBinary(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			events := "sqlite:" + filepath.Join(t.TempDir(), "events.db")
			target := "sqlite:" + filepath.Join(t.TempDir(), "asof.db")
			if backend == "postgres" {
				events, target = pgtest.NewDatabase(t), pgtest.NewDatabase(t)
			}
			store, err := stores.OpenEvents(t.Context(), events)
			if err != nil {
				t.Fatal(err)
			}
			records := projectionstest.ScriptedHistory()
			projectionstest.AppendAsRecorded(t, store, records)
			store.Close()

			out := run(t, bin, nil, 0, "projections", "rebuild", "--events", events)
			if want := fmt.Sprintf("rebuilt orders, customers, inventory, sales, ledger from %d events\n", len(records)); out.stdout != want {
				t.Errorf("rebuild: stdout %q, want %q", out.stdout, want)
			}
			if !strings.Contains(out.stderr, fmt.Sprintf("rebuilt %d events in", len(records))) {
				t.Errorf("rebuild: stderr %q should end with the count and rate", out.stderr)
			}
			out = run(t, bin, nil, 2, "projections", "rebuild", "orders", "invoices", "--events", events)
			if !strings.Contains(out.stderr, `no projector "invoices"; the projectors are orders, customers, inventory, sales, ledger`) {
				t.Errorf("rebuild of an unknown projector: stderr %q", out.stderr)
			}

			out = run(t, bin, nil, 0, "projections", "verify", "--events", events)
			if !strings.Contains(out.stdout, "rm_orders                live 3 rows, rebuilt 3, differing 0") || !strings.Contains(out.stdout, "ok: every live read model equals") {
				t.Errorf("verify: stdout %q", out.stdout)
			}
			execSQL(t, events, "UPDATE rm_orders SET paid = 1 WHERE order_id = 'order-2'")
			out = run(t, bin, nil, 1, "projections", "verify", "--events", events)
			if !strings.Contains(out.stdout, "rm_orders order_id=order-2: paid live 1, rebuilt 500\n") ||
				!strings.Contains(out.stderr, "differ from a rebuild of the log in 1 rows (rm_orders 1)") {
				t.Errorf("verify of a tampered row: stdout %q, stderr %q", out.stdout, out.stderr)
			}
			out = run(t, bin, nil, 1, "projections", "verify", "--events", events, "--json")
			var report struct {
				Differing   int
				Differences []struct {
					Table, Key string
					Columns    []string
				}
			}
			if err := json.Unmarshal([]byte(out.stdout), &report); err != nil || report.Differing != 1 || report.Differences[0].Key != "order_id=order-2" {
				t.Errorf("verify --json: %s (err %v)", out.stdout, err)
			}
			run(t, bin, nil, 0, "projections", "rebuild", "orders", "--events", events)
			run(t, bin, nil, 0, "projections", "verify", "--events", events)
			run(t, bin, nil, 2, "projections", "verify", "--events", events, "extra")

			// Replay as of the close of day 2 and serve that.
			out = run(t, bin, nil, 0, "replay", "--as-of", "2025-03-03T00:00:00Z", "--events", events, "--read", target)
			if !strings.Contains(out.stdout, "replayed 24 events recorded up to 2025-03-03T00:00:00Z") ||
				!strings.Contains(out.stdout, `the log goes on with stream "order-order-1" version 6`) {
				t.Errorf("replay: stdout %q", out.stdout)
			}
			out = run(t, bin, nil, 2, "replay", "--as-of", "2025-03-03T00:00:00Z", "--events", events, "--read", target)
			if !strings.Contains(out.stderr, "holds a replay as of 2025-03-03T00:00:00Z; pass --force") {
				t.Errorf("a second replay: stderr %q", out.stderr)
			}
			run(t, bin, nil, 0, "replay", "--as-of", "2025-03-03T00:00:00+01:00", "--force", "--events", events, "--read", target)
			for _, args := range [][]string{
				{"--read", events},
				{},
				{"--read", target, "--as-of", "2025-03-03"},
			} {
				args = append([]string{"replay", "--as-of", "2025-03-03T00:00:00Z", "--events", events}, args...)
				run(t, bin, nil, 2, args...)
			}
			run(t, bin, nil, 0, "replay", "--as-of", "2025-03-03T00:00:00Z", "--force", "--events", events, "--read", target)

			out = run(t, bin, nil, 1, "serve", "--events", events, "--read", target, "--addr", "127.0.0.1:0")
			if !strings.Contains(out.stderr, "serve it with --roles read") {
				t.Errorf("serving a replay with every role: stderr %q", out.stderr)
			}
			base := startServe(t, bin, "--roles", "read", "--events", events, "--read", target)
			for path, want := range map[string]string{
				"/v1/sales/summary?currency=USD": `{"currency":"USD","orders":2,"invoiced":3850,"credited":0,"net_sales":3850,"tax":350,"payments":3850,"refunds":0,` +
					`"by_channel":{"web":{"orders":1,"net_sales":3850},"store":{"orders":0,"net_sales":0},"phone":{"orders":1,"net_sales":0}}}`,
				"/v1/ledger/trial-balance?currency=USD": `{"currency":"USD","accounts":[{"account":"accounts_receivable","debit":3850,"credit":3850},{"account":"cash","debit":3850,"credit":0},` +
					`{"account":"revenue","debit":0,"credit":3500},{"account":"tax_payable","debit":0,"credit":350}],"total_debit":7700,"total_credit":7700}`,
			} {
				if status, body := get(t, base+path); status != http.StatusOK || body != want+"\n" {
					t.Errorf("GET %s on the replay: %d %s, want %s", path, status, body, want)
				}
			}
			if status, body := get(t, base+"/v1/orders/order-1"); status != http.StatusOK || !strings.Contains(body, `"status":"confirmed"`) || !strings.Contains(body, `"paid":3850`) {
				t.Errorf("order-1 on the replay: %d %s", status, body)
			}
			if status, _ := get(t, base+"/v1/orders/order-3"); status != http.StatusNotFound {
				t.Errorf("order-3, placed on day 3, on the replay: %d", status)
			}
		})
	}
}

// execSQL runs a statement on the database a DSN names.
func execSQL(t *testing.T, dsn, query string) {
	t.Helper()
	driver, source := "pgx", dsn
	if strings.HasPrefix(dsn, "sqlite:") {
		driver, source = "sqlite", "file:"+stores.SQLitePath(dsn)+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// startServe runs "orderledger serve" with args on a free port until the test ends, and
// returns its base URL once it answers.
func startServe(t *testing.T, bin string, args ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--addr", addr}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if status, _ := get(t, base+"/healthz"); status == http.StatusOK {
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %v did not answer within 30s: %s", args, stderr.String())
		}
	}
}

// get answers the status and body of a GET, or 0 when nothing answers.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
