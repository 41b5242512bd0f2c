package projections

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Sizes of a Runner's log feed.
const (
	// feedKeep is about how many of the latest events the feed keeps for its readers: a
	// projector further behind than that reads the event store itself until it is back
	// among them.
	feedKeep = 8192
	// feedBatch bounds the events a reader takes at once, from the feed or the store: one
	// transaction of a projector that fell behind.
	feedBatch = 1024
)

// logFeed reads the log once for every projector of a Runner: one subscription (the tap)
// keeps the latest events, decoded once, and each projector takes them from there at its own
// pace. Without it each projector subscribed on its own, and the database answered every
// read of the log as many times as there are projectors, which under a heavy write load cost
// more than the projectors' own writes; and a projector waited for its next read after each
// commit, where now the tap has read on in the meantime.
//
// The kept events are contiguous: base is the position of the event just before the first
// kept one, so a reader at a position from base on finds what follows it here, and a reader
// before base reads the store up to base and then carries on here. A slow or stopped reader
// holds no other back: the feed drops its oldest events whoever still needs them.
type logFeed struct {
	store eventstore.Store
	// wants reports whether a projector of the Runner needs events of a type: the tap
	// decodes those.
	wants func(eventType string) bool
	keep  int

	mu sync.Mutex
	// ctx bounds the tap's subscription; set by Runner.Run.
	ctx     context.Context
	tapping bool // the tap runs
	started bool // base is known
	base    eventstore.Position
	chunks  []feedChunk
	kept    int
	err     error         // why the tap stopped, until it starts again
	changed chan struct{} // closed and replaced when events arrive or the tap stops
}

// feedChunk is a batch of the log as the tap received it, with each event decoded.
type feedChunk struct {
	events  []eventstore.Event
	decoded []decodedEvent
}

// decodedEvent is an event as a projector needs it: data when some projector handles its
// type, err when it cannot be decoded (an unknown type is broken for every projector, a
// malformed one only for those that handle its type).
type decodedEvent struct {
	data domain.Event
	err  error
}

func newLogFeed(store eventstore.Store, wants func(string) bool, keep int) *logFeed {
	return &logFeed{store: store, wants: wants, keep: keep, changed: make(chan struct{})}
}

// open lets the tap run within ctx: the Runner's life.
func (f *logFeed) open(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = ctx
}

// follow calls handle with every event after from, in order, with the decoded events when
// they come from the feed (nil when they come from the store), until ctx ends, handle fails,
// or the tap does while this reader waits for it.
func (f *logFeed) follow(ctx context.Context, from eventstore.Position, handle func(context.Context, []eventstore.Event, []decodedEvent) error) error {
	f.mu.Lock()
	if !f.tapping {
		// The first reader, or one retrying after the tap failed under it.
		f.startTap()
	}
	f.mu.Unlock()
	for {
		events, decoded, behind, wait, err := f.next(from)
		switch {
		case err != nil:
			return err
		case len(events) > 0:
			if err := handle(ctx, events, decoded); err != nil {
				return err
			}
			from = events[len(events)-1].Position
		case behind != nil:
			n, err := f.catchUp(ctx, from, *behind, handle)
			if err != nil {
				return err
			}
			from = n
		default:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wait:
			}
		}
	}
}

// next returns the kept events after from (at most feedBatch); or, when from is before
// what is kept, the position up to which the reader must read the store; or else a channel
// closed when there may be more. A reader that would have to wait for a tap that stopped
// gets the reason instead.
func (f *logFeed) next(from eventstore.Position) (events []eventstore.Event, decoded []decodedEvent, behind *eventstore.Position, wait <-chan struct{}, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started && from.Compare(f.base) < 0 {
		base := f.base
		return nil, nil, &base, nil, nil
	}
	// The first chunk with an event after from, and the first such event in it.
	i := sort.Search(len(f.chunks), func(i int) bool {
		c := f.chunks[i].events
		return c[len(c)-1].Position.Compare(from) > 0
	})
	if i < len(f.chunks) {
		c := f.chunks[i]
		j := sort.Search(len(c.events), func(j int) bool { return c.events[j].Position.Compare(from) > 0 })
		events, decoded = c.events[j:min(len(c.events), j+feedBatch)], c.decoded[j:min(len(c.events), j+feedBatch)]
		// Join the chunks that follow, so that a reader that fell behind a little writes
		// them in one transaction rather than one per chunk.
		for i++; i < len(f.chunks) && len(events) < feedBatch; i++ {
			c := f.chunks[i]
			n := min(len(c.events), feedBatch-len(events))
			events = append(events[:len(events):len(events)], c.events[:n]...)
			decoded = append(decoded[:len(decoded):len(decoded)], c.decoded[:n]...)
		}
		return events, decoded, nil, nil, nil
	}
	if !f.tapping {
		return nil, nil, nil, nil, f.err
	}
	return nil, nil, nil, f.changed, nil
}

