package projections

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// Rebuild tuning. Larger reads than a live subscription's mean fewer round trips; a projector
// applies rebuildFlushEvents events in memory before it writes what they changed, with its
// checkpoint, in one transaction, so that a row many events touch is written once, not once
// per batch. Variables so that tests can make them small.
var (
	rebuildBatch       = 10000
	rebuildFlushEvents = int64(100000)
	// rebuildCacheRows bounds the rows a projector keeps in memory from one write to the
	// next, so that it need not read back what it wrote.
	rebuildCacheRows = 250000
)

// rebuildOwner begins the name a rebuild writes as the owner of the projectors' rows; a
// runner does not take a row from it while its lease lasts.
const (
	rebuildOwner       = "rebuild"
	rebuildOwnerPrefix = rebuildOwner + "@"
)

// rebuildLeaseTTL is how long a rebuild's lease lasts without renewal.
const rebuildLeaseTTL = time.Minute

// Rebuild empties the named projectors (all when names is empty) and replays the log into
// them from the start up to the head as it is when Rebuild begins; a Runner carries on from
// there. The log is read and decoded once for all of them; each projector writes at its own
// pace, in its own transactions.
//
// Rebuild takes the projectors' leases over, whoever holds them: a Runner running them in this
// or another process finds its next transaction refused, stands by while the rebuild runs
// (reporting the rebuild's checkpoints, so ?after= waits stay truthful) and takes over again
// from where the rebuild ended. Two rebuilds of one projector at once fence each other off
// the same way; the one taken over fails.
//
// progress, if not nil, is called after every batch with the events replayed so far and the
// log's size as a Runner last counted it (which may include events appended since), or -1
// when no Runner has counted up to where the rebuild ends.
func Rebuild(ctx context.Context, store eventstore.Store, read *ReadStore, names []string, progress func(done, total int64)) error {
	_, err := rebuildLog(ctx, store, read, names, progress, rebuildLimits{})
	return err
}

// rebuildLimits stop a rebuild short of the head of the log, for Replay and Verify.
type rebuildLimits struct {
	// recordedBy, when set, stops the replay at the first event of the log recorded after
	// it: that event and every one after it are left out.
	recordedBy time.Time
	// upTo, when set, replays each projector up to its position, inclusive (the zero
	// Position: nothing); the log is read up to the last of them.
	upTo map[string]eventstore.Position
}

// rebuildResult says where a rebuild stopped.
type rebuildResult struct {
	// last is the last event applied, the checkpoint of the projectors without a limit of
	// their own; events counts the events up to it.
	last   eventstore.Position
	events int64
	// excluded is the first event left out by recordedBy, nil if none was.
	excluded *eventstore.Event
}

func rebuildLog(ctx context.Context, store eventstore.Store, read *ReadStore, names []string, progress func(done, total int64), limits rebuildLimits) (rebuildResult, error) {
	ps, err := selectProjectors(names)
	if err != nil {
		return rebuildResult{}, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return rebuildResult{}, fmt.Errorf("projections: rebuild: %w", err)
	}
	if limits.upTo != nil {
		var last eventstore.Position
		for _, p := range ps {
			if pos := limits.upTo[p.name()]; pos.Compare(last) > 0 {
				last = pos
			}
		}
		if last.Compare(head) > 0 {
			return rebuildResult{}, fmt.Errorf("projections: rebuild: position %s is beyond the head of the log, %s", last, head)
		}
		head = last
	}
	total := read.countedUpTo(ctx, head)
	writers, err := read.takeOver(ctx, ps, ownerID(rebuildOwner), rebuildLeaseTTL, time.Now)
	if err != nil {
		return rebuildResult{}, fmt.Errorf("projections: rebuild: take over: %w", err)
	}
	rb := &rebuild{read: read, ps: ps, writers: writers, state: make(map[string]*rebuildState, len(ps)), limits: limits}
	for _, p := range ps {
		rb.state[p.name()] = &rebuildState{renewed: time.Now()}
	}
	defer rb.finish(ctx)
	if progress == nil {
		progress = func(int64, int64) {}
	}
	if head.IsZero() {
		progress(0, 0)
		return rebuildResult{}, nil
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	report := rb.progressReporter(total, progress)

	// Three stages run at once: one goroutine reads the log, one decodes it (once for every
	// projector), and each projector writes at its own pace, a couple of batches at most
	// behind the decoder.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	raw := make(chan []eventstore.Event, 2)
	go func() {
		defer close(raw)
		if err := rb.readLog(readCtx, store, head, raw); err != nil && readCtx.Err() == nil {
			cancel(fmt.Errorf("read the log: %w", err))
		}
	}()
	feeds := make([]chan decodedBatch, len(ps))
	for i := range feeds {
		feeds[i] = make(chan decodedBatch, 2)
	}
	var broken *EventError
	go func() {
		defer func() {
			for _, f := range feeds {
				close(f)
			}
		}()
		broken = rb.decodeLog(ctx, raw, feeds)
		stopReading()
	}()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range feeds[i] {
				events, envs := rb.upToLimit(p, b.events, b.envs)
				if len(events) == 0 {
					continue
				}
				if err := rb.project(ctx, p, events, envs); err != nil {
					cancel(err)
					return
				}
				report(p.name(), int64(len(events)))
			}
			if err := rb.flush(ctx, p); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return rebuildResult{}, fmt.Errorf("projections: rebuild: %w", err)
	}
	if broken != nil {
		return rebuildResult{}, fmt.Errorf("projections: rebuild: %w", broken)
	}
	if err := ctx.Err(); err != nil {
		return rebuildResult{}, err
	}
	done := rb.done()
	progress(done, done)
	// The reader is done: it closed the channel the decoder drained before the projectors'
	// feeds were closed.
	return rebuildResult{last: rb.reached.pos, events: rb.reached.events, excluded: rb.excluded}, nil
}

