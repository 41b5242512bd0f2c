package e2e

import (
	"database/sql"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to read PostgreSQL tables as an auditor would
	_ "modernc.org/sqlite"             // the "sqlite" driver

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

// The personal data of the privacy tests' customer: each string must never be found in
// plaintext where the tests look.
var (
	personalName    = "Maria Personal-Data"
	personalEmail   = "maria.personal@example.pt"
	personalPhone   = "+351 912 000 111"
	personalAddress = "Rua dos Segredos 42, Porto"
	personalNewMail = "maria.new@example.pt"
)

func personalStrings() []string {
	return []string{personalName, personalEmail, personalPhone, personalAddress, personalNewMail}
}

// placePersonalOrders registers the customer C-PD, changes their e-mail and places an order
// with a shipping address; it returns the last write's position.
func placePersonalOrders(t *testing.T, s *server) string {
	t.Helper()
	s.expect(t, 201, "POST", "/v1/customers", map[string]any{
		"customer_id": "C-PD", "name": personalName, "email": personalEmail, "phone": personalPhone,
	})
	s.expect(t, 200, "PUT", "/v1/customers/C-PD", map[string]any{"email": personalNewMail})
	s.expect(t, 200, "POST", "/v1/inventory/SKU-PD/receipts", map[string]any{"quantity": 10})
	placed := s.expect(t, 201, "POST", "/v1/orders", map[string]any{
		"order_id": "O-PD", "customer_id": "C-PD", "channel": "web", "currency": "EUR",
		"lines": []map[string]any{{"sku": "SKU-PD", "quantity": 2, "unit_price": 1250}}, "shipping_address": personalAddress,
	})
	return placed["position"].(string)
}

// TestPersonalDataIsEncryptedAtRest: the events table of either store and an export hold the
// customer's name, e-mail, phone and address only as ciphertext, while the API answers them.
func TestPersonalDataIsEncryptedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		s := startServer(t, events)
		pos := placePersonalOrders(t, s)
		customer := s.expect(t, 200, "GET", "/v1/customers/C-PD?after="+pos, nil)
		if customer["name"] != personalName || customer["email"] != personalNewMail || customer["phone"] != personalPhone {
			t.Errorf("GET /v1/customers/C-PD = %v; want the plaintext details", customer)
		}
		for _, found := range tablesHolding(t, events, personalStrings(), "events") {
			t.Errorf("the events table holds in plaintext: %s", found)
		}
		for _, secret := range personalStrings() {
			if out := export(t, events); strings.Contains(out, secret) {
				t.Errorf("orderledger export holds %q in plaintext", secret)
			}
		}
	})
}

// export runs orderledger export on the event store and returns what it wrote.
func export(t *testing.T, events string) string {
	t.Helper()
	cmd := exec.Command(binary, "export", "--events", events)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orderledger export: %v", err)
	}
	return string(out)
}

