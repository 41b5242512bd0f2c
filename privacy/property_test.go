package privacy_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
	"github.com/orderledger/orderledger/projections"
)

// TestNoPlaintextAndFiguresUnchanged: random interleavings of orders (with and without a
// shipping address), detail changes and erasures, through the command handler on a sealed
// SQLite store, never leave a customer's personal data in plaintext in the log, never leave an
// erased customer's anywhere in either database after a rebuild, and never change a money
// figure: every order's total and every customer's order count and order value come out of the
// rebuild as the model says, erasures or not.
func TestNoPlaintextAndFiguresUnchanged(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		dsn := "sqlite:" + filepath.Join(dir, "events.db")
		inner, err := stores.OpenEvents(t.Context(), dsn)
		if err != nil {
			rt.Fatal(err)
		}
		keys, err := privacy.Open(t.Context(), dsn, filepath.Join(dir, "master-key"), privacy.CreateIfNew())
		if err != nil {
			inner.Close()
			rt.Fatal(err)
		}
		store := privacy.Wrap(inner, keys)
		defer store.Close()
		handler := commands.NewHandler(store)
		ctx := t.Context()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		meta := func() commands.Meta { return commands.Meta{CommandID: uuid.New()} }
		if _, err := handler.ReceiveStock(ctx, domain.ReceiveStock{SKU: "S", Quantity: 1_000_000, At: now}, meta()); err != nil {
			rt.Fatal(err)
		}

		customers := []string{"c0", "c1", "c2"}
		personal := map[string][]string{} // every personal string given, by customer
		erased := map[string]bool{}
		orders := map[string]int64{} // order → total
		count := map[string]int64{}  // customer → orders placed
		value := map[string]int64{}  // customer → Σ totals
		for i, c := range customers {
			name := fmt.Sprintf("Name-%d-%s", i, rapid.StringMatching(`[a-z]{6}`).Draw(rt, "name"))
			email := fmt.Sprintf("mail-%d-%s@example.pt", i, rapid.StringMatching(`[a-z]{6}`).Draw(rt, "email"))
			if _, err := handler.RegisterCustomer(ctx, domain.RegisterCustomer{CustomerID: c, Name: name, Email: email, At: now}, meta()); err != nil {
				rt.Fatal(err)
			}
			personal[c] = append(personal[c], name, email)
		}

		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for step := range steps {
			c := rapid.SampledFrom(customers).Draw(rt, "customer")
			switch rapid.SampledFrom([]string{"order", "order", "change", "erase"}).Draw(rt, "action") {
			case "order":
				id := fmt.Sprintf("o%d", step)
				qty := rapid.Int64Range(1, 5).Draw(rt, "quantity")
				price := rapid.Int64Range(0, 100_000).Draw(rt, "price")
				address := ""
				if rapid.Bool().Draw(rt, "with address") {
					address = fmt.Sprintf("Street-%d-%s", step, rapid.StringMatching(`[a-z]{6}`).Draw(rt, "address"))
				}
				_, err := handler.PlaceOrder(ctx, domain.PlaceOrder{OrderID: id, CustomerID: c, Channel: "web", Currency: "EUR",
					Lines: []domain.OrderLine{{SKU: "S", Quantity: qty, UnitPrice: price}}, ShippingAddress: address, At: now}, meta())
				switch {
				case erased[c] && address != "":
					if !errors.Is(err, domain.ErrCustomerErased) {
						rt.Fatalf("order with an address for erased %s: %v, want ErrCustomerErased", c, err)
					}
				case err != nil:
					rt.Fatalf("order %s: %v", id, err)
				default:
					orders[id] = qty * price
					count[c]++
					value[c] += qty * price
					if address != "" {
						personal[c] = append(personal[c], address)
					}
				}
			case "change":
				email := fmt.Sprintf("new-%d-%s@example.pt", step, rapid.StringMatching(`[a-z]{6}`).Draw(rt, "new email"))
				_, err := handler.ChangeCustomerDetails(ctx, domain.ChangeCustomerDetails{CustomerID: c, Email: &email, At: now}, meta())
				switch {
				case erased[c]:
					if !errors.Is(err, domain.ErrCustomerErased) {
						rt.Fatalf("change of erased %s: %v, want ErrCustomerErased", c, err)
					}
				case err != nil:
					rt.Fatalf("change of %s: %v", c, err)
				default:
					personal[c] = append(personal[c], email)
				}
			case "erase":
				if _, err := handler.EraseCustomer(ctx, domain.EraseCustomer{CustomerID: c, At: now}, meta()); err != nil {
					rt.Fatalf("erase %s: %v", c, err)
				}
				erased[c] = true
			}
		}

		// The log as stored holds no personal string of anyone.
		var all [][]byte
		for from := (eventstore.Position{}); ; {
			page, err := privacy.Unwrap(store).ReadAll(ctx, from, 1000)
			if err != nil {
				rt.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				all = append(all, e.Data)
			}
			from = page[len(page)-1].Position
		}
		for c, strs := range personal {
			for _, s := range strs {
				for _, data := range all {
					if bytes.Contains(data, []byte(s)) {
						rt.Fatalf("the stored log holds %s's %q in plaintext: %s", c, s, data)
					}
				}
			}
		}

		// A rebuild gives every figure the model gives, and nothing of an erased customer.
		read, err := projections.OpenReadStore(ctx, "sqlite:"+filepath.Join(dir, "read.db"))
		if err != nil {
			rt.Fatal(err)
		}
		defer read.Close()
		if err := projections.Rebuild(ctx, store, read, nil, nil); err != nil {
			rt.Fatal(err)
		}
		for id, total := range orders {
			o, err := read.Order(ctx, id)
			if err != nil || o.Total != total {
				rt.Fatalf("order %s: total %d, %v; want %d", id, o.Total, err, total)
			}
		}
		for _, c := range customers {
			profile, err := read.Customer(ctx, c, "EUR")
			if err != nil {
				rt.Fatal(err)
			}
			if profile.OrderCount != count[c] || profile.Erased != erased[c] || (erased[c] && (profile.Name != "" || profile.Email != "")) {
				rt.Fatalf("customer %s after rebuild: %d orders, erased %v, name %q; want %d orders, erased %v",
					c, profile.OrderCount, profile.Erased, profile.Name, count[c], erased[c])
			}
			ids, err := read.CustomerOrderIDs(ctx, c)
			if err != nil {
				rt.Fatal(err)
			}
			var sum int64
			for _, id := range ids {
				sum += orders[id]
			}
			if sum != value[c] {
				rt.Fatalf("customer %s: orders worth %d after rebuild, want %d", c, sum, value[c])
			}
			if !erased[c] {
				continue
			}
			for _, file := range []string{"events.db", "read.db"} {
				for _, s := range personal[c] {
					if where := holding(t, filepath.Join(dir, file), s); where != "" {
						rt.Fatalf("erased %s's %q is in %s table %s", c, s, file, where)
					}
				}
			}
		}
	})
}

// holding returns the first table of the SQLite file at path with a row whose text holds s.
func holding(t *testing.T, path, s string) string {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, table := range tables {
		r, err := db.QueryContext(t.Context(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		columns, _ := r.Columns()
		for r.Next() {
			values := make([]any, len(columns))
			pointers := make([]any, len(columns))
			for i := range values {
				pointers[i] = &values[i]
			}
			if err := r.Scan(pointers...); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				text := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					text = string(b)
				}
				if strings.Contains(text, s) {
					r.Close()
					return table
				}
			}
		}
		r.Close()
	}
	return ""
}
