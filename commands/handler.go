package commands

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Handler runs commands against the event store. It keeps the folded state of recently used
// streams, so a command on a warm stream costs one append; a stream written by another
// process is caught up when the append reports a conflict.
type Handler struct {
	store       eventstore.Store
	now         func() time.Time
	metrics     *Metrics
	maxAttempts int

	locks [lockStripes]sync.Mutex
	seed  maphash.Seed
	cache *stateCache
	known knownStreams

	handoff handoff

	finder    eventstore.EventFinder // nil when the store cannot find old events by ID
	snapshots eventstore.Snapshots   // nil when the store keeps no snapshots
	// snapshotEvery is how many events a stream grows by before its snapshot is saved again.
	snapshotEvery int64
}

// lockStripes bounds the per-stream locks: commands on one stream run one at a time in this
// process (they would conflict anyway); two streams share a stripe only by hash collision.
const lockStripes = 1024

// Option configures a Handler.
type Option func(*Handler)

// WithClock sets where command times come from (tests pin it).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithMetrics records conflicts and append latency.
func WithMetrics(m *Metrics) Option { return func(h *Handler) { h.metrics = m } }

// WithCacheSize bounds how many folded streams are kept.
func WithCacheSize(n int) Option {
	return func(h *Handler) { h.cache = newStateCache(n, h.cache.maxBytes) }
}

// WithCacheBytes bounds the memory the folded streams kept may take, as the cache measures it
// (default 64 MiB).
func WithCacheBytes(n int) Option {
	return func(h *Handler) { h.cache = newStateCache(h.cache.limit, n) }
}

// DefaultCacheBytes is the default bound of WithCacheBytes.
const DefaultCacheBytes = 64 << 20

// NewHandler returns a Handler on store.
func NewHandler(store eventstore.Store, opts ...Option) *Handler {
	h := &Handler{
		store:         store,
		now:           func() time.Time { return time.Now().UTC() },
		maxAttempts:   10,
		snapshotEvery: defaultSnapshotEvery,
		seed:          maphash.MakeSeed(),
		cache:         newStateCache(20000, DefaultCacheBytes),
		known:         knownStreams{limit: knownLimit},
	}
	for _, o := range opts {
		o(h)
	}
	h.metrics.watchCache(h.cache)
	h.finder, _ = store.(eventstore.EventFinder)
	h.snapshots, _ = store.(eventstore.Snapshots)
	return h
}

// Now is the handler's clock, truncated to what the stores keep.
func (h *Handler) Now() time.Time { return eventstore.NormalizeTime(h.now()) }

// Store is the event store the handler writes to.
func (h *Handler) Store() eventstore.Store { return h.store }

// Meta identifies a command and travels on its events.
type Meta struct {
	// CommandID determines the IDs of the events the command appends, so that a retried
	// command (a repeated idempotency key, a process manager replaying after a crash) is
	// recognised and appends nothing twice.
	CommandID      uuid.UUID
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	Actor          string
}

// Result says where a command's events are.
type Result struct {
	Position eventstore.Position
	Version  uint64
	Events   []domain.Event
	// AlreadyApplied: the command had been applied before; nothing was appended now.
	AlreadyApplied bool
	// Unchanged: the decision recorded nothing (e.g. a change to the same value).
	Unchanged bool
}

// EventID is the ID of the i-th event appended by a command.
func EventID(commandID uuid.UUID, i int) uuid.UUID {
	return uuid.NewSHA1(commandID, fmt.Appendf(nil, "event/%d", i))
}

// DeriveID makes a deterministic ID from a parent ID and a purpose, e.g. the command a
// process manager sends in reaction to an event.
func DeriveID(parent uuid.UUID, purpose string) uuid.UUID {
	return uuid.NewSHA1(parent, []byte(purpose))
}

// Fold is how a stream's state is built: its Evolve function.
type Fold[S any] func(S, domain.Event) S

// Execute loads stream, decides with decide on its state and appends the events with the
// loaded version as the expected revision, retrying with jitter when another writer got there
// first. A command whose first event is already in the stream is answered from there.
func Execute[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], decide func(S) ([]domain.Event, error), meta Meta) (Result, error) {
	return execute(ctx, h, stream, fold, decide, meta, false)
}

