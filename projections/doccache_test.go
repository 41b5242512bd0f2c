package projections

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fixed renders doc, counting the calls.
func fixed(doc string, calls *int) func() ([]byte, error) {
	return func() ([]byte, error) {
		*calls++
		return []byte(doc), nil
	}
}

func TestDocCacheCachesOnlyWhileOn(t *testing.T) {
	c := newDocCache(10, docCacheBytes)
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
			c := newDocCache(10, docCacheBytes)
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
	c := newDocCache(10, docCacheBytes)
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
	c := newDocCache(10, docCacheBytes)
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
	c := newDocCache(10, docCacheBytes)
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
	c := newDocCache(10, docCacheBytes)
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
	c := newDocCache(2, docCacheBytes)
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

// The cache holds at most its bytes: a large document pushes out the least recently read, one
// larger than the whole bound is not kept, and forgetting or resetting counts bytes out.
func TestDocCacheBoundedInBytes(t *testing.T) {
	const doc = 100
	entry := docEntryBytes + 1 + doc // a one-letter key
	c := newDocCache(100, 3*entry)
	c.reset(true)
	body := string(make([]byte, doc))
	for _, k := range []string{"a", "b", "c", "d"} {
		_, _ = c.document(k, fixed(body, new(int)))
	}
	if documents, bytes := c.usage(); documents != 3 || bytes != 3*entry {
		t.Fatalf("%d documents, %d bytes; want 3 and %d", documents, bytes, 3*entry)
	}
	if _, ok := c.byKey["a"]; ok {
		t.Fatal("the least recently read was kept past the bound in bytes")
	}
	c.forget([]string{"b"})
	if _, bytes := c.usage(); bytes != 2*entry {
		t.Fatalf("%d bytes after forgetting one, want %d", bytes, 2*entry)
	}
	_, _ = c.document("huge", fixed(string(make([]byte, 4*entry)), new(int)))
	if _, ok := c.byKey["huge"]; ok {
		t.Fatal("a document larger than the whole bound was cached")
	}
	c.reset(true)
	if documents, bytes := c.usage(); documents != 0 || bytes != 0 {
		t.Fatalf("after a reset: %d documents, %d bytes", documents, bytes)
	}
}

func TestDocumentCacheOnMetrics(t *testing.T) {
	s := &ReadStore{docs: cachedProjectors()}
	s.docs["customers"].reset(true)
	_, _ = s.docs["customers"].document("C1", fixed("{}", new(int)))
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.DocumentCacheCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"orderledger_document_cache_bytes/customers": docEntryBytes + 2 + 2, "orderledger_document_cache_documents/customers": 1,
		"orderledger_document_cache_bytes/inventory": 0, "orderledger_document_cache_documents/inventory": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