// startTap starts the tap from the last event kept or, the first time, from the head of the
// log. Called with mu held.
func (f *logFeed) startTap() {
	ctx := f.ctx
	if ctx == nil {
		f.err = errors.New("projections: the log feed is not open")
		return
	}
	f.tapping, f.err = true, nil
	started, from := f.started, f.base
	if n := len(f.chunks); n > 0 {
		last := f.chunks[n-1].events
		from = last[len(last)-1].Position
	}
	go func() {
		err := f.tap(ctx, started, from)
		f.mu.Lock()
		defer f.mu.Unlock()
		if err == nil {
			err = errors.New("projections: the log subscription ended")
		}
		f.tapping, f.err = false, err
		f.broadcast()
	}()
}

// tap subscribes to the log and keeps what it delivers.
func (f *logFeed) tap(ctx context.Context, started bool, from eventstore.Position) error {
	if !started {
		// Readers before the head read the store up to it, as fast as it answers; the
		// feed keeps what comes after.
		head, err := f.store.Head(ctx)
		if err != nil {
			return err
		}
		from = head
		f.mu.Lock()
		f.started, f.base = true, head
		f.broadcast()
		f.mu.Unlock()
	}
	return f.store.Subscribe(ctx, from, func(_ context.Context, batch []eventstore.Event) error {
		// The adapters hand over a new slice for each batch, but the port does not promise
		// it, and these are kept.
		events := append([]eventstore.Event(nil), batch...)
		f.add(feedChunk{events: events, decoded: decodeAll(events, f.wants)})
		return nil
	})
}

// add keeps a chunk, drops the oldest beyond keep, and wakes the readers.
func (f *logFeed) add(c feedChunk) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunks = append(f.chunks, c)
	f.kept += len(c.events)
	drop := 0
	for f.kept > f.keep && drop < len(f.chunks)-1 {
		old := f.chunks[drop].events
		f.base = old[len(old)-1].Position
		f.kept -= len(old)
		drop++
	}
	if drop > 0 {
		f.chunks = append(f.chunks[:0:0], f.chunks[drop:]...)
	}
	f.broadcast()
}

// broadcast wakes the readers waiting. Called with mu held.
func (f *logFeed) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// catchUp reads the store from `from` up to base, for a reader behind what the feed keeps,
// and returns where it got to.
func (f *logFeed) catchUp(ctx context.Context, from, base eventstore.Position, handle func(context.Context, []eventstore.Event, []decodedEvent) error) (eventstore.Position, error) {
	for from.Compare(base) < 0 {
		events, err := f.store.ReadAll(ctx, from, feedBatch)
		if err != nil {
			return from, err
		}
		n := sort.Search(len(events), func(i int) bool { return events[i].Position.Compare(base) > 0 })
		if n == 0 {
			// base was read once, so the store has every event up to it: this is an
			// adapter breaking its promise, not something to wait out.
			return from, errors.New("projections: the event store returned nothing before an event it had returned")
		}
		if err := handle(ctx, events[:n], nil); err != nil {
			return from, err
		}
		from = events[n-1].Position
	}
	return from, nil
}

// decodeAll decodes the events some projector wants. Events of other known types are left
// undecoded; an unknown type is an error for everyone.
func decodeAll(events []eventstore.Event, wants func(string) bool) []decodedEvent {
	out := make([]decodedEvent, len(events))
	for i, ev := range events {
		switch {
		case !domain.KnownEventType(ev.Type):
			out[i].err = errUnknownType
		case wants(ev.Type):
			out[i].data, out[i].err = domain.DecodeEvent(ev.Type, ev.Data)
		}
	}
	return out
}

// errUnknownType: an event of a type no one knows, which no projector may skip.
var errUnknownType = errors.New("unknown event type")