// execute is Execute; fresh says the command usually starts its stream (a new order), so that
// a stream not cached is taken to be empty and appended to as such, saving the read that
// would find nothing: if it is there after all, the append is refused with a wrong expected
// revision and the command is decided again on the stream as read, as after any conflict.
func execute[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], decide func(S) ([]domain.Event, error), meta Meta, fresh bool) (Result, error) {
	if meta.CommandID == uuid.Nil {
		return Result{}, errors.New("commands: a command needs an ID")
	}
	mu := h.lock(stream)
	mu.Lock()
	defer mu.Unlock()

	refresh := false
	for attempt := 1; ; attempt++ {
		entry, read, err := load(ctx, h, stream, fold, refresh, fresh)
		if err != nil {
			return Result{}, err
		}
		// blind: entry is the empty stream assumed, not read nor cached.
		blind := fresh && !read && entry.version < 0 && attempt == 1
		refresh = true
		if ref, ok := appliedBefore(entry, meta.CommandID); ok {
			return Result{Position: ref.position, Version: ref.version, AlreadyApplied: true}, nil
		}
		state := entry.state.(S)
		events, err := decide(state)
		if (err != nil || len(events) == 0) && !read {
			// A refusal or a decision to do nothing is final only on a current fold: another
			// process may have written since this one was cached.
			continue
		}
		if err != nil || len(events) == 0 {
			// The state remembers only recent commands: one applied long ago may be refused
			// now (a shipment shipped, its reservation gone). Its events say it was applied.
			ref, found, ferr := storedBefore(ctx, h, stream, meta.CommandID)
			if ferr != nil {
				return Result{}, ferr
			}
			if found {
				return Result{Position: ref.position, Version: ref.version, AlreadyApplied: true}, nil
			}
		}
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Position: entry.position, Version: uint64(max(entry.version, 0)), Unchanged: true}, nil
		}
		data, err := encode(events, meta)
		if err != nil {
			return Result{}, err
		}
		res, err := appendAfter(ctx, h, stream, entry.version, data)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) && blind {
			continue // no writer to make way for: read the stream now
		}
		if errors.Is(err, eventstore.ErrDuplicateEventID) {
			// Applied long ago and decided differently now, with more events than then.
			ref, found, ferr := storedBefore(ctx, h, stream, meta.CommandID)
			if ferr != nil {
				return Result{}, ferr
			}
			if found {
				h.cache.drop(stream)
				return Result{Position: ref.position, Version: ref.version, AlreadyApplied: true}, nil
			}
		}
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			if attempt >= h.maxAttempts {
				return Result{}, fmt.Errorf("%w after %d attempts", err, attempt)
			}
			h.metrics.conflictRetried()
			if err := sleepJitter(ctx, attempt); err != nil {
				return Result{}, err
			}
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if res.Retried || res.Version != uint64(entry.version+int64(len(events))) {
			// The store answered from events appended earlier with these IDs (by another
			// process): our decision is not what is stored, so forget the cached fold.
			h.cache.drop(stream)
			return Result{Position: res.Position, Version: res.Version, AlreadyApplied: true}, nil
		}
		remember(ctx, h, entry, stream, fold, events, data, res)
		return Result{Position: res.Position, Version: res.Version, Events: events}, nil
	}
}

// appendAfter appends data to stream at the version the command was decided on (-1: the
// stream did not exist), timing the append for the metrics.
func appendAfter(ctx context.Context, h *Handler, stream string, version int64, data []eventstore.EventData) (eventstore.AppendResult, error) {
	expected := eventstore.NoStream()
	if version >= 0 {
		expected = eventstore.Exact(uint64(version))
	}
	started := time.Now()
	res, err := h.store.Append(ctx, stream, expected, data...)
	h.metrics.observeAppend(time.Since(started), err)
	return res, err
}