// decodeLog decodes each batch once, the events some projector wants, and hands it to every
// projector. It stops at the first broken event, after handing over the events before it.
func (rb *rebuild) decodeLog(ctx context.Context, raw <-chan []eventstore.Event, feeds []chan decodedBatch) *EventError {
	names := make([]string, len(rb.ps))
	for i, p := range rb.ps {
		names[i] = p.name()
	}
	label := strings.Join(names, ",")
	wanted := func(t string) bool {
		for _, p := range rb.ps {
			if p.handles(t) {
				return true
			}
		}
		return false
	}
	for events := range raw {
		envs, n, broken := decodeParallel(label, events, wanted)
		for _, f := range feeds {
			select {
			case f <- decodedBatch{events: events[:n], envs: envs}:
			case <-ctx.Done():
				return nil
			}
		}
		if broken != nil {
			return broken
		}
	}
	return nil
}

// decodeParallel is decode spread over the CPUs, in chunks whose results are joined in order.
func decodeParallel(label string, events []eventstore.Event, wanted func(string) bool) ([]envelope, int, *EventError) {
	workers := runtime.GOMAXPROCS(0)
	size := max(len(events)/workers, 1000)
	type result struct {
		envs   []envelope
		n      int
		broken *EventError
	}
	var chunks [][]eventstore.Event
	for rest := events; len(rest) > 0; rest = rest[min(size, len(rest)):] {
		chunks = append(chunks, rest[:min(size, len(rest))])
	}
	results := make([]result, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs, n, broken := decode(label, c, wanted)
			results[i] = result{envs, n, broken}
		}()
	}
	wg.Wait()
	var (
		envs = make([]envelope, 0, len(events))
		n    int
	)
	for _, r := range results {
		envs = append(envs, r.envs...)
		n += r.n
		if r.broken != nil {
			return envs, n, r.broken
		}
	}
	return envs, n, nil
}

// progressReporter returns the function each projector calls after a batch; progress hears
// of the events every projector has replayed.
func (rb *rebuild) progressReporter(total int64, progress func(done, total int64)) func(name string, n int64) {
	var mu sync.Mutex
	last := int64(-1)
	return func(name string, n int64) {
		mu.Lock()
		defer mu.Unlock()
		rb.state[name].done += n
		done := rb.done()
		if done == last {
			return
		}
		last = done
		if total >= 0 {
			total = max(total, done)
		}
		progress(done, total)
	}
}

// done is how many events every projector has replayed.
func (rb *rebuild) done() int64 {
	done := int64(-1)
	for _, st := range rb.state {
		if done < 0 || st.done < done {
			done = st.done
		}
	}
	return max(done, 0)
}

type rebuild struct {
	read    *ReadStore
	ps      []projector
	writers map[string]writer
	state   map[string]*rebuildState
	limits  rebuildLimits

	// Written by the reader only, read once it is done: how far it read, and the first
	// event recordedBy left out.
	reached  progress
	excluded *eventstore.Event
}

// rebuildState is a projector's progress in a rebuild: in memory, and as committed.
type rebuildState struct {
	current, persisted progress
	// rows holds the rows the projector has read or made, and what the events after
	// persisted changed in them, unwritten while dirty.
	rows    batch
	dirty   bool
	renewed time.Time
	done    int64 // events replayed, for progress
}

// decodedBatch is a batch of the log with the events some projector wants, decoded once.
type decodedBatch struct {
	events []eventstore.Event
	envs   []envelope
}

