package automation

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// checkpointEvery bounds how many events are handled between two checkpoints. It bounds the
// work a restart repeats, and lets a runner that is restarted often still make progress.
const checkpointEvery = 64

// window bounds how many events are in the pipeline at once: delivered and not yet below the
// checkpoint's reach, because they, or an event before them, are still being handled. With
// checkpointEvery it bounds what a restart repeats. An order takes about ten events of the log
// on its way to its invoice, so the window holds a few hundred orders: as many as the lanes
// handle at once, and more.
const window = 64 * checkpointEvery

// pipeline is one stretch of following the log, from a checkpoint until the subscription
// ends. The subscription hands events over (dispatch) and goes on reading at once. The events
// about one subject (see subject) are handled one after another in log order, by a goroutine
// that runs while the subject has events waiting; the subjects are handled at once, up to
// the runner's lanes. Events about different subjects commute: each stream that receives
// their commands decides under its own expected revision, and the stock stream serves
// whichever reservation reaches it first.
//
// Nothing waits for a batch to be finished. The checkpoint is where every event before it,
// and it, has been handled (the events below it may have finished in any order); a goroutine
// of its own saves it, every checkpointEvery events and whenever nothing is left to handle,
// so no event waits for the checkpoint table either.
type pipeline struct {
	r       *Runner
	ctx     context.Context
	stop    context.CancelCauseFunc
	numbers *invoiceNumbering
	stock   *stockBatching
	slots   chan struct{} // a place in the window per event in the pipeline
	lanes   chan struct{} // a place per subject being handled
	save    chan struct{} // wakes the saver; capacity one, so wake-ups coalesce
	wg      sync.WaitGroup

	mu sync.Mutex
	// subjects holds, for each subject being handled, its events waiting: a subject has an
	// entry, empty or not, exactly while a goroutine handles it.
	subjects map[string][]*work
	ring     [window]tracked // the events in the pipeline, by sequence number modulo window
	next     uint64          // sequence number of the next event delivered
	oldest   uint64          // of the oldest event in the pipeline; == next when it is empty
	reached  eventstore.Position
	at       time.Time // when the event at reached was recorded
	unsaved  int       // events handled up to reached and not yet in a saved checkpoint
	retrying int       // events whose commands are being retried: the runner is not running smoothly
	// ahead holds the IDs of events handled ahead of the log (see Runner.handleAhead) and not
	// delivered yet.
	ahead map[uuid.UUID]struct{}
	// delivered is the position of the last event the subscription delivered; an order placed
	// at or before it needs no hand-off (see offer).
	delivered eventstore.Position
	closed    bool // no more goroutines may start: close is waiting for them
}

// tracked is an event in the pipeline.
type tracked struct {
	position   eventstore.Position
	recordedAt time.Time
	done       bool
}

// work is an event to handle: one the subscription delivered, or one handed over by the
// write path (offered), which has no place in the window and is handled ahead of the log.
type work struct {
	seq     uint64
	stored  eventstore.Event
	event   domain.Event
	offered bool
}

// follow handles the log after from until ctx is done, the subscription fails, an event
// cannot be handled (its *Failure) or the lease is lost (ErrLeaseLost).
func (r *Runner) follow(ctx context.Context, from eventstore.Position) error {
	p := r.newPipeline(ctx, from)
	r.mu.Lock()
	r.current = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.current = nil
		r.mu.Unlock()
	}()
	err := r.store.Subscribe(p.ctx, from, p.dispatch)
	return p.close(ctx, err)
}

func (r *Runner) newPipeline(ctx context.Context, from eventstore.Position) *pipeline {
	p := &pipeline{
		r:         r,
		numbers:   newInvoiceNumbering(r.h),
		slots:     make(chan struct{}, window),
		lanes:     make(chan struct{}, r.lanes),
		save:      make(chan struct{}, 1),
		subjects:  make(map[string][]*work),
		reached:   from,
		delivered: from,
		ahead:     make(map[uuid.UUID]struct{}),
	}
	p.ctx, p.stop = context.WithCancelCause(ctx)
	p.stock = newStockBatching(p.ctx, r.h, p.wg.Go)
	p.wg.Go(func() { p.numbers.run(p.ctx) })
	p.wg.Go(p.saver)
	return p
}

// dispatch takes a batch from the subscription: it hands each event over to be handled and
// returns as soon as they all have a place in the window, without waiting for them.
func (p *pipeline) dispatch(ctx context.Context, batch []eventstore.Event) error {
	for _, e := range batch {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		seq := p.track(e)
		if !handledTypes[e.Type] || p.aheadOfLog(e.ID) {
			// Nothing to do, or done already ahead of the log: nothing to wait for a lane for.
			p.finished(seq)
			continue
		}
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			f := p.r.fail(e, err)
			p.stop(f)
			return f
		}
		about := subject(de)
		p.mu.Lock()
		waiting, busy := p.subjects[about]
		p.subjects[about] = append(waiting, &work{seq: seq, stored: e, event: de})
		p.mu.Unlock()
		if !busy {
			p.wg.Go(func() { p.handleSubject(about) })
		}
	}
	return nil
}

