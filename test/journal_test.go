package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestJournalAgreesWithHledger runs a realistic history over HTTP (EUR, USD and JPY orders,
// a cancellation after invoicing, partial returns that round tax, refunds), then feeds each
// currency's journal (GET /v1/ledger/journal, and the same from `orderledger ledger journal`)
// to the real `hledger balance` and requires every account to equal the trial balance, to the
// minor unit, overall and as of a closing date.
func TestJournalAgreesWithHledger(t *testing.T) {
	hledger, err := exec.LookPath("hledger")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("hledger is not installed; .ci/run installs it (apt-get install -y hledger)")
		}
		t.Skip("hledger is not installed (apt-get install hledger); the journal cannot be checked against it")
	}
	forEachBackend(t, func(t *testing.T, events string) {
		srv := startServer(t, events)
		srv.expect(t, http.StatusCreated, "POST", "/v1/customers", map[string]any{"customer_id": "C-1", "name": "Ann", "email": "ann@example.com"})
		for _, sku := range []string{"S-1", "S-2"} {
			srv.expect(t, http.StatusOK, "POST", "/v1/inventory/"+sku+"/receipts", map[string]any{"quantity": 1000})
		}
		type order struct {
			id, currency string
			lines        []any
			rate         int64
		}
		orders := []order{
			{"E-1", "EUR", []any{map[string]any{"sku": "S-1", "quantity": 3, "unit_price": 1999}, map[string]any{"sku": "S-2", "quantity": 1, "unit_price": 500}}, 1950},
			{"E-2", "EUR", []any{map[string]any{"sku": "S-1", "quantity": 1, "unit_price": 1000000000000}}, 10000},
			{"E-3", "EUR", []any{map[string]any{"sku": "S-2", "quantity": 2, "unit_price": 1250}}, 2000},
			// 3 units of 1 at 50 %: 3 + 2 tax, returned one at a time.
			{"U-1", "USD", []any{map[string]any{"sku": "S-1", "quantity": 3, "unit_price": 1}}, 5000},
			{"U-2", "USD", []any{map[string]any{"sku": "S-2", "quantity": 4, "unit_price": 2499}}, 825},
			{"J-1", "JPY", []any{map[string]any{"sku": "S-1", "quantity": 2, "unit_price": 1500}}, 1000},
			{"J-2", "JPY", []any{map[string]any{"sku": "S-2", "quantity": 1, "unit_price": 98765}}, 0},
		}
		for _, o := range orders {
			srv.expect(t, http.StatusCreated, "POST", "/v1/orders", map[string]any{"order_id": o.id, "customer_id": "C-1", "channel": "web",
				"currency": o.currency, "tax_rate_bps": o.rate, "lines": o.lines})
		}
		// orderDoc reads an order, which the read model may not hold yet.
		orderDoc := func(id string) (map[string]any, []string) {
			resp := srv.do(t, "GET", "/v1/orders/"+id, nil)
			if resp.status != http.StatusOK {
				return nil, []string{fmt.Sprintf("GET /v1/orders/%s: %d", id, resp.status)}
			}
			return resp.object(t), nil
		}
		invoiced := func(id string) func() []string {
			return func() []string {
				doc, diffs := orderDoc(id)
				if diffs != nil {
					return diffs
				}
				if doc["invoice_number"] == nil || doc["status"] != "confirmed" {
					return []string{fmt.Sprintf("%s is %v, invoice %v", id, doc["status"], doc["invoice_number"])}
				}
				return nil
			}
		}
		for _, o := range orders {
			eventually(t, o.id+" invoiced", invoiced(o.id))
		}
		total := func(id string) int64 {
			return int64(srv.expect(t, http.StatusOK, "GET", "/v1/orders/"+id, nil)["total"].(float64))
		}
		// E-3 and J-2 are cancelled after invoicing: a credit note reverses each invoice.
		for _, id := range []string{"E-3", "J-2"} {
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/cancellation", map[string]any{"reason": "changed mind"})
		}
		// The others are paid in full (E-2 in payments at the cap), shipped and delivered.
		for _, id := range []string{"E-1", "E-2", "U-1", "U-2", "J-1"} {
			for left := total(id); left > 0; {
				amount := min(left, 1000000000000)
				srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/payments", map[string]any{"amount": amount, "method": "card"})
				left -= amount
			}
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/shipments", map[string]any{"carrier": "DHL", "tracking_number": "T-" + id})
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/deliveries", map[string]any{})
		}
		returnItems := func(id, sku string, quantity int) {
			srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/returns", map[string]any{"lines": []any{map[string]any{"sku": sku, "quantity": quantity}}, "reason": "not wanted"})
		}
		returnItems("E-1", "S-1", 2)
		for range 3 {
			returnItems("U-1", "S-1", 1)
		}
		returnItems("U-2", "S-2", 1)
		returnItems("J-1", "S-1", 1)
		credited := func(id string, notes int) func() []string {
			return func() []string {
				doc, diffs := orderDoc(id)
				if diffs != nil {
					return diffs
				}
				if n := len(doc["credit_notes"].([]any)); n != notes {
					return []string{fmt.Sprintf("%s has %d credit notes, want %d", id, n, notes)}
				}
				return nil
			}
		}
		for id, n := range map[string]int{"E-1": 1, "E-3": 1, "J-2": 1, "U-1": 3, "U-2": 1, "J-1": 1} {
			eventually(t, id+" credited", credited(id, n))
		}
		// Refund what each return credited.
		refunded := map[string]string{} // order → the refund's position
		for _, id := range []string{"E-1", "U-1", "U-2", "J-1"} {
			doc := srv.expect(t, http.StatusOK, "GET", "/v1/orders/"+id, nil)
			if owed := -int64(doc["outstanding"].(float64)); owed > 0 {
				refunded[id] = srv.expect(t, http.StatusOK, "POST", "/v1/orders/"+id+"/refunds", map[string]any{"amount": owed})["position"].(string)
			}
		}
		// Returning every unit of U-1 one at a time credited exactly its invoice: 3 + 2. Read
		// after the refund, which the read model may not hold yet on a loaded machine.
		u1After := ""
		if pos, ok := refunded["U-1"]; ok {
			u1After = "?after=" + url.QueryEscape(pos)
		}
		u1 := srv.expect(t, http.StatusOK, "GET", "/v1/orders/U-1"+u1After, nil)
		var cnTax, cnNet float64
		for _, cn := range u1["credit_notes"].([]any) {
			cnNet += cn.(map[string]any)["net"].(float64)
			cnTax += cn.(map[string]any)["tax"].(float64)
		}
		if cnNet != 3 || cnTax != 2 || u1["payment_status"] != "refunded" {
			t.Errorf("U-1's credit notes credit net %v tax %v (want 3 and 2), payment_status %v (want refunded)", cnNet, cnTax, u1["payment_status"])
		}
		// Wait for the ledger to hold everything: a last write's position.
		pos := srv.expect(t, http.StatusOK, "PUT", "/v1/customers/C-1", map[string]any{"name": "Ann Lee"})["position"].(string)

		currencies := srv.expect(t, http.StatusOK, "GET", "/v1/ledger/currencies?after="+pos, nil)
		if got := fmt.Sprint(currencies["items"]); got != "[EUR JPY USD]" {
			t.Fatalf("GET /v1/ledger/currencies: %s, want [EUR JPY USD]", got)
		}
		for _, currency := range []string{"EUR", "JPY", "USD"} {
			for _, to := range []string{"", "2000-01-01", "2999-12-31"} {
				query := "currency=" + currency
				if to != "" {
					query += "&to=" + to
				}
				tb := srv.expect(t, http.StatusOK, "GET", "/v1/ledger/trial-balance?"+query+"&after="+pos, nil)
				journal := srv.do(t, "GET", "/v1/ledger/journal?"+query, nil)
				if journal.status != http.StatusOK || journal.header.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Fatalf("GET /v1/ledger/journal?%s: %d %s %s", query, journal.status, journal.header.Get("Content-Type"), journal.body)
				}
				balances := hledgerBalance(t, hledger, journal.body, currency)
				for _, a := range tb["accounts"].([]any) {
					acc := a.(map[string]any)
					account := acc["account"].(string)
					debit, credit := jsonInt(t, acc["debit"]), jsonInt(t, acc["credit"])
					want := new(big.Int).Sub(debit, credit)
					got, ok := balances[account]
					if !ok {
						got = new(big.Int)
					}
					if got.Cmp(want) != 0 {
						t.Errorf("%s to %q, %s: hledger %s, trial balance debit %s − credit %s = %s (minor units)", currency, to, account, got, debit, credit, want)
					}
				}
				if to == "" {
					// The CLI prints the same journal, and the CSV holds the same postings.
					cli := exec.Command(binary, "ledger", "journal", "--events", events, "--currency", currency)
					cli.Env = cleanEnv()
					out, err := cli.Output()
					if err != nil || !bytes.Equal(out, journal.body) {
						t.Errorf("orderledger ledger journal --currency %s (err %v) differs from GET /v1/ledger/journal:\n%s\nvs\n%s", currency, err, out, journal.body)
					}
					checkJournalCSV(t, srv, currency, tb)
				}
			}
		}
	})
}