// Read folds stream under its lock and passes the state to inspect, which must not keep it.
// It catches up with events other processes appended, so existence checks are current.
func Read[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], inspect func(S, bool) error) error {
	mu := h.lock(stream)
	mu.Lock()
	defer mu.Unlock()
	entry, _, err := load(ctx, h, stream, fold, true, false)
	if err != nil {
		return err
	}
	return inspect(entry.state.(S), entry.version >= 0)
}

// knownLimit bounds knownStreams: past it the set starts again empty, which costs each stream
// one more read.
const knownLimit = 100000

// knownStreams is the set of streams seen to hold a fact no event undoes (a customer
// registered, a SKU received), so that checks of such facts read nothing once it has been
// seen, and do not wait for the stream's lock behind commands on it.
type knownStreams struct {
	mu     sync.RWMutex
	limit  int
	stream map[string]struct{}
}

func (k *knownStreams) has(stream string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.stream[stream]
	return ok
}

func (k *knownStreams) add(stream string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stream == nil || len(k.stream) >= k.limit {
		k.stream = make(map[string]struct{})
	}
	k.stream[stream] = struct{}{}
}

// check reports whether holds is true of stream's state, and otherwise returns fails's error.
// holds must be permanent: once true of a stream, true of it after any further event. Such a
// fact, once seen, is not read again; until then the stream is read as by Read.
func check[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], holds func(S) bool, fails func() error) error {
	if h.known.has(stream) {
		return nil
	}
	err := Read(ctx, h, stream, fold, func(s S, _ bool) error {
		if !holds(s) {
			return fails()
		}
		return nil
	})
	if err == nil {
		h.known.add(stream)
	}
	return err
}

func (h *Handler) lock(stream string) *sync.Mutex {
	return &h.locks[maphash.String(h.seed, stream)%lockStripes]
}

// load returns the cached fold of stream, first reading the events appended since it was
// cached when refresh is set or nothing is cached; read says whether the store was read. With
// assumeEmpty and neither refresh nor a cached fold, it returns the empty stream's without
// reading or caching it.
func load[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], refresh, assumeEmpty bool) (entry *cacheEntry, read bool, err error) {
	entry = h.cache.get(stream)
	if entry != nil {
		if _, ok := entry.state.(S); !ok {
			entry = nil
		}
	}
	if entry != nil && !refresh {
		return entry, false, nil
	}
	if entry == nil {
		var zero S
		entry = &cacheEntry{state: zero, version: -1, snapshot: -1}
		if assumeEmpty && !refresh {
			return entry, false, nil
		}
		if err := loadSnapshot[S](ctx, h, stream, entry); err != nil {
			return nil, false, err
		}
	}
	state := entry.state.(S)
	const page = 1000
	for {
		events, err := h.store.ReadStream(ctx, stream, uint64(entry.version+1), page)
		if err != nil {
			h.cache.drop(stream)
			return nil, false, err
		}
		for _, e := range events {
			de, err := domain.DecodeEvent(e.Type, e.Data)
			if err != nil {
				h.cache.drop(stream)
				return nil, false, fmt.Errorf("stream %s version %d: %w", stream, e.Version, err)
			}
			state = fold(state, de)
			entry.version = int64(e.Version)
			entry.position = e.Position
			entry.recent.add(e.ID, eventRef{version: e.Version, position: e.Position})
		}
		if len(events) < page {
			break
		}
	}
	entry.state = state
	saveSnapshot(ctx, h, stream, entry)
	h.cache.put(stream, entry)
	return entry, true, nil
}

// remember folds the events just appended into the cached state.
func remember[S any](ctx context.Context, h *Handler, entry *cacheEntry, stream string, fold Fold[S], events []domain.Event, data []eventstore.EventData, res eventstore.AppendResult) {
	state := entry.state.(S)
	for i, e := range events {
		state = fold(state, e)
		entry.recent.add(data[i].ID, eventRef{version: uint64(entry.version + 1 + int64(i)), position: res.Position})
	}
	entry.state = state
	entry.version = int64(res.Version)
	entry.position = res.Position
	saveSnapshot(context.WithoutCancel(ctx), h, stream, entry)
	h.cache.put(stream, entry)
}