// handleSubject handles the events about one subject in order, as long as there are any,
// or until the pipeline stops.
func (p *pipeline) handleSubject(about string) {
	select {
	case p.lanes <- struct{}{}:
		defer func() { <-p.lanes }()
	case <-p.ctx.Done():
		return
	}
	for p.ctx.Err() == nil {
		p.mu.Lock()
		waiting := p.subjects[about]
		if len(waiting) == 0 {
			delete(p.subjects, about)
			p.mu.Unlock()
			return
		}
		w := waiting[0]
		waiting[0] = nil
		p.subjects[about] = waiting[1:]
		p.mu.Unlock()
		if w.offered {
			// Left to the log if it fails, as what is handled ahead is.
			if p.r.react(p.ctx, w.stored, w.event, p) == nil {
				p.handledAhead(w.stored.ID)
			}
			continue
		}
		if p.aheadOfLog(w.stored.ID) {
			p.finished(w.seq)
			continue
		}
		if err := p.r.handleEvent(p.ctx, w.stored, w.event, p); err != nil {
			var failure *Failure
			if errors.As(err, &failure) {
				p.stop(failure)
			}
			return
		}
		p.finished(w.seq)
	}
}

// track enters a delivered event into the pipeline and returns its sequence number.
func (p *pipeline) track(e eventstore.Event) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	seq := p.next
	p.ring[seq%window] = tracked{position: e.Position, recordedAt: e.RecordedAt}
	p.delivered = e.Position
	if p.next == p.oldest {
		p.r.setPendingSince(e.RecordedAt)
	}
	p.next++
	return seq
}

// finished records that the event seq has been handled, and moves the checkpoint's reach
// past every handled event at the front of the pipeline.
func (p *pipeline) finished(seq uint64) {
	p.mu.Lock()
	p.ring[seq%window].done = true
	moved := 0
	for p.oldest < p.next && p.ring[p.oldest%window].done {
		t := p.ring[p.oldest%window]
		p.reached, p.at = t.position, t.recordedAt
		p.oldest++
		moved++
	}
	p.unsaved += moved
	idle := p.oldest == p.next
	if moved > 0 {
		if idle {
			p.r.setPendingSince(time.Time{})
		} else {
			p.r.setPendingSince(p.ring[p.oldest%window].recordedAt)
		}
	}
	due := moved > 0 && (idle || p.unsaved >= checkpointEvery)
	p.mu.Unlock()
	for range moved {
		<-p.slots
	}
	if due {
		select {
		case p.save <- struct{}{}:
		default:
		}
	}
}

// saver saves the checkpoint when finished asks, one save at a time: asks that come while
// one is under way are answered together by the next.
func (p *pipeline) saver() {
	for attempt := 0; ; {
		select {
		case <-p.ctx.Done():
			return
		case <-p.save:
		}
		err := p.saveCheckpoint(p.ctx)
		switch {
		case err == nil:
			attempt = 0
		case p.ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseLost):
			p.stop(err)
			return
		default:
			p.r.transient(err, "save the checkpoint")
			if sleep(p.ctx, p.r.backoff(attempt)) != nil {
				return
			}
			attempt++
			select {
			case p.save <- struct{}{}:
			default:
			}
		}
	}
}

// saveCheckpoint saves how far the events have been handled, if further than saved.
func (p *pipeline) saveCheckpoint(ctx context.Context) error {
	p.mu.Lock()
	reached, at, n := p.reached, p.at, p.unsaved
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := p.r.saveCheckpoint(ctx, reached); err != nil {
		return err
	}
	p.mu.Lock()
	p.unsaved -= n
	smooth := p.retrying == 0
	p.mu.Unlock()
	p.r.checkpointed(reached, at, n, smooth)
	return nil
}

// offer hands over an event the subscription has not delivered yet — an order just placed
// through the write path — to be handled at once, ahead of the log, by its subject's
// goroutine like the events handled ahead of the log after their cause (see
// Runner.handleAhead): the subscription wakes up after a delay that open transactions anywhere
// on the database stretch, and the order need not wait for it. When the subscription delivers
// the event, it is skipped. An event the subscription has delivered already is not taken, nor
// is one offered while the pipeline is closing.
func (p *pipeline) offer(e eventstore.Event, de domain.Event) {
	about := subject(de)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ctx.Err() != nil || e.Position.Compare(p.delivered) <= 0 {
		return
	}
	waiting, busy := p.subjects[about]
	p.subjects[about] = append(waiting, &work{stored: e, event: de, offered: true})
	if !busy {
		p.wg.Go(func() { p.handleSubject(about) })
	}
}

// handledAhead records that the event id has been handled before the subscription delivered
// it, and aheadOfLog, when it comes, that it need not be handled again.
func (p *pipeline) handledAhead(id uuid.UUID) {
	p.mu.Lock()
	p.ahead[id] = struct{}{}
	p.mu.Unlock()
}

func (p *pipeline) aheadOfLog(id uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.ahead[id]
	delete(p.ahead, id)
	return ok
}

// retry and recovered count the lanes retrying a failed command.
func (p *pipeline) retry() {
	p.mu.Lock()
	p.retrying++
	p.mu.Unlock()
}

func (p *pipeline) recovered() {
	p.mu.Lock()
	p.retrying--
	p.mu.Unlock()
}

// close stops the pipeline after the subscription ended with err, saves how far it got, and
// returns why it stopped: the pipeline's own reason (an event's *Failure, ErrLeaseLost) before
// the subscription's error.
func (p *pipeline) close(ctx context.Context, err error) error {
	p.stop(err)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	cause := context.Cause(p.ctx)
	var failure *Failure
	switch {
	case errors.As(cause, &failure):
		err = failure
	case errors.Is(cause, ErrLeaseLost):
		return cause
	}
	// Whatever stopped it, the events handled so far need not be handled again: a restart, or
	// the runner that takes over, starts after them. An event whose handling was cut short
	// is not among them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := p.saveCheckpoint(sctx); serr != nil && !errors.Is(serr, ErrLeaseLost) {
		p.r.log.Warn("automation: could not save the checkpoint on the way out; the events since the last one will be handled again", "holder", p.r.holder, "error", serr)
	}
	return err
}
