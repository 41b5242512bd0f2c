package e2e

import (
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderledger/orderledger/internal/pgtest"
)

// TestSeveralProcessesFailOver runs a deployment of five processes on one PostgreSQL: two
// writers, one reader, and two "project,automate" processes of which one is active and the
// other stands by. Orders go through both writers; in the middle of the burst the active
// projector and automation is killed with SIGKILL. The standby takes over, every order is
// confirmed and invoiced exactly once with gapless invoice numbers, ?after= on the reader
// answers, and the audit and the projections verify.
func TestSeveralProcessesFailOver(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	first := startServerWith(t, dsn, "--roles", "project,automate")
	second := startServerWith(t, dsn, "--roles", "project,automate")
	waitRoles(t, first, "first follower to be active", map[string]string{"project": "active", "automate": "active", "write": "absent", "read": "absent"})
	waitRoles(t, second, "second follower to stand by", map[string]string{"project": "standby", "automate": "standby"})
	writers := []*server{startServerWith(t, dsn, "--roles", "write"), startServerWith(t, dsn, "--roles", "write")}
	reader := startServerWith(t, dsn, "--roles", "read")
	waitRoles(t, reader, "the reader", map[string]string{"read": "active", "project": "absent", "write": "absent"})
	writers[1].expect(t, 404, "GET", "/v1/orders/nope", nil) // a writer serves no reads

	const skus, orders, killAfter = 4, 90, 30
	for i := range skus {
		writers[i%2].expect(t, 200, "POST", fmt.Sprintf("/v1/inventory/SKU-%d/receipts", i), map[string]any{"quantity": 1000})
	}
	for i := range 3 {
		writers[i%2].expect(t, 201, "POST", "/v1/customers", map[string]any{"customer_id": fmt.Sprintf("c%d", i), "name": "C", "email": "c@example.com"})
	}

	var (
		mu        sync.Mutex
		positions = map[string]string{}
		placed    sync.WaitGroup
		killed    = make(chan time.Time, 1)
	)
	place := func(i int) {
		defer placed.Done()
		id := fmt.Sprintf("o%03d", i)
		resp, err := writers[i%2].send(t.Context(), "POST", "/v1/orders", map[string]any{
			"order_id": id, "customer_id": fmt.Sprintf("c%d", i%3), "channel": "web", "currency": "EUR",
			"lines": []map[string]any{{"sku": fmt.Sprintf("SKU-%d", i%skus), "quantity": 1 + i%3, "unit_price": 250}},
		})
		if err != nil || resp.status != 201 {
			t.Errorf("place %s through writer %d: %v, %d %s", id, i%2, err, resp.status, resp.body)
			return
		}
		mu.Lock()
		positions[id] = resp.object(t)["position"].(string)
		mu.Unlock()
	}
	for i := range orders {
		if i == killAfter {
			first.kill(t)
			killed <- time.Now()
		}
		placed.Add(1)
		go place(i)
		time.Sleep(5 * time.Millisecond)
	}
	at := <-killed
	waitRoles(t, second, "the standby to take over", map[string]string{"project": "active", "automate": "active"})
	t.Logf("the standby was active %s after the kill (as seen polling /readyz)", time.Since(at).Round(time.Millisecond))
	placed.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Each order is readable on the reader with ?after= its write, and ends up confirmed and
	// invoiced; invoice numbers are INV-1..INV-n, each once.
	invoices := map[string]string{}
	for id, pos := range positions {
		// ?after= waits at most 10 s; a loaded machine may need a second wait while the
		// standby catches up, never a 500.
		var o map[string]any
		for try := 1; ; try++ {
			resp := reader.do(t, "GET", "/v1/orders/"+id+"?after="+url.QueryEscape(pos), nil)
			if resp.status == 200 {
				o = resp.object(t)
				break
			}
			if resp.status != 504 || try == 3 {
				t.Fatalf("GET %s?after=%s on the reader: %d %s", id, pos, resp.status, resp.body)
			}
		}
		if o["order_id"] != id {
			t.Fatalf("GET %s?after: %v", id, o)
		}
		if !waitFor(60*time.Second, func() bool {
			o = reader.expect(t, 200, "GET", "/v1/orders/"+id, nil)
			n, _ := o["invoice_number"].(string)
			return o["status"] == "confirmed" && n != ""
		}) {
			t.Fatalf("order %s never confirmed and invoiced: %v", id, o)
		}
		invoices[id] = o["invoice_number"].(string)
		history := reader.expect(t, 200, "GET", "/v1/orders/"+id+"/history", nil)
		counts := map[string]int{}
		for _, e := range history["events"].([]any) {
			counts[e.(map[string]any)["type"].(string)]++
		}
		if counts["OrderConfirmed.v1"] != 1 || counts["OrderInvoiced.v1"] != 1 {
			t.Fatalf("order %s: %d OrderConfirmed and %d OrderInvoiced events; want one of each", id, counts["OrderConfirmed.v1"], counts["OrderInvoiced.v1"])
		}
	}
	var numbers []int
	for _, n := range invoices {
		k, err := strconv.Atoi(strings.TrimPrefix(n, "INV-"))
		if err != nil {
			t.Fatalf("invoice number %q", n)
		}
		numbers = append(numbers, k)
	}
	sort.Ints(numbers)
	for i, k := range numbers {
		if k != i+1 {
			t.Fatalf("invoice numbers %v: want 1..%d, each once", numbers, len(numbers))
		}
	}

	for _, args := range [][]string{{"audit", "verify"}, {"projections", "verify"}} {
		cmd := exec.Command(binary, append(args, "--events", dsn)...)
		cmd.Env = cleanEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("orderledger %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 30))
		}
	}
}