// jsonInt reads a JSON number (decoded as float64 by the test helpers, exact below 2^53).
func jsonInt(t *testing.T, v any) *big.Int {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("not a number: %v", v)
	}
	b, _ := new(big.Float).SetFloat64(f).Int(nil)
	return b
}

// hledgerBalance runs `hledger -f - balance` over a journal and returns each account's balance
// in minor units of currency.
func hledgerBalance(t *testing.T, hledger string, journal []byte, currency string) map[string]*big.Int {
	t.Helper()
	cmd := exec.Command(hledger, "-f", "-", "balance", "--flat", "--empty", "--no-total", "-O", "csv")
	cmd.Stdin = bytes.NewReader(journal)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hledger balance: %v\n%s\njournal:\n%s", err, stderr.String(), journal)
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 || !slices.Equal(rows[0], []string{"account", "balance"}) {
		t.Fatalf("hledger balance output (%v):\n%s", err, out)
	}
	balances := map[string]*big.Int{}
	for _, row := range rows[1:] {
		amount := strings.TrimSpace(row[1])
		if amount == "0" {
			balances[row[0]] = new(big.Int)
			continue
		}
		number, commodity, ok := strings.Cut(amount, " ")
		if !ok || commodity != currency {
			t.Fatalf("hledger balance of %s: %q, want an amount in %s", row[0], amount, currency)
		}
		minor, ok := new(big.Int).SetString(strings.Replace(number, ".", "", 1), 10)
		if !ok {
			t.Fatalf("hledger balance of %s: %q is not a number", row[0], amount)
		}
		balances[row[0]] = minor
	}
	return balances
}

