package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Defaults of a Broadcaster.
const (
	// DefaultKeep is how many of the latest events the Broadcaster keeps at least (at most
	// twice as many): a client resuming from further back reads the store first.
	DefaultKeep = 4096
	// DefaultBuffer is how many events may wait for one client before it counts as too slow
	// and is disconnected.
	DefaultBuffer = 1024
	// DefaultCoalesce is the least time between two writes to one client, unless half its
	// buffer is waiting: a live event waits at most this long, and a busy log costs each
	// client a few writes a second.
	DefaultCoalesce = 100 * time.Millisecond
	// catchUpPage is how many events a resuming client reads from the store at once.
	catchUpPage = 500
	// catchUpReaders bounds the clients that read the store at once, so many clients resuming
	// together do not take every connection of the pool.
	catchUpReaders = 4
	tapRetryMin    = 100 * time.Millisecond
	tapRetryMax    = 5 * time.Second
)

// ErrTooSlow: a subscriber's buffer filled up, so it was disconnected.
var ErrTooSlow = errors.New("integrations: subscriber too slow, disconnected")

// Broadcaster follows the log with one subscription and hands every event to its subscribers.
// It keeps the latest events, so a subscriber resuming from a recent position starts from
// memory; one resuming from further back reads the store until it reaches them.
type Broadcaster struct {
	store    eventstore.Store
	keep     int
	buffer   int
	coalesce time.Duration
	log      *slog.Logger
	// readers bounds the subscribers catching up from the store at once.
	readers chan struct{}
	// stopped is closed by Stop: every subscriber ends, so a server shutting down is not
	// held up by streams that never end on their own.
	stopped  chan struct{}
	stopOnce sync.Once

	mu sync.Mutex
	// ready is closed once base is known (the tap has read the head of the log).
	ready   chan struct{}
	isReady bool
	base    eventstore.Position // the position just before kept[0]
	kept    []*entry            // contiguous: the latest events after base, oldest first
	subs    map[*subscription]struct{}
	dropped uint64 // subscribers disconnected for being slow, since the start
}

// BroadcasterOption configures a Broadcaster.
type BroadcasterOption func(*Broadcaster)

// WithKeep sets how many recent events the Broadcaster keeps in memory.
func WithKeep(n int) BroadcasterOption { return func(b *Broadcaster) { b.keep = max(n, 1) } }

// WithBuffer sets how many events may wait for one subscriber before it is disconnected.
func WithBuffer(n int) BroadcasterOption { return func(b *Broadcaster) { b.buffer = max(n, 1) } }

// WithCoalesce sets the least time between two writes to one subscriber.
func WithCoalesce(d time.Duration) BroadcasterOption {
	return func(b *Broadcaster) { b.coalesce = max(d, 0) }
}

// WithBroadcastLogger sets the logger (slog.Default by default).
func WithBroadcastLogger(l *slog.Logger) BroadcasterOption { return func(b *Broadcaster) { b.log = l } }

