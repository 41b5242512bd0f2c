package projections

import (
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The read store keeps the rendered documents of GET /v1/customers/{id} and
// GET /v1/inventory/{sku} in memory, so that a read answers without a round trip to the
// database. The cache is exactly as fresh as the read model:
//
//   - It is on only while a Runner of this process holds the projector's lease and runs it,
//     so that every write to the projector's tables goes through commitBatch here, which
//     drops the documents a batch changed once it has committed and before the Runner
//     publishes its position: a read that waited for a position (?after=) finds either
//     nothing or a document that includes it.
//   - A Runner turns it off, emptying it, whenever it stops running the projector (lease
//     lost or freed, error, shutdown), before it publishes any position it did not write
//     itself; a rebuild in this process turns it off as it takes the projector over. A
//     process that serves reads without projecting (serve --roles read) never turns it on.
//   - A document read from the database is cached only if no change to it (and no emptying)
//     happened since the read began: a read that began before a commit may have seen the
//     rows before it, and must not bring them back after the commit dropped them.
//
// Another process that takes the projector over (a rebuild, or a Runner once this one's lease
// lapsed while it stalled) writes the tables without this process knowing until its Runner's
// next transaction is refused, at most a third of the lease later; the Runner then empties
// the cache as it stands by. Meanwhile reads answer the documents as this Runner left them,
// and ?after= waits do not move past what it projected.

// docCacheEntries and docCacheBytes bound the documents cached per projector, whichever is
// reached first; the least recently read go first. A customer document, with its ten recent
// orders, is about 1 KiB; a SKU's with many open purchase orders can be far larger, which a
// bound on entries alone would not see.
const (
	docCacheEntries = 10000
	docCacheBytes   = 16 << 20
)

// docEntryBytes is what a cached document costs beside its key and bytes: its entry, list
// element and map slot.
const docEntryBytes = 128

// docCacheMarks bounds the changes remembered for the reads under way; past it, those reads
// are all refused rather than remembered one by one.
const docCacheMarks = 4096

// cachedProjectors makes the caches of the projectors whose documents are cached.
func cachedProjectors() map[string]*docCache {
	return map[string]*docCache{
		customersProjector{}.name(): newDocCache(docCacheEntries, docCacheBytes),
		inventoryProjector{}.name(): newDocCache(docCacheEntries, docCacheBytes),
	}
}

// changedDocuments returns the keys of the cached documents a batch changes: customers whose
// profile or orders it changes, SKUs whose stock level it changes; nil for a projector whose
// documents are not cached.
func changedDocuments(b batch) []string {
	switch b := b.(type) {
	case *customersBatch:
		var ids keySet
		for _, id := range b.dirtyCustomers.keys {
			ids.add(id)
		}
		// A customer's document lists their recent orders: an order's change is theirs too,
		// whether or not the batch rewrites their row.
		for _, id := range b.dirtyOrders.keys {
			if o := b.orders[id]; o != nil {
				ids.add(o.CustomerID)
			}
		}
		return ids.keys
	case *inventoryBatch:
		return append([]string(nil), b.dirtyStock.keys...)
	}
	return nil
}

// CachedDocument returns the document key of a projector's read model (the customer ID for
// "customers", the SKU for "inventory"), from the cache or else from render, whose answer is
// cached when that is sound (see above). render's errors are returned and never cached.
// The document must not be modified: it is shared with every read of the key.
func (s *ReadStore) CachedDocument(projector, key string, render func() ([]byte, error)) ([]byte, error) {
	return s.docs[projector].document(key, render)
}

// CacheVariant reports whether documents of a projector rendered for variant (the base
// currency a customer document is in) may go through CachedDocument: the first variant asked
// for does, any other does not, so that a process whose read routes answer in two base
// currencies (tests do) never answers one's cached document for the other.
func (s *ReadStore) CacheVariant(projector, variant string) bool {
	s.variantsMu.Lock()
	defer s.variantsMu.Unlock()
	if s.variants == nil {
		s.variants = map[string]string{}
	}
	if first, ok := s.variants[projector]; ok {
		return first == variant
	}
	s.variants[projector] = variant
	return true
}

// startCaching empties a projector's cache and turns it on: this process now holds its lease
// and runs it.
func (s *ReadStore) startCaching(projector string) { s.docs[projector].reset(true) }

// stopCaching empties a projector's cache and turns it off: this process no longer knows of
// every write to its tables.
func (s *ReadStore) stopCaching(projector string) { s.docs[projector].reset(false) }

// forgetDocuments drops the documents of keys from a projector's cache, after the commit that
// changed them and before the projector's position moves past it.
func (s *ReadStore) forgetDocuments(projector string, keys []string) {
	s.docs[projector].forget(keys)
}

// docCache is one projector's cache, an LRU of rendered documents by key. Its methods do
// nothing on a nil cache: a projector without one.
type docCache struct {
	max      int
	maxBytes int

	mu      sync.Mutex
	enabled bool
	// seq counts changes (forget, reset); a read from the database takes it as its ticket.
	seq uint64
	// floor: a read whose ticket is below it is not cached (a reset, or marks given up).
	floor uint64
	// reads counts reads from the database under way; marks holds, while there are any, the
	// seq at which each key last changed.
	reads int
	marks map[string]uint64
	lru   *list.List // of *docEntry, most recently read first
	byKey map[string]*list.Element
	bytes int // the documents' sizes, as docEntry.size counts them
}

type docEntry struct {
	key string
	doc []byte
}

func (e *docEntry) size() int { return docEntryBytes + len(e.key) + len(e.doc) }

func newDocCache(max, maxBytes int) *docCache {
	return &docCache{max: max, maxBytes: maxBytes, lru: list.New(), byKey: map[string]*list.Element{}}
}

// remove drops an entry, counting its bytes out.
func (c *docCache) remove(e *list.Element) {
	entry := e.Value.(*docEntry)
	c.lru.Remove(e)
	delete(c.byKey, entry.key)
	c.bytes -= entry.size()
}

// usage returns the documents cached and their bytes.
func (c *docCache) usage() (documents, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}

// document answers key from the cache, or renders it and caches the result if nothing
// changed it meanwhile.
func (c *docCache) document(key string, render func() ([]byte, error)) (doc []byte, err error) {
	if c == nil {
		return render()
	}
	doc, hit, ticket, caching := c.lookup(key)
	switch {
	case hit:
		return doc, nil
	case !caching:
		return render()
	}
	// A render that panics ends the read too, and caches nothing.
	rendered := false
	defer func() { c.fill(ticket, key, doc, rendered) }()
	doc, err = render()
	rendered = err == nil
	return doc, err
}

// lookup returns key's document if it is cached; otherwise, when the cache is on, it counts a
// read under way and returns its ticket.
func (c *docCache) lookup(key string) (doc []byte, hit bool, ticket uint64, caching bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return nil, false, 0, false
	}
	if e, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*docEntry).doc, true, 0, true
	}
	c.reads++
	return nil, false, c.seq, true
}