// readLog reads the log up to head, or up to the first event recorded after
// limits.recordedBy, ahead of the decoder.
func (rb *rebuild) readLog(ctx context.Context, store eventstore.Store, head eventstore.Position, out chan<- []eventstore.Event) error {
	var from eventstore.Position
	for from.Compare(head) < 0 {
		events, err := store.ReadAll(ctx, from, rebuildBatch)
		if err != nil {
			return err
		}
		end := false
		for i, e := range events {
			if e.Position.Compare(head) > 0 {
				events, end = events[:i], true
				break
			}
			if !rb.limits.recordedBy.IsZero() && e.RecordedAt.After(rb.limits.recordedBy) {
				excluded := e
				rb.excluded = &excluded
				events, end = events[:i], true
				break
			}
		}
		if len(events) > 0 {
			select {
			case out <- events:
			case <-ctx.Done():
				return ctx.Err()
			}
			rb.reached = rb.reached.after(events)
			from = events[len(events)-1].Position
		}
		if end || len(events) == 0 {
			return nil
		}
	}
	return nil
}

// upToLimit cuts a batch and the decoded events in it at the projector's own limit.
func (rb *rebuild) upToLimit(p projector, events []eventstore.Event, envs []envelope) ([]eventstore.Event, []envelope) {
	limit, ok := rb.limits.upTo[p.name()]
	if !ok {
		return events, envs
	}
	n := sort.Search(len(events), func(i int) bool { return events[i].Position.Compare(limit) > 0 })
	m := sort.Search(len(envs), func(i int) bool { return envs[i].meta.Position.Compare(limit) > 0 })
	return events[:n], envs[:m]
}

// project applies a batch of the log in memory and writes once enough has piled up.
func (rb *rebuild) project(ctx context.Context, p projector, events []eventstore.Event, envs []envelope) error {
	st := rb.state[p.name()]
	mine := make([]envelope, 0, len(envs))
	for _, e := range envs {
		if p.handles(e.meta.Type) {
			mine = append(mine, e)
		}
	}
	if len(mine) > 0 {
		if st.rows == nil {
			st.rows = p.newBatch(rb.read.dialect)
		}
		// Loading outside the writing transaction is safe: the rebuild holds the lease, and a
		// writer that took it over since would make the flush fail, writing nothing.
		if err := st.rows.load(ctx, rb.read.reads, mine); err != nil {
			return fmt.Errorf("projector %s: load: %w", p.name(), err)
		}
		if err := applyAll(p, st.rows, mine); err != nil {
			return err
		}
		st.dirty = true
	}
	st.current = st.current.after(events)
	stale := time.Since(st.renewed) > rebuildLeaseTTL/3
	switch {
	case st.dirty && (st.current.events-st.persisted.events >= rebuildFlushEvents || stale):
		return rb.flush(ctx, p)
	case stale:
		// A projector with nothing to write for a while must still keep its lease.
		if err := rb.read.renew(ctx, p.name(), rb.writers[p.name()], st.persisted, st.current); err != nil {
			return err
		}
		st.persisted, st.renewed = st.current, time.Now()
	}
	return nil
}

// flush writes what the projector changed since it last wrote, with its checkpoint.
func (rb *rebuild) flush(ctx context.Context, p projector) error {
	st := rb.state[p.name()]
	if !st.dirty {
		return nil
	}
	if err := rb.read.flushBatch(ctx, p, rb.writers[p.name()], st.persisted, st.current, st.rows); err != nil {
		return err
	}
	st.persisted, st.dirty, st.renewed = st.current, false, time.Now()
	if st.rows.written() > rebuildCacheRows {
		st.rows = nil
	}
	return nil
}

// finish puts the indexes back, records where each projector got to and frees the leases,
// whether the rebuild succeeded or not.
func (rb *rebuild) finish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	var tables []string
	for _, p := range rb.ps {
		tables = append(tables, p.tables()...)
	}
	if err := rb.read.ensureIndexes(ctx, tables...); err != nil {
		slog.ErrorContext(ctx, "rebuild: creating the read models' indexes failed; the next start creates them", "err", err)
	}
	for _, p := range rb.ps {
		st := rb.state[p.name()]
		// Events applied in memory and never written must be replayed: record only what was.
		to := st.current
		if st.dirty {
			to = st.persisted
		}
		// A projector that was taken over is no longer ours to record; the error says so.
		_ = rb.read.release(ctx, p.name(), rb.writers[p.name()], st.persisted, to)
	}
}

// countedUpTo is the number of events in the log as the log counter last recorded it, if it
// had counted at least up to head; -1 otherwise.
func (s *ReadStore) countedUpTo(ctx context.Context, head eventstore.Position) int64 {
	cp, err := s.readCheckpoint(ctx, s.reads, logCounter)
	if err != nil || cp.progress.pos.Compare(head) < 0 {
		return -1
	}
	return cp.progress.events
}