// tablesHolding returns "table: secret" for every secret found in a row of the named tables
// (every table of the store's database when none is named), every column read as text.
func tablesHolding(t *testing.T, events string, secrets []string, only ...string) []string {
	t.Helper()
	driver, source := "pgx", events
	list := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if kind, _ := stores.KindOf(events); kind == stores.SQLite {
		driver, source = "sqlite", stores.SQLitePath(events)
		list = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := only
	if len(tables) == 0 {
		rows, err := db.QueryContext(t.Context(), list)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		rows.Close()
	}
	var found []string
	for _, table := range tables {
		rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		columns, _ := rows.Columns()
		for rows.Next() {
			values := make([]any, len(columns))
			pointers := make([]any, len(columns))
			for i := range values {
				pointers[i] = &values[i]
			}
			if err := rows.Scan(pointers...); err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for _, v := range values {
				if b, ok := v.([]byte); ok {
					text.Write(b)
				} else {
					fmt.Fprint(&text, v)
				}
				text.WriteByte(' ')
			}
			for _, secret := range secrets {
				if strings.Contains(text.String(), secret) {
					found = append(found, table+": "+secret)
				}
			}
		}
		rows.Close()
	}
	return found
}

// TestErasure shows a customer everything held about them, then forgets them, on both
// stores: afterwards the personal fields are null on every route and absent from every table
// and from an export, every figure is unchanged, writes adding personal data are refused, and
// audit verify, projections rebuild and projections verify pass; a restarted server agrees.
func TestErasure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		s := startServer(t, events)
		placedAt := placePersonalOrders(t, s)
		var invoiced map[string]any
		eventually(t, "order O-PD invoiced", func() []string {
			invoiced = s.expect(t, 200, "GET", "/v1/orders/O-PD?after="+placedAt, nil)
			if invoiced["invoice_number"] == nil || invoiced["invoice_number"] == "" {
				return []string{fmt.Sprintf("invoice_number %v", invoiced["invoice_number"])}
			}
			return nil
		})
		s.expect(t, 200, "POST", "/v1/orders/O-PD/payments", map[string]any{"amount": 1000, "method": "card"})
		pos := s.expect(t, 200, "POST", "/v1/inventory/SKU-PD/receipts", map[string]any{"quantity": 1})["position"].(string)
		figures := func(after string) map[string]any {
			customer := s.expect(t, 200, "GET", "/v1/customers/C-PD?after="+after, nil)
			return map[string]any{
				"lifetime_value": customer["lifetime_value"], "outstanding_balance": customer["outstanding_balance"],
				"order_count": customer["order_count"], "by_currency": fmt.Sprint(customer["by_currency"]),
				"sales":  fmt.Sprint(s.expect(t, 200, "GET", "/v1/sales/summary?after="+after, nil)),
				"ledger": fmt.Sprint(s.expect(t, 200, "GET", "/v1/ledger/trial-balance?after="+after, nil)),
				"order":  fmt.Sprint(s.expect(t, 200, "GET", "/v1/orders/O-PD?after="+after, nil)),
			}
		}
		before := figures(pos)

		// Right of access: every piece, where it came from, how it is stored.
		access := s.expect(t, 200, "GET", "/v1/customers/C-PD/personal-data?after="+pos, nil)
		got := map[string]bool{}
		for _, raw := range access["items"].([]any) {
			item := raw.(map[string]any)
			source := item["source"].(map[string]any)
			got[fmt.Sprintf("%s=%v %s %s", item["field"], item["value"], item["stored"], source["type"])] = true
		}
		for _, want := range []string{
			"name=" + personalName + " encrypted CustomerRegistered.v1",
			"email=" + personalEmail + " encrypted CustomerRegistered.v1",
			"phone=" + personalPhone + " encrypted CustomerRegistered.v1",
			"email=" + personalNewMail + " encrypted CustomerDetailsChanged.v1",
			"shipping_address=" + personalAddress + " encrypted OrderPlaced.v1",
		} {
			if !got[want] {
				t.Errorf("personal data lacks %q: %v", want, got)
			}
		}
		if access["erased"] != false || len(access["copies"].([]any)) != 1 {
			t.Errorf("personal data: erased %v, copies %v", access["erased"], access["copies"])
		}
		s.expect(t, 404, "GET", "/v1/customers/NOBODY/personal-data", nil)
		s.expect(t, 404, "DELETE", "/v1/customers/NOBODY/personal-data", nil)

		// Right to erasure.
		erased := s.expect(t, 200, "DELETE", "/v1/customers/C-PD/personal-data", nil)["position"].(string)
		again := s.expect(t, 200, "DELETE", "/v1/customers/C-PD/personal-data", map[string]any{})["position"].(string)
		if again != erased {
			t.Errorf("a second erasure answers position %s, want the first's %s", again, erased)
		}
		customer := s.expect(t, 200, "GET", "/v1/customers/C-PD?after="+erased, nil)
		for _, field := range []string{"name", "email", "phone"} {
			if v, ok := customer[field]; !ok || v != nil {
				t.Errorf("erased customer's %s = %v, want null", field, v)
			}
		}
		if customer["erased"] != true {
			t.Errorf("erased customer shows erased %v", customer["erased"])
		}
		list := s.expect(t, 200, "GET", "/v1/customers?after="+erased, nil)
		for _, raw := range list["items"].([]any) {
			if c := raw.(map[string]any); c["customer_id"] == "C-PD" && (c["name"] != nil || c["erased"] != true) {
				t.Errorf("GET /v1/customers lists the erased customer as %v", c)
			}
		}
		history := s.expect(t, 200, "GET", "/v1/orders/O-PD/history", nil)
		placed := history["events"].([]any)[0].(map[string]any)["data"].(map[string]any)
		if v, ok := placed["shipping_address"]; !ok || v != nil || placed["total"] != float64(2500) {
			t.Errorf("history after erasure: %v, want shipping_address null and the total", placed)
		}
		access = s.expect(t, 200, "GET", "/v1/customers/C-PD/personal-data?after="+erased, nil)
		for _, raw := range access["items"].([]any) {
			if item := raw.(map[string]any); item["value"] != nil || item["stored"] != "erased" {
				t.Errorf("after erasure personal data holds %v", item)
			}
		}
		if access["erased"] != true || len(access["copies"].([]any)) != 0 {
			t.Errorf("after erasure: erased %v, copies %v", access["erased"], access["copies"])
		}
		if after := figures(erased); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("figures changed by the erasure:\nbefore %v\nafter  %v", before, after)
		}

		// Nothing personal may be added; the rest goes on.
		problem := s.expect(t, 409, "PUT", "/v1/customers/C-PD", map[string]any{"email": "back@example.com"})
		if problem["code"] != "customer_erased" {
			t.Errorf("PUT email of an erased customer: %v", problem)
		}
		s.expect(t, 200, "PUT", "/v1/customers/C-PD", map[string]any{"payment_preference": "invoice"})
		order := map[string]any{"order_id": "O-PD2", "customer_id": "C-PD", "channel": "web", "currency": "EUR",
			"lines": []map[string]any{{"sku": "SKU-PD", "quantity": 1, "unit_price": 100}}, "shipping_address": "Somewhere 1"}
		if problem := s.expect(t, 409, "POST", "/v1/orders", order); problem["code"] != "customer_erased" {
			t.Errorf("an order with an address for an erased customer: %v", problem)
		}
		delete(order, "shipping_address")
		last := s.expect(t, 201, "POST", "/v1/orders", order)["position"].(string)
		eventually(t, "order O-PD2 invoiced", func() []string {
			if o := s.expect(t, 200, "GET", "/v1/orders/O-PD2?after="+last, nil); o["invoice_number"] == nil {
				return []string{"not invoiced yet"}
			}
			return nil
		})
		final := figures(s.expect(t, 200, "POST", "/v1/inventory/SKU-PD/receipts", map[string]any{"quantity": 1})["position"].(string))

		for _, found := range tablesHolding(t, events, personalStrings()) {
			t.Errorf("after erasure a table holds: %s", found)
		}
		if out := export(t, events); strings.Contains(out, personalName) || strings.Contains(out, personalAddress) {
			t.Errorf("an export after erasure holds personal data")
		}
		s.stop(t)
		for _, args := range [][]string{{"audit", "verify"}, {"projections", "rebuild"}, {"projections", "verify"}} {
			cmd := exec.Command(binary, append(args, "--events", events)...)
			cmd.Env = cleanEnv()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("orderledger %s after erasure: %v\n%s", strings.Join(args, " "), err, tail(string(out), 20))
			}
		}
		for _, found := range tablesHolding(t, events, personalStrings()) {
			t.Errorf("after a rebuild a table holds: %s", found)
		}
		s = startServer(t, events)
		customer = s.expect(t, 200, "GET", "/v1/customers/C-PD?after="+last, nil)
		if customer["name"] != nil || customer["erased"] != true {
			t.Errorf("after a rebuild and restart the customer reads %v", customer)
		}
		if rebuilt := figures(last); fmt.Sprint(rebuilt) != fmt.Sprint(final) {
			t.Errorf("figures changed by the rebuild:\nbefore %v\nafter  %v", final, rebuilt)
		}
	})
}