// checkJournalCSV sums the CSV journal's postings per account and compares them with the
// trial balance.
func checkJournalCSV(t *testing.T, srv *server, currency string, tb map[string]any) {
	t.Helper()
	resp := srv.do(t, "GET", "/v1/ledger/journal?format=csv&currency="+currency, nil)
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("GET /v1/ledger/journal?format=csv: %d %s", resp.status, resp.header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(resp.body)).ReadAll()
	if err != nil || len(rows) < 2 || strings.Join(rows[0], ",") != "entry_id,posted_at,order_id,kind,document,account,debit,credit,currency" {
		t.Fatalf("CSV journal (%v):\n%s", err, resp.body)
	}
	sums := map[string][2]*big.Int{}
	for _, r := range rows[1:] {
		if r[8] != currency {
			t.Fatalf("a %s posting in the %s journal: %v", r[8], currency, r)
		}
		s, ok := sums[r[5]]
		if !ok {
			s = [2]*big.Int{new(big.Int), new(big.Int)}
			sums[r[5]] = s
		}
		for i, v := range r[6:8] {
			n, ok := new(big.Int).SetString(v, 10)
			if !ok {
				t.Fatalf("CSV amount %q", v)
			}
			s[i].Add(s[i], n)
		}
	}
	for _, a := range tb["accounts"].([]any) {
		acc := a.(map[string]any)
		s, ok := sums[acc["account"].(string)]
		if !ok {
			s = [2]*big.Int{new(big.Int), new(big.Int)}
		}
		if s[0].Cmp(jsonInt(t, acc["debit"])) != 0 || s[1].Cmp(jsonInt(t, acc["credit"])) != 0 {
			doc, _ := json.Marshal(acc)
			t.Errorf("CSV journal of %s: %s sums to debit %s credit %s; trial balance %s", currency, acc["account"], s[0], s[1], doc)
		}
	}
}