// fill ends a read that began at ticket, caching doc if store is set and neither a change to
// key nor a reset happened since the read began.
func (c *docCache) fill(ticket uint64, key string, doc []byte, store bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads--
	stale := !c.enabled || ticket < c.floor || c.marks[key] > ticket
	if c.reads == 0 {
		// No read began before the changes marked: none can be stale because of them.
		c.marks = nil
	}
	if !store || stale {
		return
	}
	if e, ok := c.byKey[key]; ok {
		// Another read of the same key, from the same rows, filled it first.
		c.lru.MoveToFront(e)
		return
	}
	entry := &docEntry{key: key, doc: doc}
	c.byKey[key] = c.lru.PushFront(entry)
	c.bytes += entry.size()
	for c.lru.Len() > c.max || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// forget drops keys and, for the reads under way, remembers that they changed.
func (c *docCache) forget(keys []string) {
	if c == nil || len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return
	}
	c.seq++
	for _, k := range keys {
		if e, ok := c.byKey[k]; ok {
			c.remove(e)
		}
	}
	switch {
	case c.reads == 0:
		// A read that begins from now on sees the committed rows.
	case len(c.marks)+len(keys) > docCacheMarks:
		// Refusing every read under way is as sound as remembering each key.
		c.floor, c.marks = c.seq, nil
	default:
		if c.marks == nil {
			c.marks = make(map[string]uint64, len(keys))
		}
		for _, k := range keys {
			c.marks[k] = c.seq
		}
	}
}

// reset empties the cache, refuses the reads under way, and turns it on or off.
func (c *docCache) reset(enabled bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.floor, c.marks, c.enabled = c.seq, nil, enabled
	c.lru.Init()
	clear(c.byKey)
	c.bytes = 0
}

var (
	docCacheBytesDesc = prometheus.NewDesc("orderledger_document_cache_bytes",
		"Bytes of the rendered documents the read store caches (keys and overhead included), by projector.", []string{"projector"}, nil)
	docCacheDocumentsDesc = prometheus.NewDesc("orderledger_document_cache_documents",
		"Rendered documents the read store caches, by projector.", []string{"projector"}, nil)
)

// DocumentCacheCollector exports the size of the read store's document caches.
func (s *ReadStore) DocumentCacheCollector() prometheus.Collector { return docCacheCollector{s} }

type docCacheCollector struct{ s *ReadStore }

func (c docCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- docCacheBytesDesc
	ch <- docCacheDocumentsDesc
}

func (c docCacheCollector) Collect(ch chan<- prometheus.Metric) {
	for name, cache := range c.s.docs {
		documents, bytes := cache.usage()
		ch <- prometheus.MustNewConstMetric(docCacheBytesDesc, prometheus.GaugeValue, float64(bytes), name)
		ch <- prometheus.MustNewConstMetric(docCacheDocumentsDesc, prometheus.GaugeValue, float64(documents), name)
	}
}
