package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// Rebuild tuning: larger batches than a live subscription's mean fewer, fuller statements.
const (
	rebuildBatch    = 10000
	rebuildLeaseTTL = time.Minute
)

// Rebuild empties the named projectors (all when names is empty) and replays the log into
// them from the start up to the head as it is when Rebuild begins; a Runner carries on from
// there. The log is read and decoded once for all of them, and each batch is projected by the
// projectors side by side, each in its own transaction.
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
	ps, err := selectProjectors(names)
	if err != nil {
		return err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("projections: rebuild: %w", err)
	}
	total := read.countedUpTo(ctx, head)
	writers, err := read.takeOver(ctx, ps, ownerID("rebuild"), rebuildLeaseTTL, time.Now)
	if err != nil {
		return fmt.Errorf("projections: rebuild: take over: %w", err)
	}
	rb := &rebuild{read: read, ps: ps, writers: writers, state: make(map[string]*rebuildState, len(ps))}
	for _, p := range ps {
		rb.state[p.name()] = &rebuildState{renewed: time.Now()}
	}
	defer rb.finish(ctx)
	if progress == nil {
		progress = func(int64, int64) {}
	}
	if head.IsZero() {
		progress(0, 0)
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan decodedBatch, 2)
	readErr := make(chan error, 1)
	go func() { readErr <- rb.readLog(ctx, store, head, batches) }()

	var done int64
	for b := range batches {
		if err := rb.projectBatch(ctx, b.events, b.envs); err != nil {
			cancel()
			return fmt.Errorf("projections: rebuild: %w", err)
		}
		done += int64(len(b.events))
		if total >= 0 {
			total = max(total, done)
		}
		progress(done, total)
		if b.broken != nil {
			return fmt.Errorf("projections: rebuild: %w", b.broken)
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("projections: rebuild: read the log: %w", err)
	}
	progress(done, done)
	return nil
}

type rebuild struct {
	read    *ReadStore
	ps      []projector
	writers map[string]writer
	state   map[string]*rebuildState
}

// rebuildState is a projector's progress in a rebuild: in memory, and as committed.
type rebuildState struct {
	current, persisted progress
	renewed            time.Time
}

// decodedBatch is a batch of the log with the events some projector wants, decoded once, and
// the broken event that ended the batch early, if any.
type decodedBatch struct {
	events []eventstore.Event
	envs   []envelope
	broken *EventError
}

// readLog reads the log up to head and decodes it ahead of the projectors.
func (rb *rebuild) readLog(ctx context.Context, store eventstore.Store, head eventstore.Position, out chan<- decodedBatch) error {
	defer close(out)
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
	var from eventstore.Position
	for from.Compare(head) < 0 {
		events, err := store.ReadAll(ctx, from, rebuildBatch)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		for i, e := range events {
			if e.Position.Compare(head) > 0 {
				events = events[:i]
				break
			}
		}
		envs, n, broken := decode(label, events, wanted)
		select {
		case out <- decodedBatch{events: events[:n], envs: envs, broken: broken}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if broken != nil || len(events) == 0 {
			return nil
		}
		from = events[len(events)-1].Position
	}
	return nil
}

// projectBatch projects one batch with every projector at once.
func (rb *rebuild) projectBatch(ctx context.Context, events []eventstore.Event, envs []envelope) error {
	if len(events) == 0 {
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range rb.ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rb.projectOne(ctx, p, events, envs); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (rb *rebuild) projectOne(ctx context.Context, p projector, events []eventstore.Event, envs []envelope) error {
	st := rb.state[p.name()]
	w := rb.writers[p.name()]
	mine := make([]envelope, 0, len(envs))
	for _, e := range envs {
		if p.handles(e.meta.Type) {
			mine = append(mine, e)
		}
	}
	next := st.current.after(events)
	switch {
	case len(mine) > 0:
		if err := rb.read.commitBatch(ctx, p, w, st.persisted, next, mine); err != nil {
			return err
		}
		st.persisted, st.renewed = next, time.Now()
	case time.Since(st.renewed) > rebuildLeaseTTL/3:
		// A projector with nothing to write for a while must still keep its lease.
		if err := rb.read.renew(ctx, p.name(), w, st.persisted, next); err != nil {
			return err
		}
		st.persisted, st.renewed = next, time.Now()
	}
	st.current = next
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
		// A projector that was taken over is no longer ours to record; the error says so.
		_ = rb.read.release(ctx, p.name(), rb.writers[p.name()], st.persisted, st.current)
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