// TestErasureOfPlaintextHistory: a customer registered before personal data was encrypted
// (their registration appended in plaintext, as an older version wrote it) cannot be erased,
// and the answer says why; the right of access shows the plaintext for what it is.
func TestErasureOfPlaintextHistory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, events string) {
		s := startServer(t, events)
		raw := openRawStore(t, events)
		_, err := raw.Append(t.Context(), "customer-C-OLD", eventstore.NoStream(), eventstore.EventData{
			ID: uuid.New(), Type: "CustomerRegistered.v1",
			Data: []byte(`{"customer_id":"C-OLD","name":"Old Timer","email":"old@example.com","registered_at":"2020-01-01T00:00:00Z"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		problem := s.expect(t, 409, "DELETE", "/v1/customers/C-OLD/personal-data", nil)
		detail, _ := problem["detail"].(string)
		if problem["code"] != "erasure_unavailable" || !strings.Contains(detail, "customer-C-OLD version 0") || !strings.Contains(detail, "plaintext") {
			t.Errorf("erasure of a plaintext registration: %v", problem)
		}
		access := s.expect(t, 200, "GET", "/v1/customers/C-OLD/personal-data", nil)
		for _, item := range access["items"].([]any) {
			if item.(map[string]any)["stored"] != "plaintext" {
				t.Errorf("a plaintext registration shows as %v", item)
			}
		}
	})
}
