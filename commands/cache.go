package commands

import (
	"container/list"
	"sync"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

type eventRef struct {
	version  uint64
	position eventstore.Position
}

// cacheEntry is a folded stream. It is read and changed only under the stream's lock.
type cacheEntry struct {
	state    any   // the fold's state type
	version  int64 // of the last event folded; -1 for no stream
	position eventstore.Position
	// recent holds the IDs of the stream's last events, which recognise a command retried
	// soon after it was applied without a read; an older one is found in the store.
	recent recentEvents
	// snapshot is the version of the snapshot last loaded or saved; -1 for none.
	snapshot int64
	bytes    int // the size the cache counts for it
	elem     *list.Element
}

// recentLimit bounds the event IDs a cached stream keeps.
const recentLimit = 256

// recentEvents is a ring of a stream's last event IDs.
type recentEvents struct {
	at   map[uuid.UUID]eventRef
	ring []uuid.UUID
	next int
}

func (r *recentEvents) add(id uuid.UUID, ref eventRef) {
	if r.at == nil {
		r.at = make(map[uuid.UUID]eventRef)
	}
	if len(r.ring) < recentLimit {
		r.ring = append(r.ring, id)
	} else {
		delete(r.at, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentLimit
	}
	r.at[id] = ref
}

func (r *recentEvents) get(id uuid.UUID) (eventRef, bool) {
	ref, ok := r.at[id]
	return ref, ok
}

// Sizes the cache counts, in bytes: a rough measure of the heap an entry holds, for a bound on
// the whole cache that a few huge states cannot outgrow by hiding behind a count of entries.
const (
	entryBytes      = 512 // the entry, its list element, its map slot, a small state
	recentBytes     = 64  // one recent event ID with its map slot
	rememberedBytes = 96  // one order, return or document a state remembers, with its map slot
)

// remembering is a state that says how much it holds (domain.Stock, domain.Series).
type remembering interface{ Remembered() int }

func (e *cacheEntry) size() int {
	n := entryBytes + recentBytes*len(e.recent.ring)
	if r, ok := e.state.(remembering); ok {
		n += rememberedBytes * r.Remembered()
	}
	return n
}

// stateCache keeps the most recently used folded streams, up to a number of entries and a
// number of bytes, whichever is reached first.
type stateCache struct {
	mu       sync.Mutex
	limit    int
	maxBytes int
	bytes    int
	entries  map[string]*cacheEntry
	order    *list.List // front: most recent; values are stream names
}

func newStateCache(limit, maxBytes int) *stateCache {
	return &stateCache{limit: max(limit, 1), maxBytes: max(maxBytes, 1), entries: map[string]*cacheEntry{}, order: list.New()}
}

func (c *stateCache) get(stream string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[stream]
	if e != nil {
		c.order.MoveToFront(e.elem)
	}
	return e
}

// put caches e as stream's fold, counting its size anew, and evicts the least recently used
// entries past either bound; e itself stays, however large.
func (c *stateCache) put(stream string, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.entries[stream]
	if old != nil {
		c.bytes -= old.bytes
		if old != e {
			c.order.Remove(old.elem)
		}
	}
	if old != e {
		e.elem = c.order.PushFront(stream)
	} else {
		c.order.MoveToFront(e.elem)
	}
	e.bytes = e.size()
	c.bytes += e.bytes
	c.entries[stream] = e
	for c.order.Len() > 1 && (c.order.Len() > c.limit || c.bytes > c.maxBytes) {
		last := c.order.Back()
		name := last.Value.(string)
		c.bytes -= c.entries[name].bytes
		delete(c.entries, name)
		c.order.Remove(last)
	}
}

func (c *stateCache) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[stream]; e != nil {
		c.bytes -= e.bytes
		c.order.Remove(e.elem)
		delete(c.entries, stream)
	}
}

// usage returns the number of entries and the bytes counted.
func (c *stateCache) usage() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// idAt returns the ID of the recent event at version.
func (r *recentEvents) idAt(version uint64) (uuid.UUID, bool) {
	for id, ref := range r.at {
		if ref.version == version {
			return id, true
		}
	}
	return uuid.Nil, false
}
