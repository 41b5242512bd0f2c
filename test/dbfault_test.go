package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/internal/pgtest"
)

// TestDatabaseOutagesUnderLoad: while orders are placed, the server's database goes away
// three times for a second — every connection to it terminated (pg_terminate_backend) and new
// ones refused, as in a restart. Requests answer 503 unavailable with Retry-After meanwhile,
// never 500; every acknowledged order is there afterwards, and the projectors and the
// automation resume by themselves.
func TestDatabaseOutagesUnderLoad(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	srv := startServer(t, dsn)
	srv.expect(t, 200, "POST", "/v1/inventory/MUG/receipts", map[string]any{"quantity": 100000})
	srv.expect(t, 201, "POST", "/v1/customers", map[string]any{"customer_id": "c1", "name": "C", "email": "c@example.com"})

	admin, err := pgx.Connect(t.Context(), pgtest.ServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.WithoutCancel(t.Context()))
	allow := func(on bool) {
		if _, err := admin.Exec(t.Context(), fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", pgx.Identifier{dbName}.Sanitize(), on)); err != nil {
			t.Errorf("allow connections %t: %v", on, err)
		}
	}
	defer allow(true)

	const writers, perWriter = 4, 25
	var (
		mu           sync.Mutex
		acknowledged = map[string]string{} // order → position
		unavailable  atomic.Int64
		loadDone     = make(chan struct{})
		load         sync.WaitGroup
	)
	for w := range writers {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := range perWriter {
				id := fmt.Sprintf("w%d-o%02d", w, i)
				body := map[string]any{"order_id": id, "customer_id": "c1", "channel": "web", "currency": "EUR",
					"lines": []map[string]any{{"sku": "MUG", "quantity": 1, "unit_price": 800}}}
				deadline := time.Now().Add(60 * time.Second)
				for {
					resp, err := srv.send(t.Context(), "POST", "/v1/orders", body, "Idempotency-Key", id)
					switch {
					case err != nil:
						t.Errorf("POST %s: %v", id, err)
						return
					case resp.status == 201:
						mu.Lock()
						acknowledged[id] = resp.object(t)["position"].(string)
						mu.Unlock()
					case resp.status == 503:
						unavailable.Add(1)
						if resp.header.Get("Retry-After") == "" || !strings.Contains(string(resp.body), `"code":"unavailable"`) {
							t.Errorf("POST %s: 503 without Retry-After or code unavailable: %s", id, resp.body)
							return
						}
						if time.Now().After(deadline) {
							t.Errorf("POST %s: still 503 after 60 s", id)
							return
						}
						time.Sleep(100 * time.Millisecond)
						continue
					default:
						t.Errorf("POST %s: %d %s; want 201, or 503 while the database is away", id, resp.status, resp.body)
						return
					}
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	go func() { load.Wait(); close(loadDone) }()

	for range 3 {
		time.Sleep(500 * time.Millisecond)
		allow(false)
		var cut int
		if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, dbName).Scan(&cut); err != nil {
			t.Fatal(err)
		}
		// Reads and /readyz answer meanwhile, without a 500.
		for _, path := range []string{"/v1/orders/w0-o00", "/readyz"} {
			resp, err := srv.send(t.Context(), "GET", path, nil)
			if err != nil || resp.status == 500 {
				t.Errorf("GET %s while the database is away: %v, %d %s", path, err, resp.status, resp.body)
			}
		}
		time.Sleep(time.Second)
		allow(true)
		t.Logf("cut %d connections and refused new ones for a second", cut)
	}
	<-loadDone
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d orders acknowledged, %d answers 503 while the database was away", len(acknowledged), unavailable.Load())
	if len(acknowledged) != writers*perWriter {
		t.Fatalf("%d orders acknowledged; want %d", len(acknowledged), writers*perWriter)
	}
	for id, pos := range acknowledged {
		o := srv.expect(t, 200, "GET", "/v1/orders/"+id+"?after="+url.QueryEscape(pos), nil)
		if !waitFor(60*time.Second, func() bool {
			o = srv.expect(t, 200, "GET", "/v1/orders/"+id, nil)
			return o["invoice_number"] != nil
		}) {
			t.Fatalf("order %s was never invoiced after the outages: %v", id, o)
		}
	}
	waitRoles(t, srv, "every role active again", map[string]string{"write": "active", "read": "active", "project": "active", "automate": "active"})
}
