package projections

import (
	"errors"
	"fmt"
	"testing"
)

// fixed renders doc, counting the calls.
func fixed(doc string, calls *int) func() ([]byte, error) {
	return func() ([]byte, error) {
		*calls++
		return []byte(doc), nil
	}
}

func TestDocCacheCachesOnlyWhileOn(t *testing.T) {
	c := newDocCache(10)
	calls := 0
	for range 2 {
		if doc, _ := c.document("k", fixed("v", &calls)); string(doc) != "v" {
			t.Fatalf("off: got %q", doc)
		}
	}
	if calls != 2 {
		t.Fatalf("a cache that is off rendered %d times for 2 reads, want 2", calls)
	}
	c.reset(true)
	calls = 0
	for range 3 {
		_, _ = c.document("k", fixed("v", &calls))
	}
	if calls != 1 {
		t.Fatalf("on: rendered %d times for 3 reads, want 1", calls)
	}
	c.reset(false)
	if doc, _ := c.document("k", fixed("w", &calls)); string(doc) != "w" {
		t.Fatalf("turned off: got %q, want the rendered w", doc)
	}
}

func TestDocCacheRefusesAReadOverlappingAChange(t *testing.T) {
	for name, change := range map[string]func(c *docCache){
		"forget the key":   func(c *docCache) { c.forget([]string{"k"}) },
		"reset":            func(c *docCache) { c.reset(true) },
		"off and on again": func(c *docCache) { c.reset(false); c.reset(true) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newDocCache(10)
			c.reset(true)
			// The read sees the rows before the commit; the commit's change lands while
			// it renders.
			_, _ = c.document("k", func() ([]byte, error) {
				change(c)
				return []byte("old"), nil
			})
			calls := 0
			if doc, _ := c.document("k", fixed("new", &calls)); string(doc) != "new" || calls != 1 {
				t.Fatalf("after the change: got %q from %d renders, want new, rendered", doc, calls)
			}
		})
	}
}

func TestDocCacheForgetsOnlyTheKeysChanged(t *testing.T) {
	c := newDocCache(10)
	c.reset(true)
	_, _ = c.document("a", fixed("a1", new(int)))
	_, _ = c.document("b", fixed("b1", new(int)))
	// A read of c under way while a changes is cached all the same: only a changed.
	_, _ = c.document("c", func() ([]byte, error) {
		c.forget([]string{"a"})
		return []byte("c1"), nil
	})
	calls := 0
	for key, want := range map[string]string{"a": "a2", "b": "b1", "c": "c1"} {
		if doc, _ := c.document(key, fixed(want[:1]+"2", &calls)); string(doc) != want {
			t.Errorf("%s: got %q, want %q", key, doc, want)
		}
	}
	if calls != 1 {
		t.Errorf("rendered %d times, want once (a)", calls)
	}
	if c.marks != nil {
		t.Errorf("marks kept with no read under way: %v", c.marks)
	}
}

func TestDocCacheGivesUpMarksPastItsBound(t *testing.T) {
	c := newDocCache(10)
	c.reset(true)
	keys := make([]string, docCacheMarks+1)
	for i := range keys {
		keys[i] = fmt.Sprint("other-", i)
	}
	_, _ = c.document("k", func() ([]byte, error) {
		c.forget(keys)
		return []byte("old"), nil
	})
	if len(c.marks) != 0 {
		t.Fatalf("%d marks kept past the bound", len(c.marks))
	}
	calls := 0
	if _, _ = c.document("k", fixed("new", &calls)); calls != 1 {
		t.Fatal("a read under way when the marks were given up was cached")
	}
}

func TestDocCacheNeverCachesAnError(t *testing.T) {
	c := newDocCache(10)
	c.reset(true)
	boom := errors.New("boom")
	if _, err := c.document("k", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	calls := 0
	if doc, _ := c.document("k", fixed("v", &calls)); string(doc) != "v" || calls != 1 {
		t.Fatalf("got %q from %d renders after an error, want v rendered", doc, calls)
	}
}

func TestDocCacheNeverCachesAPanic(t *testing.T) {
	c := newDocCache(10)
	c.reset(true)
	func() {
		defer func() { _ = recover() }()
		_, _ = c.document("k", func() ([]byte, error) { panic("boom") })
	}()
	calls := 0
	if doc, _ := c.document("k", fixed("v", &calls)); string(doc) != "v" || calls != 1 {
		t.Fatalf("got %q from %d renders after a panic, want v rendered", doc, calls)
	}
	if c.reads != 0 {
		t.Fatalf("%d reads still counted under way", c.reads)
	}
}

func TestDocCacheEvictsTheLeastRecentlyRead(t *testing.T) {
	c := newDocCache(2)
	c.reset(true)
	_, _ = c.document("a", fixed("a", new(int)))
	_, _ = c.document("b", fixed("b", new(int)))
	_, _ = c.document("a", fixed("a", new(int))) // a is now the most recently read
	_, _ = c.document("c", fixed("c", new(int))) // evicts b
	if c.lru.Len() != 2 {
		t.Fatalf("%d entries, want at most 2", c.lru.Len())
	}
	for key, cached := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok := c.byKey[key]; ok != cached {
			t.Errorf("%s cached: %v, want %v", key, ok, cached)
		}
	}
}

func TestDocCacheNilIsOff(t *testing.T) {
	var c *docCache
	c.reset(true)
	c.forget([]string{"k"})
	calls := 0
	for range 2 {
		_, _ = c.document("k", fixed("v", &calls))
	}
	if calls != 2 {
		t.Fatalf("a projector without a cache rendered %d times for 2 reads", calls)
	}
}

// TestChangedDocuments: a customer's document changes with any of their orders, even when the
// batch leaves their row alone.
func TestChangedDocuments(t *testing.T) {
	b := customersProjector{}.newBatch(dialect{}).(*customersBatch)
	b.customers["alice"] = &customerRow{CustomerID: "alice"}
	b.customers["bob"] = &customerRow{CustomerID: "bob"}
	b.orders["o1"] = &customerOrderRow{OrderID: "o1", CustomerID: "bob"}
	b.dirtyCustomers.add("alice")
	b.dirtyOrders.add("o1")
	if got := changedDocuments(b); fmt.Sprint(got) != "[alice bob]" {
		t.Errorf("customers: got %v, want [alice bob]", got)
	}
	inv := inventoryProjector{}.newBatch(dialect{}).(*inventoryBatch)
	inv.dirtyStock.add("SKU-A")
	inv.dirtyPOs.add("PO-1")
	if got := changedDocuments(inv); fmt.Sprint(got) != "[SKU-A]" {
		t.Errorf("inventory: got %v, want [SKU-A]", got)
	}
	if got := changedDocuments(ordersProjector{}.newBatch(dialect{})); got != nil {
		t.Errorf("orders: got %v, want none", got)
	}
}
