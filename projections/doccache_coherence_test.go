package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
)

// docReader reads documents through a read store's cache, counting how often they are
// rendered from the tables.
type docReader struct {
	t       *testing.T
	read    *projections.ReadStore
	renders int
}

func (d *docReader) customer(id string) projections.Customer {
	d.t.Helper()
	return d.customerWith(id, func() ([]byte, error) {
		c, err := d.read.Customer(d.t.Context(), id, "USD")
		if err != nil {
			return nil, err
		}
		return json.Marshal(c)
	})
}

// customerWith reads a customer, rendering with render on a miss.
func (d *docReader) customerWith(id string, render func() ([]byte, error)) projections.Customer {
	d.t.Helper()
	body, err := d.read.CachedDocument("customers", id, func() ([]byte, error) {
		d.renders++
		return render()
	})
	if err != nil {
		d.t.Fatalf("customer %s: %v", id, err)
	}
	var c projections.Customer
	if err := json.Unmarshal(body, &c); err != nil {
		d.t.Fatal(err)
	}
	return c
}

func (d *docReader) stock(sku string) projections.StockLevel {
	d.t.Helper()
	body, err := d.read.CachedDocument("inventory", sku, func() ([]byte, error) {
		d.renders++
		s, err := d.read.StockLevel(d.t.Context(), sku)
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	})
	if err != nil {
		d.t.Fatalf("stock %s: %v", sku, err)
	}
	var s projections.StockLevel
	if err := json.Unmarshal(body, &s); err != nil {
		d.t.Fatal(err)
	}
	return s
}

func appendEvent(t *testing.T, env *projectionstest.Env, stream string, e domain.Event) eventstore.Position {
	t.Helper()
	return projectionstest.Append(t, env.Store, []historygen.Record{{Stream: stream, Event: e}})
}

func rename(t *testing.T, env *projectionstest.Env, id, name string) eventstore.Position {
	t.Helper()
	return appendEvent(t, env, domain.CustomerStream(id), domain.CustomerDetailsChanged{CustomerID: id, Name: &name, ChangedAt: projectionstest.Day(6, 9, 0)})
}

// TestCachedDocumentsFollowTheRunner: once the runner has reached a position, a document read
// through the cache includes it: across a change of the customer, of one of their orders only,
// of a stock level, across a read that overlaps the change, and across rebuilds in this process
// and in another one.
func TestCachedDocumentsFollowTheRunner(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		head := projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
		r := projectionstest.StartRunner(t, env)
		projectionstest.CatchUp(t, r, head)
		d := &docReader{t: t, read: env.Read}

		d.customer("alice")
		d.customer("alice")
		if d.renders != 1 {
			t.Fatalf("2 reads of alice rendered %d times, want 1: the cache is off while the runner runs", d.renders)
		}

		// A read that saw the rows before the runner committed a change and renders after it
		// must not leave its document behind.
		d.customerWith("bob", func() ([]byte, error) {
			old, err := env.Read.Customer(t.Context(), "bob", "USD")
			if err != nil {
				return nil, err
			}
			projectionstest.CatchUp(t, r, rename(t, env, "bob", "Bob One"), "customers")
			return json.Marshal(old)
		})
		if d.renders != 2 {
			t.Fatalf("bob, never read, was not rendered")
		}
		if c := d.customer("bob"); c.Name != "Bob One" {
			t.Fatalf("bob after the rename: %q, want Bob One", c.Name)
		}
		if c := d.customer("alice"); c.Name != "Alice Archer" || d.renders != 3 {
			t.Fatalf("alice after bob's rename: %q from %d renders, want Alice Archer from the cache", c.Name, d.renders)
		}
		projectionstest.CatchUp(t, r, rename(t, env, "alice", "Alice One"), "customers")
		if c := d.customer("alice"); c.Name != "Alice One" {
			t.Fatalf("alice after the rename: %q, want Alice One", c.Name)
		}

		// Delivering bob's order changes only the order's row, and his document with it.
		if c := d.customer("bob"); c.RecentOrders[0].Status != domain.StatusConfirmed {
			t.Fatalf("bob's order-2 before delivery: %+v", c.RecentOrders)
		}
		pos := appendEvent(t, env, domain.OrderStream("order-2"), domain.OrderDelivered{OrderID: "order-2", DeliveredAt: projectionstest.Day(6, 10, 0)})
		projectionstest.CatchUp(t, r, pos, "customers")
		if c := d.customer("bob"); c.RecentOrders[0].Status != domain.StatusDelivered {
			t.Fatalf("bob's order-2 after delivery: %+v", c.RecentOrders)
		}

		before := d.stock("SKU-A").OnHand
		pos = appendEvent(t, env, domain.StockStream("SKU-A"), domain.StockAdjusted{SKU: "SKU-A", Delta: 5, Reason: "count", AdjustedAt: projectionstest.Day(6, 11, 0)})
		projectionstest.CatchUp(t, r, pos, "inventory")
		if got := d.stock("SKU-A").OnHand; got != before+5 {
			t.Fatalf("SKU-A on hand after +5: %d, want %d", got, before+5)
		}

		// A rebuild puts back what the log says, whatever the tables held: the cache must not
		// keep the tampered name.
		tamper := func() {
			t.Helper()
			// The rename drops alice from the cache without changing her name; the next
			// read caches the tampered row.
			projectionstest.CatchUp(t, r, rename(t, env, "alice", "Alice One"), "customers")
			if err := projections.Exec(t.Context(), env.Read, "UPDATE rm_customers SET name = 'Tampered' WHERE customer_id = 'alice'"); err != nil {
				t.Fatal(err)
			}
			d.customer("alice")
			renders := d.renders
			if c := d.customer("alice"); c.Name != "Tampered" || d.renders != renders {
				t.Fatalf("alice once tampered with: %q, want Tampered from the cache", c.Name)
			}
		}
		tamper()
		// A customer the log never heard of, which the rebuild does not write but empties.
		if err := projections.Exec(t.Context(), env.Read, `INSERT INTO rm_customers (customer_id, name, email, phone, payment_preference,
			order_count, web_orders, store_orders, phone_orders)
			VALUES ('ghost', 'Ghost', 'ghost@example.com', '', '', 0, 0, 0, 0)`); err != nil {
			t.Fatal(err)
		}
		d.customer("ghost")
		if err := projections.Rebuild(t.Context(), env.Store, env.Read, []string{"customers"}, nil); err != nil {
			t.Fatal(err)
		}
		if c := d.customer("alice"); c.Name != "Alice One" {
			t.Fatalf("alice after a rebuild in this process: %q, want Alice One", c.Name)
		}
		if _, err := env.Read.CachedDocument("customers", "ghost", func() ([]byte, error) {
			_, err := env.Read.Customer(t.Context(), "ghost", "USD")
			return nil, err
		}); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("ghost after a rebuild in this process: %v, want not found", err)
		}

		// A rebuild by another process is learned of at the runner's next write: a read that
		// waits for a position past the rebuild sees what it wrote.
		tamper()
		other, err := projections.OpenReadStore(t.Context(), env.ReadDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := projections.Rebuild(t.Context(), env.Store, other, []string{"customers"}, nil); err != nil {
			t.Fatal(err)
		}
		projectionstest.CatchUp(t, r, rename(t, env, "bob", "Bobby"), "customers")
		if c := d.customer("alice"); c.Name != "Alice One" {
			t.Fatalf("alice after a rebuild in another process: %q, want Alice One", c.Name)
		}
	})
}