// appliedBefore finds a command's events among the recent events of a folded stream and
// answers with the last of them.
func appliedBefore(entry *cacheEntry, commandID uuid.UUID) (eventRef, bool) {
	ref, ok := entry.recent.get(EventID(commandID, 0))
	if !ok {
		return ref, false
	}
	for i := 1; ; i++ {
		next, ok := entry.recent.get(EventID(commandID, i))
		if !ok {
			return ref, true
		}
		ref = next
	}
}

// storedBefore asks the store whether a command's events are in stream, however long ago they
// were appended, and answers with the last of them. A store that cannot find events by ID
// (KurrentDB) answers false: there a retry is recognised while it is recent (the cached
// stream's last events, and the store's own window).
func storedBefore(ctx context.Context, h *Handler, stream string, commandID uuid.UUID) (eventRef, bool, error) {
	if h.finder == nil {
		return eventRef{}, false, nil
	}
	var (
		ref   eventRef
		found bool
	)
	for i := 0; ; i++ {
		e, ok, err := h.finder.FindEvent(ctx, stream, EventID(commandID, i))
		if err != nil {
			return eventRef{}, false, err
		}
		if !ok {
			return ref, found, nil
		}
		ref, found = eventRef{version: e.Version, position: e.Position}, true
	}
}

// Applied reports whether a command has been applied to stream, and where its last event is:
// from the stream's recent events when cached, or else from the store.
func Applied(ctx context.Context, h *Handler, stream string, meta Meta) (Result, bool, error) {
	mu := h.lock(stream)
	mu.Lock()
	defer mu.Unlock()
	if entry := h.cache.get(stream); entry != nil {
		if ref, ok := appliedBefore(entry, meta.CommandID); ok {
			return Result{Position: ref.position, Version: ref.version, AlreadyApplied: true}, true, nil
		}
	}
	ref, ok, err := storedBefore(ctx, h, stream, meta.CommandID)
	if err != nil || !ok {
		return Result{}, false, err
	}
	return Result{Position: ref.position, Version: ref.version, AlreadyApplied: true}, true, nil
}

// encode turns decided events into events to append, with IDs derived from the command.
func encode(events []domain.Event, meta Meta) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	md := storedMetadata(meta)
	for i, e := range events {
		typ, data, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{ID: EventID(meta.CommandID, i), Type: typ, Data: data, Metadata: md}
	}
	return out, nil
}

// storedMetadata is the metadata a command's events are stored with.
func storedMetadata(meta Meta) eventstore.Metadata {
	md := eventstore.Metadata{
		CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
		IdempotencyKey: meta.IdempotencyKey, Actor: meta.Actor,
	}
	if md.CorrelationID == "" {
		md.CorrelationID = meta.CommandID.String()
	}
	if md.CausationID == "" {
		md.CausationID = meta.CommandID.String()
	}
	return md
}

// sleepJitter waits a random time that grows with the attempt, so writers that collided do
// not collide again in lockstep.
func sleepJitter(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt, 7)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Caused is what one command of a batch decided (see ExecuteBatch): the events it causes,
// to be appended with the IDs and metadata it would have given them executed alone.
type Caused struct {
	Meta   Meta
	Events []domain.Event
}

