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
	seen     map[uuid.UUID]eventRef // every event ID in the stream: recognises retried commands
	elem     *list.Element
}

// stateCache keeps the most recently used folded streams.
type stateCache struct {
	mu      sync.Mutex
	limit   int
	entries map[string]*cacheEntry
	order   *list.List // front: most recent; values are stream names
}

func newStateCache(limit int) *stateCache {
	return &stateCache{limit: max(limit, 1), entries: map[string]*cacheEntry{}, order: list.New()}
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

func (c *stateCache) put(stream string, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[stream]; old != nil && old != e {
		c.order.Remove(old.elem)
	}
	if e.elem == nil || c.entries[stream] != e {
		e.elem = c.order.PushFront(stream)
	} else {
		c.order.MoveToFront(e.elem)
	}
	c.entries[stream] = e
	for c.order.Len() > c.limit {
		last := c.order.Back()
		delete(c.entries, last.Value.(string))
		c.order.Remove(last)
	}
}

func (c *stateCache) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[stream]; e != nil {
		c.order.Remove(e.elem)
		delete(c.entries, stream)
	}
}