// TestNoCacheWithoutProjecting: a process that only follows the checkpoints another writes
// cannot know when a document changes, so it never caches one.
func TestNoCacheWithoutProjecting(t *testing.T) {
	env := projectionstest.OpenSQLite(t)
	head := projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
	projecting := projectionstest.StartRunner(t, env, projections.WithOwner("projecting"))
	projectionstest.CatchUp(t, projecting, head)

	readOnly, err := projections.OpenReadStore(t.Context(), env.ReadDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer readOnly.Close()
	follower := projectionstest.StartRunner(t, &projectionstest.Env{Backend: env.Backend, Store: env.Store, Read: readOnly, ReadDSN: env.ReadDSN},
		projections.WithFollowOnly())
	projectionstest.CatchUp(t, follower, head)
	d := &docReader{t: t, read: readOnly}
	d.customer("alice")
	pos := rename(t, env, "alice", "Alice Two")
	projectionstest.CatchUp(t, follower, pos, "customers")
	if c := d.customer("alice"); c.Name != "Alice Two" || d.renders != 2 {
		t.Fatalf("alice on the read-only store after the rename: %q from %d renders, want Alice Two rendered each time", c.Name, d.renders)
	}
}

// TestStoppedRunnerLeavesNoCache: once a runner stops running a projector, another process
// may write its tables, so this process's reads go to the tables again.
func TestStoppedRunnerLeavesNoCache(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		head := projectionstest.Append(t, env.Store, projectionstest.ScriptedHistory())
		first, err := projections.NewRunner(env.Store, env.Read, projections.WithOwner("first"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- first.Run(ctx) }()
		projectionstest.CatchUp(t, first, head)
		d := &docReader{t: t, read: env.Read}
		d.customer("alice")
		if d.customer("alice"); d.renders != 1 {
			t.Fatalf("2 reads of alice rendered %d times, want 1", d.renders)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		// The next runner, in another process, takes over and renames alice.
		other, err := projections.OpenReadStore(t.Context(), env.ReadDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		second := projectionstest.StartRunner(t, &projectionstest.Env{Backend: env.Backend, Store: env.Store, Read: other, ReadDSN: env.ReadDSN},
			projections.WithOwner("second"))
		projectionstest.CatchUp(t, second, rename(t, env, "alice", "Alice Three"), "customers")
		if c := d.customer("alice"); c.Name != "Alice Three" {
			t.Fatalf("alice read where the stopped runner ran: %q, want Alice Three", c.Name)
		}
	})
}