// NewBroadcaster prepares a Broadcaster of store's log; Run starts it.
func NewBroadcaster(store eventstore.Store, opts ...BroadcasterOption) *Broadcaster {
	b := &Broadcaster{
		store: store, keep: DefaultKeep, buffer: DefaultBuffer, coalesce: DefaultCoalesce, log: slog.Default(),
		readers: make(chan struct{}, catchUpReaders), ready: make(chan struct{}), stopped: make(chan struct{}),
		subs: map[*subscription]struct{}{},
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Stop ends every subscription, now and to come; Run goes on until its context ends.
func (b *Broadcaster) Stop() { b.stopOnce.Do(func() { close(b.stopped) }) }

// Run follows the log from its head until ctx ends, retrying after a store failure from where
// it stopped, so the kept events stay contiguous.
func (b *Broadcaster) Run(ctx context.Context) error {
	wait := tapRetryMin
	for {
		err := b.tap(ctx)
		if ctx.Err() != nil {
			return nil
		}
		b.log.Warn("stream: following the log failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, tapRetryMax)
	}
}

// tap subscribes from the last kept event (from the head of the log the first time).
func (b *Broadcaster) tap(ctx context.Context) error {
	b.mu.Lock()
	ready := b.isReady
	from := b.lastLocked()
	b.mu.Unlock()
	if !ready {
		head, err := b.store.Head(ctx)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.base, b.isReady, from = head, true, head
		close(b.ready)
		b.mu.Unlock()
	}
	return b.store.Subscribe(ctx, from, func(_ context.Context, batch []eventstore.Event) error {
		b.publish(batch)
		return nil
	})
}

// lastLocked is the position of the last kept event, or base when none is kept.
func (b *Broadcaster) lastLocked() eventstore.Position {
	if n := len(b.kept); n > 0 {
		return b.kept[n-1].event.Position
	}
	return b.base
}

// publish keeps batch and hands it to every subscriber; one whose buffer is full is
// disconnected, so no subscriber waits for another.
func (b *Broadcaster) publish(batch []eventstore.Event) {
	entries := make([]*entry, len(batch))
	for i, ev := range batch {
		entries[i] = newEntry(ev)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kept = append(b.kept, entries...)
	for _, ev := range batch {
		if ev.Type == erasedType {
			b.forgetLocked(subjectOf(ev.Data))
		}
	}
	// Between keep and twice keep events are kept: dropping the oldest only once there are
	// twice as many copies keep pointers once per keep events, not on every commit.
	if len(b.kept) >= 2*b.keep {
		over := len(b.kept) - b.keep
		b.base = b.kept[over-1].event.Position
		// Copy rather than reslice, so the dropped entries can be collected.
		b.kept = append(make([]*entry, 0, 2*b.keep), b.kept[over:]...)
	}
	for s := range b.subs {
		for _, e := range entries {
			if !s.filter.matches(e) {
				continue
			}
			select {
			case s.events <- e:
				if len(s.events) >= cap(s.events)/2 {
					// Half full: the subscriber writes now rather than at the end of its
					// coalescing wait, which at a high rate would outlast the buffer.
					select {
					case s.hurry <- struct{}{}:
					default:
					}
				}
			default:
				b.dropLocked(s, ErrTooSlow)
			}
			if s.err != nil {
				break
			}
		}
	}
}

// erasedType is the event that records a customer's erasure.
var erasedType = domain.CustomerErased{}.EventType()

// forgetLocked nulls the personal fields of the kept events about an erased customer: they
// were opened before the erasure, and a client resuming from before it must get them as a
// read of the log would now give them, null.
func (b *Broadcaster) forgetLocked(customerID string) {
	for i, e := range b.kept {
		if domain.PersonalFields(e.event.Type) == nil || subjectOf(e.event.Data) != customerID {
			continue
		}
		ev := e.event
		ev.Data = domain.RedactPersonalData(ev.Type, ev.Data)
		b.kept[i] = newEntry(ev)
	}
}

// subjectOf is the customer_id of event data ("" when it names none).
func subjectOf(data []byte) string {
	var v struct {
		CustomerID string `json:"customer_id"`
	}
	_ = json.Unmarshal(data, &v)
	return v.CustomerID
}

func (b *Broadcaster) dropLocked(s *subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	if errors.Is(err, ErrTooSlow) {
		b.dropped++
		if s.cut != nil {
			s.cut()
		}
	}
	close(s.gone)
}

// Stats is what a Broadcaster reports about itself.
type Stats struct {
	Subscribers int    `json:"subscribers"`
	DroppedSlow uint64 `json:"dropped_slow"`
	KeptEvents  int    `json:"kept_events"`
	KeptFrom    string `json:"kept_from"`
	Following   bool   `json:"following"`
}

// Stats reports the subscribers and the kept events.
func (b *Broadcaster) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Subscribers: len(b.subs), DroppedSlow: b.dropped, KeptEvents: len(b.kept), KeptFrom: b.base.String(), Following: b.isReady}
}

// Filter selects events by type and stream category; an empty set selects every event.
type Filter struct {
	Types      map[string]bool
	Categories map[string]bool
}

func (f Filter) matches(e *entry) bool {
	return (len(f.Types) == 0 || f.Types[e.event.Type]) && (len(f.Categories) == 0 || f.Categories[e.category])
}

func (f Filter) matchesEvent(ev eventstore.Event) bool {
	return (len(f.Types) == 0 || f.Types[ev.Type]) && (len(f.Categories) == 0 || f.Categories[Category(ev.Stream)])
}

// subscription is one subscriber's bounded buffer.
type subscription struct {
	filter Filter
	events chan *entry
	hurry  chan struct{} // a buffer half full: write without waiting out the coalescing interval
	gone   chan struct{} // closed when the Broadcaster drops the subscriber
	err    error         // why, set before gone is closed
	cut    func()        // called when dropped for being slow
}

// sink is where follow sends one subscriber's events.
type sink struct {
	// send writes a batch of events, in order.
	send func(batch []*entry) error
	// heartbeat is called after every idle interval without events.
	heartbeat func() error
	idle      time.Duration
	// cut is called, under the Broadcaster's lock, when the subscriber is dropped for being
	// too slow: it must not block, and should make a send that is stuck return.
	cut func()
}

// follow sends every event after `after` that f selects to k, in log order, until ctx ends
// (nil), k fails (its error) or the subscriber falls too far behind (ErrTooSlow). With after
// nil it starts at the head of the log.
func (b *Broadcaster) follow(ctx context.Context, after *eventstore.Position, f Filter, k sink) error {
	select {
	case <-b.ready:
	case <-ctx.Done():
		return nil
	case <-b.stopped:
		return nil
	}
	var from eventstore.Position
	if after != nil {
		from = *after
	} else {
		b.mu.Lock()
		from = b.lastLocked()
		b.mu.Unlock()
	}
	beat := time.NewTicker(k.idle)
	defer beat.Stop()
	for {
		// Join the live feed if from is among the kept events; else read the store up to them.
		b.mu.Lock()
		if from.Compare(b.base) >= 0 {
			s := &subscription{filter: f, events: make(chan *entry, b.buffer), hurry: make(chan struct{}, 1), gone: make(chan struct{}), cut: k.cut}
			backlog := b.keptAfterLocked(from, f)
			b.subs[s] = struct{}{}
			b.mu.Unlock()
			defer b.unsubscribe(s)
			return b.serve(ctx, s, from, backlog, k, beat)
		}
		base := b.base
		b.mu.Unlock()
		next, err := b.catchUp(ctx, from, base, f, k.send)
		if err != nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-b.stopped:
			return nil
		default:
		}
		from = next
	}
}

// keptAfterLocked returns the kept events after from that f selects.
func (b *Broadcaster) keptAfterLocked(from eventstore.Position, f Filter) []*entry {
	var out []*entry
	// The kept events are in order: skip those at or before from, from the end backwards.
	i := len(b.kept)
	for i > 0 && b.kept[i-1].event.Position.Compare(from) > 0 {
		i--
	}
	for _, e := range b.kept[i:] {
		if f.matches(e) {
			out = append(out, e)
		}
	}
	return out
}

func (b *Broadcaster) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropLocked(s, nil)
}