// ExecuteBatch is Execute for several commands decided together on one stream and appended in
// one append, as a numbering series numbers many documents: one round trip for all of them,
// where Execute one after another would take one each while the others wait for the stream's
// lock. decide returns what each command causes, leaving out a command that causes nothing
// and any that applied tells it was applied before (its events are in the stream): where
// Execute answers such a command from the stream, a batch leaves it to decide, since the
// commands after it are decided on the state it leaves. Each event's ID is the one Execute
// would have given it, EventID(meta.CommandID, i), so a command is recognised whether it was
// applied alone or in a batch.
//
// A conflict, or a batch the store finds partly or wholly stored (appended by an attempt whose
// answer was lost), is decided again on the stream as it is, so the Result is always that of
// an append of what was not stored yet, or Unchanged when nothing was left to append.
func ExecuteBatch[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], decide func(state S, applied func(Meta) bool) ([]Caused, error)) (Result, error) {
	mu := h.lock(stream)
	mu.Lock()
	defer mu.Unlock()

	refresh := false
	for attempt := 1; ; attempt++ {
		entry, read, err := load(ctx, h, stream, fold, refresh, false)
		if err != nil {
			return Result{}, err
		}
		refresh = true
		caused, err := decide(entry.state.(S), func(m Meta) bool {
			_, ok := appliedBefore(entry, m.CommandID)
			return ok
		})
		var (
			events []domain.Event
			data   []eventstore.EventData
		)
		for _, c := range caused {
			if c.Meta.CommandID == uuid.Nil {
				return Result{}, errors.New("commands: a command needs an ID")
			}
			encoded, err := encode(c.Events, c.Meta)
			if err != nil {
				return Result{}, err
			}
			events = append(events, c.Events...)
			data = append(data, encoded...)
		}
		if (err != nil || len(events) == 0) && !read {
			continue // final only on a current fold, as in Execute
		}
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Position: entry.position, Version: uint64(max(entry.version, 0)), Unchanged: true}, nil
		}
		res, err := appendAfter(ctx, h, stream, entry.version, data)
		// Stored before: nothing was appended now, and the cached fold, still a true prefix of
		// the stream, is caught up on the next attempt like after a conflict.
		stored := err == nil && (res.Retried || res.Version != uint64(entry.version+int64(len(events))))
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) || errors.Is(err, eventstore.ErrDuplicateEventID) || stored {
			if attempt >= h.maxAttempts {
				return Result{}, fmt.Errorf("commands: a batch on %s still conflicts after %d attempts: %w", stream, attempt, eventstore.ErrWrongExpectedRevision)
			}
			if errors.Is(err, eventstore.ErrDuplicateEventID) || stored {
				// Some command of the batch was applied, maybe too long ago for the stream's
				// recent events to show it: ask the store, so that decide is told.
				if err := recallStored(ctx, h, stream, entry, caused); err != nil {
					return Result{}, err
				}
			}
			if !stored {
				h.metrics.conflictRetried()
				if err := sleepJitter(ctx, attempt); err != nil {
					return Result{}, err
				}
			}
			continue
		}
		if err != nil {
			return Result{}, err
		}
		remember(ctx, h, entry, stream, fold, events, data, res)
		return Result{Position: res.Position, Version: res.Version, Events: events}, nil
	}
}

// recallStored finds in the store which of caused's commands were applied to stream and adds
// their events to the entry's recent events, where appliedBefore finds them.
func recallStored(ctx context.Context, h *Handler, stream string, entry *cacheEntry, caused []Caused) error {
	for _, c := range caused {
		for i := range c.Events {
			id := EventID(c.Meta.CommandID, i)
			if _, ok := entry.recent.get(id); ok {
				continue
			}
			ref, ok, err := storedAt(ctx, h, stream, id)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			entry.recent.add(id, ref)
		}
	}
	return nil
}

func storedAt(ctx context.Context, h *Handler, stream string, id uuid.UUID) (eventRef, bool, error) {
	if h.finder == nil {
		return eventRef{}, false, nil
	}
	e, ok, err := h.finder.FindEvent(ctx, stream, id)
	if err != nil || !ok {
		return eventRef{}, false, err
	}
	return eventRef{version: e.Version, position: e.Position}, true, nil
}

// ReadAtLeast is Read for a caller that knows the stream has reached version: it folds the
// cached state when that includes version, and reads the store only when it does not. Events
// appended since by another process may be missing, so it suits a caller to whom a state as
// of version is enough: a process manager reacting to the event at version.
func ReadAtLeast[S any](ctx context.Context, h *Handler, stream string, fold Fold[S], version uint64, inspect func(S, bool) error) error {
	mu := h.lock(stream)
	mu.Lock()
	defer mu.Unlock()
	entry := h.cache.get(stream)
	if entry != nil {
		if state, ok := entry.state.(S); ok && entry.version >= int64(version) {
			return inspect(state, true)
		}
	}
	entry, _, err := load(ctx, h, stream, fold, true, false)
	if err != nil {
		return err
	}
	return inspect(entry.state.(S), entry.version >= 0)
}
