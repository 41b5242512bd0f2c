package projections_test

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// TestVerify: read models a runner keeps up to date verify as equal to a rebuild, also while
// the runner is still projecting events appended during the verification; rows changed,
// removed or added behind the projectors' backs are each named. The scratch space is gone
// afterwards.
func TestVerify(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		t.Setenv("TMPDIR", t.TempDir())
		_, records := generate(41, 3000)
		head := projectionstest.Append(t, env.Store, records[:2000])
		r := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r, head)
		ctx := t.Context()

		// The log grows and the runner projects while verify runs.
		appended := make(chan struct{})
		go func() {
			defer close(appended)
			for i := 2000; i < len(records); i += 50 {
				head = projectionstest.Append(t, env.Store, records[i:min(i+50, len(records))])
			}
		}()
		report, err := projections.Verify(ctx, env.Store, env.Read, projections.VerifyOptions{})
		<-appended
		if err != nil {
			t.Fatal(err)
		}
		if !report.OK() || len(report.Tables) != 12 || len(report.Projectors) != 5 {
			t.Fatalf("verify while projecting: %+v", report)
		}
		for _, tb := range report.Tables {
			if tb.Live != tb.Rebuilt || (tb.Live == 0 && tb.Table == "rm_orders") {
				t.Errorf("table %+v", tb)
			}
		}
		projectionstest.CatchUp(t, r, head)
		report, err = projections.Verify(ctx, env.Store, env.Read, projections.VerifyOptions{})
		if err != nil || !report.OK() {
			t.Fatalf("verify once caught up: %+v, %v", report, err)
		}
		// A checkpoint is written with the projector's rows, or at the next lease renewal
		// after events it has nothing to write for: it may be short of the head.
		for _, p := range report.Projectors {
			if p.Position.Compare(head) > 0 || p.Events < 2000 || p.Events > int64(len(records)) {
				t.Errorf("projector %+v compared, want at most at %s, after 2000 to %d events", p, head, len(records))
			}
		}

		// Tamper with three rows no event will touch again.
		var order, entry string
		orders, _, err := env.Read.Orders(ctx, projections.OrderFilter{Limit: 1})
		if err != nil || len(orders) != 1 {
			t.Fatalf("orders: %v, %v", orders, err)
		}
		order = orders[0].OrderID
		entries, _, err := env.Read.LedgerEntries(ctx, projections.LedgerFilter{Limit: 1})
		if err != nil || len(entries) != 1 {
			t.Fatalf("ledger entries: %v, %v", entries, err)
		}
		entry = entries[0].EntryID
		for _, q := range []struct {
			query string
			args  []any
		}{
			{"UPDATE rm_orders SET paid = paid + 1 WHERE order_id = ?", []any{order}},
			{"DELETE FROM rm_ledger_entries WHERE entry_id = ?", []any{entry}},
			{"INSERT INTO rm_stock VALUES ('SKU-FORGED', 5, 0, 0, 0, 0, 0, 0, '', 0)", nil},
		} {
			if err := projections.Exec(ctx, env.Read, q.query, q.args...); err != nil {
				t.Fatalf("%s: %v", q.query, err)
			}
		}
		report, err = projections.Verify(ctx, env.Store, env.Read, projections.VerifyOptions{MaxDifferences: 2})
		if err != nil {
			t.Fatal(err)
		}
		if report.OK() || report.Differing != 3 || len(report.Differences) != 2 {
			t.Fatalf("verify after tampering: %d differing, shown %v; want 3, 2 shown", report.Differing, report.Differences)
		}
		report, err = projections.Verify(ctx, env.Store, env.Read, projections.VerifyOptions{})
		if err != nil || report.Differing != 3 || len(report.Differences) != 3 {
			t.Fatalf("verify after tampering: %+v, %v", report, err)
		}
		var lines []string
		for _, d := range report.Differences {
			lines = append(lines, d.String())
		}
		for _, want := range []string{
			"rm_orders order_id=" + order + ": paid live ",
			"rm_stock sku=SKU-FORGED: in the live read model only: sku=SKU-FORGED on_hand=5 ",
			"rm_ledger_entries entry_id=" + entry + ": missing from the live read model; rebuilt entry_id=" + entry + " order_id=",
		} {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Errorf("no difference begins %q in\n%s", want, strings.Join(lines, "\n"))
			}
		}
		if d := report.Differences[0]; d.Table != "rm_orders" || !slices.Equal(d.Columns, []string{"paid"}) {
			t.Errorf("the order's difference %+v, want the paid column alone", d)
		}
		noScratchLeft(t, env)
	})
}

// noScratchLeft checks that verify dropped its scratch space.
func noScratchLeft(t *testing.T, env *projectionstest.Env) {
	t.Helper()
	if env.Backend != "postgres" {
		left, err := os.ReadDir(os.Getenv("TMPDIR"))
		if err != nil || len(left) > 0 {
			t.Errorf("left in the temporary directory: %v (err %v)", left, err)
		}
		return
	}
	db, err := sql.Open("pgx", env.ReadDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var schemas int
	if err := db.QueryRowContext(context.WithoutCancel(t.Context()),
		"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'orderledger_verify_%'").Scan(&schemas); err != nil || schemas != 0 {
		t.Errorf("%d scratch schemas left (err %v)", schemas, err)
	}
}