// TestRestartedServerReadsAtOnce: after a kill -9, a restarted serve projects and automates
// at once — a write made right after the restart is readable with ?after= (no 504) and gets
// its invoice.
func TestRestartedServerReadsAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		srv.expect(t, 200, "POST", "/v1/inventory/MUG/receipts", map[string]any{"quantity": 10})
		srv.expect(t, 201, "POST", "/v1/customers", map[string]any{"customer_id": "c1", "name": "C", "email": "c@example.com"})
		srv.kill(t)
		restarted := startServerWith(t, events)
		started := time.Now()
		placed := restarted.expect(t, 201, "POST", "/v1/orders", map[string]any{
			"order_id": "o1", "customer_id": "c1", "channel": "web", "currency": "EUR",
			"lines": []map[string]any{{"sku": "MUG", "quantity": 1, "unit_price": 800}},
		})
		restarted.expect(t, 200, "GET", "/v1/orders/o1?after="+url.QueryEscape(placed["position"].(string)), nil)
		t.Logf("the order placed after the restart was readable %s after /readyz first answered 200", time.Since(started).Round(time.Millisecond))
		if !waitFor(30*time.Second, func() bool {
			o := restarted.expect(t, 200, "GET", "/v1/orders/o1", nil)
			return o["invoice_number"] == "INV-1"
		}) {
			t.Fatal("the order placed after the restart was never invoiced")
		}
		// Each projector takes its lease on its own; the one that feeds this order (orders)
		// was active above, the others (sales…) may take a moment longer on a loaded machine.
		waitRoles(t, restarted, "every role active after the restart", map[string]string{
			"write": "active", "read": "active", "project": "active", "automate": "active"})
	})
}

// waitRoles waits until the process's /readyz names the roles as want.
func waitRoles(t *testing.T, s *server, what string, want map[string]string) {
	t.Helper()
	var last map[string]any
	if !waitFor(30*time.Second, func() bool {
		resp, err := s.send(t.Context(), "GET", "/readyz", nil)
		if err != nil {
			return false
		}
		last = resp.object(t)
		roles, _ := last["roles"].(map[string]any)
		for k, v := range want {
			if roles[k] != v {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("waiting for %s: /readyz %v; want roles %v", what, last, want)
	}
}