// catchUp reads the store from `from` until it has passed until, sending what f selects, and
// returns the last position read.
func (b *Broadcaster) catchUp(ctx context.Context, from, until eventstore.Position, f Filter, send func([]*entry) error) (eventstore.Position, error) {
	select {
	case b.readers <- struct{}{}:
	case <-ctx.Done():
		return from, nil
	}
	defer func() { <-b.readers }()
	for from.Compare(until) < 0 {
		events, err := b.store.ReadAll(ctx, from, catchUpPage)
		if err != nil {
			if ctx.Err() != nil {
				return from, nil
			}
			return from, err
		}
		if len(events) == 0 {
			return from, errors.New("integrations: the event store returned nothing before an event it had followed")
		}
		var batch []*entry
		for _, ev := range events {
			if f.matchesEvent(ev) {
				batch = append(batch, newEntry(ev))
			}
		}
		if len(batch) > 0 {
			if err := send(batch); err != nil {
				return from, err
			}
		}
		from = events[len(events)-1].Position
	}
	return from, nil
}

// serve sends the backlog, then the live events, skipping any at or before from (the store
// may have returned events the tap has not yet delivered).
func (b *Broadcaster) serve(ctx context.Context, s *subscription, from eventstore.Position, backlog []*entry, k sink, beat *time.Ticker) error {
	if len(backlog) > 0 {
		if err := k.send(backlog); err != nil {
			return err
		}
		from = backlog[len(backlog)-1].event.Position
	}
	batch := make([]*entry, 0, b.buffer)
	var lastSend time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.stopped:
			return nil
		case <-s.gone:
			return s.err
		case <-beat.C:
			if err := k.heartbeat(); err != nil {
				return err
			}
			continue
		case e := <-s.events:
			batch = append(batch[:0], e)
		}
		// A subscriber writes at most once per coalesce interval, or sooner when its buffer is
		// half full: what arrives meanwhile goes out in the same write and flush. Under a
		// steady load this turns one wake-up and one system call per commit per subscriber
		// into a few per second; under a heavy one the buffer, not the interval, sets the
		// pace, so a client that reads as fast as it is sent to is never cut for the
		// server's own waiting.
		if wait := b.coalesce - time.Since(lastSend); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-b.stopped:
				timer.Stop()
				return nil
			case <-s.gone:
				timer.Stop()
				return s.err
			case <-s.hurry:
				timer.Stop()
			case <-timer.C:
			}
		}
		lastSend = time.Now()
		// Take what else is waiting, so a burst is written and flushed once.
	drain:
		for len(batch) < cap(batch) {
			select {
			case e := <-s.events:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		out := batch[:0]
		for _, e := range batch {
			if e.event.Position.Compare(from) > 0 {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			continue
		}
		if err := k.send(out); err != nil {
			return err
		}
		from = out[len(out)-1].event.Position
	}
}
