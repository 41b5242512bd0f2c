package automation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
)

// Name is the automation's lease and checkpoint in package follow.
const Name = "order-to-cash"

// Actor is the actor recorded on every event the automation causes.
const Actor = "automation"

// Runner states, as Status reports them: those of every follower (package follow).
const (
	StateStarting = follow.StateStarting // not yet holding the lease
	StateStandby  = follow.StateStandby  // another runner holds the lease
	StateActive   = follow.StateActive   // holds the lease and follows the log
	StateRetrying = follow.StateRetrying // a store is failing; retrying without advancing
	StateFailed   = follow.StateFailed   // an event cannot be handled: a bug, see Failure
	StateStopped  = follow.StateStopped  // Run has returned
)

// ErrLeaseLost: the runner's term ended (another process took the lease): it stops acting
// until it holds the lease again.
var ErrLeaseLost = follow.ErrLeaseLost

// Runner follows the log and sends the order-to-cash commands. Create it with New, start it
// with Run, and read Status for readiness and diagnostics.
type Runner struct {
	h          *commands.Handler
	store      eventstore.Store
	leases     *follow.Store
	holder     string
	lanes      int
	log        *slog.Logger
	metrics    *Metrics
	minBackoff time.Duration
	maxBackoff time.Duration

	// afterSend, when set (by tests), is called after each command is sent and before the
	// batch's checkpoint is saved: the moment a crash is most likely to cause a repeat.
	afterSend func(e eventstore.Event, purpose string)

	mu           sync.Mutex
	term         *follow.Term // while the runner holds the lease
	status       Status
	pendingSince time.Time // recorded time of the oldest event delivered and not yet handled
	// newestSent is the position of the newest event the runner's commands appended (or found
	// appended): once the checkpoint reaches it, the runner has handled its own consequences.
	newestSent eventstore.Position
	// current is the pipeline following the log while the runner leads, for the write path's
	// hand-off of placed orders (see orderPlaced); nil otherwise.
	current *pipeline
}

// Option configures a Runner.
type Option func(*Runner)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithMetrics records the runner's work in m (see NewMetrics).
func WithMetrics(m *Metrics) Option {
	return func(r *Runner) {
		r.metrics = m
		m.runner.Store(r)
	}
}

// WithLanes sets how many subjects — orders, purchase orders — have their events handled at
// once (default 256). The events about one subject are handled one after another, in log
// order; see pipeline. A lane waits on round trips, not work: an order is a chain of
// appends (stock, order, numbering, order), so the lanes bound the orders invoiced per second
// to lanes / (the chain's time). The commands on one SKU and the invoice numbers are taken in
// batches, so more lanes mostly make bigger batches rather than more appends.
func WithLanes(n int) Option { return func(r *Runner) { r.lanes = max(n, 1) } }

// New returns a runner that sends commands through h, to h's store, and keeps its checkpoint
// and lease in leases (named after this process there).
func New(h *commands.Handler, leases *follow.Store, opts ...Option) *Runner {
	r := &Runner{
		h:          h,
		store:      h.Store(),
		leases:     leases,
		holder:     leases.Holder(),
		lanes:      256,
		log:        slog.Default(),
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 10 * time.Second,
		status:     Status{State: StateStarting},
	}
	for _, o := range opts {
		o(r)
	}
	r.status.Holder = r.holder
	h.OnOrderPlaced(r.orderPlaced)
	return r
}

// orderPlaced is the hand-off from the write path: an order placed through the runner's
// handler is handled at once while the runner leads (see pipeline.offer), not when the log
// subscription wakes up and delivers it. A runner in standby leaves it to the log, as does a
// process whose runner is elsewhere.
func (r *Runner) orderPlaced(placed eventstore.Event, order domain.OrderPlaced) {
	r.mu.Lock()
	p := r.current
	r.mu.Unlock()
	if p != nil {
		p.offer(placed, order)
	}
}

// Status is what the runner is doing, for /readyz and operators.
type Status struct {
	State string `json:"state"`
	// Holder is this runner's name in the lease; LeaseHolder, while in standby, the active
	// runner's term (its name, '#', and the number of the term).
	Holder      string `json:"holder,omitempty"`
	LeaseHolder string `json:"lease_holder,omitempty"`
	// Position is the checkpoint: every event up to it has been handled.
	Position eventstore.Position `json:"position"`
	// LastEventAt is when the last event handled was recorded.
	LastEventAt   time.Time `json:"last_event_at,omitzero"`
	LagSeconds    float64   `json:"lag_seconds"`
	EventsHandled uint64    `json:"events_handled"`
	// LastError is the transient error being retried, while State is retrying.
	LastError string   `json:"last_error,omitempty"`
	Failure   *Failure `json:"failure,omitempty"`
}

// Err is the failure that stopped the runner, or nil: /readyz should answer 503 with it.
func (s Status) Err() error {
	if s.Failure != nil {
		return s.Failure
	}
	return nil
}

// Failure is an event the automation could not handle because the domain refused a command it
// sent: a bug, never skipped. The runner stops and reports it until restarted.
type Failure struct {
	Position eventstore.Position `json:"position"`
	Stream   string              `json:"stream"`
	Version  uint64              `json:"version"`
	Type     string              `json:"type"`
	Message  string              `json:"error"`
	err      error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("automation: cannot handle %s at position %s (stream %s version %d): %s", f.Type, f.Position, f.Stream, f.Version, f.Message)
}

func (f *Failure) Unwrap() error { return f.err }

// Status returns a snapshot of what the runner is doing.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.LagSeconds = r.lagLocked()
	return s
}

// Lag is how long the oldest event delivered to the runner and not yet handled has waited
// since it was recorded; 0 when the runner is caught up (or not running).
func (r *Runner) Lag() time.Duration {
	return time.Duration(r.lagSeconds() * float64(time.Second))
}

func (r *Runner) lagSeconds() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lagLocked()
}

// lagLocked is how long the oldest event delivered to the runner and not yet handled has
// waited; 0 when the runner is caught up.
func (r *Runner) lagLocked() float64 {
	if r.pendingSince.IsZero() {
		return 0
	}
	return max(time.Since(r.pendingSince).Seconds(), 0)
}

func (r *Runner) update(change func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(&r.status)
}

// Run takes the lease (waiting in standby while another runner holds it), then follows the log
// from the checkpoint until ctx is done, which it returns, or an event cannot be handled, when
// it returns the *Failure. Store failures are retried with backoff; a lost lease sends the
// runner back to standby.
func (r *Runner) Run(ctx context.Context) error {
	r.update(func(s *Status) { s.State, s.Failure = StateStarting, nil })
	defer r.update(func(s *Status) {
		if s.State != StateFailed {
			s.State = StateStopped
		}
	})
	err := r.leases.Lead(ctx, Name, r.report, func(ctx context.Context, t *follow.Term) error {
		r.mu.Lock()
		r.term = t
		r.mu.Unlock()
		r.metrics.leaseHeld(true)
		defer func() {
			r.metrics.leaseHeld(false)
			r.mu.Lock()
			r.term = nil
			r.mu.Unlock()
		}()
		err := r.lead(ctx)
		var failure *Failure
		if errors.As(err, &failure) {
			return follow.Fail(failure)
		}
		return err
	}, follow.WithLogger(r.log))
	var failure *Failure
	if errors.As(err, &failure) {
		return failure
	}
	return err
}

// report records what the lease loop is doing.
func (r *Runner) report(state, holder string, err error) {
	if state == StateFailed {
		return // fail recorded the failure already
	}
	if err != nil {
		r.metrics.errorSeen("transient")
	}
	r.update(func(s *Status) {
		s.State, s.LeaseHolder, s.LastError = state, holder, ""
		if err != nil {
			s.LastError = err.Error()
		}
	})
}

// saveCheckpoint records that every event up to p is handled, fenced by the runner's term.
func (r *Runner) saveCheckpoint(ctx context.Context, p eventstore.Position) error {
	r.mu.Lock()
	t := r.term
	r.mu.Unlock()
	if t == nil {
		return fmt.Errorf("%w: the runner holds no term", ErrLeaseLost)
	}
	return r.leases.Save(ctx, t, p)
}

// lead follows the log while this runner holds the lease. It returns when ctx is done (the
// lease lost among the reasons), or an event cannot be handled; store failures are retried
// in place.
func (r *Runner) lead(work context.Context) error {
	for attempt := 0; ; attempt++ {
		from, err := r.leases.Position(work, Name)
		if err == nil {
			r.update(func(s *Status) { s.State, s.Position, s.LeaseHolder, s.LastError = StateActive, from, "", "" })
			r.log.Info("automation: following the log", "from", from.String())
			err = r.follow(work, from)
		}
		if work.Err() != nil {
			return context.Cause(work)
		}
		if errors.Is(err, ErrLeaseLost) {
			return err
		}
		var failure *Failure
		if errors.As(err, &failure) {
			return failure
		}
		if r.Status().Position != from {
			attempt = 0 // it got somewhere: this failure is a new one, not the last one again
		}
		r.transient(err, "follow the log")
		if err := sleep(work, r.backoff(attempt)); err != nil {
			return context.Cause(work)
		}
	}
}

// setPendingSince records when the oldest event delivered and not yet handled was recorded;
// the zero time when there is none.
func (r *Runner) setPendingSince(t time.Time) {
	r.mu.Lock()
	r.pendingSince = t
	r.mu.Unlock()
}

// checkpointed records a checkpoint saved at position, after n more events, the last of them
// recorded at. smooth says that no command is being retried: the runner is running again.
func (r *Runner) checkpointed(position eventstore.Position, at time.Time, n int, smooth bool) {
	r.metrics.handled(n, at)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Position = position
	r.status.LastEventAt = at
	r.status.EventsHandled += uint64(n)
	if smooth && r.status.State == StateRetrying {
		r.status.State, r.status.LastError = StateActive, ""
	}
}

// handleEvent sends the commands an event calls for, retrying with backoff while the store
// fails. A command the domain refuses is a bug: the runner stops with a *Failure.
func (r *Runner) handleEvent(ctx context.Context, e eventstore.Event, de domain.Event, p *pipeline) error {
	retrying := false
	defer func() {
		if retrying {
			p.recovered()
		}
	}()
	for attempt := 0; ; attempt++ {
		err := r.react(ctx, e, de, p)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, _, refused := domain.KindOf(err); refused {
			return r.fail(e, err)
		}
		if !retrying {
			retrying = true
			p.retry()
		}
		r.transient(err, "handle "+e.Type+" at "+e.Position.String()+" of "+e.Stream)
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return err
		}
	}
}

// react sends the commands e calls for, and handles ahead of the log what they append about
// e's subject (see handleAhead). Each command goes to a stream of its own (a line's SKU, a
// numbering series), so they are sent at once: the event takes as long as its slowest
// command, not as long as all of them one after another.
func (r *Runner) react(ctx context.Context, e eventstore.Event, de domain.Event, p *pipeline) error {
	cmds, err := reactions(ctx, r.h, p.numbers, p.stock, e.Version, de)
	if err != nil {
		return err
	}
	sent := make([]sentCommand, len(cmds))
	if len(cmds) == 1 {
		if sent[0], err = r.send(ctx, e, cmds[0]); err != nil {
			return err
		}
	} else {
		errs := make([]error, len(cmds))
		var wg sync.WaitGroup
		for i, c := range cmds {
			wg.Go(func() { sent[i], errs[i] = r.send(ctx, e, c) })
		}
		wg.Wait()
		for _, err := range errs {
			if _, _, refused := domain.KindOf(err); refused {
				return err // whatever else failed, a refusal stops the runner
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	r.handleAhead(ctx, p, subject(de), sent)
	return nil
}

// numberPurpose, followed by an order's ID, is the purpose of the command that takes the
// order's invoice number; numberCommands is the namespace of those commands' IDs.
const numberPurpose = "assign-invoice-number/"

var numberCommands = uuid.MustParse("5b0c1a1e-6f7d-4e55-9a43-1f4e0c2d7a90")

// numberMeta is the Meta of the command that takes orderID's invoice number in answer to e.
// Two events ask for it (the allocations that confirm the order, ahead, and its confirmation
// read from the log), so unlike other commands its ID is derived from the order alone: the
// series remembers the orders of its last numbers only, and a second request for an order it
// has forgotten is then still recognised by its event, which the store finds by ID, instead of
// taking a second number.
func numberMeta(e eventstore.Event, orderID string) commands.Meta {
	m := commandMeta(e, numberPurpose+orderID)
	m.CommandID = commands.DeriveID(numberCommands, numberPurpose+orderID)
	return m
}

// sentCommand is a command sent and its result.
type sentCommand struct {
	meta   commands.Meta
	stream string
	res    commands.Result
}

// commandMeta is the Meta of the command sent for purpose in answer to e: its ID is derived
// from both, so that answering e again sends the very same command.
func commandMeta(e eventstore.Event, purpose string) commands.Meta {
	correlation := e.Metadata.CorrelationID
	if correlation == "" {
		correlation = e.ID.String()
	}
	return commands.Meta{
		CommandID:     commands.DeriveID(e.ID, purpose),
		CausationID:   e.ID.String(),
		CorrelationID: correlation,
		Actor:         Actor,
	}
}

// send sends one command in answer to e.
func (r *Runner) send(ctx context.Context, e eventstore.Event, c command) (sentCommand, error) {
	meta := commandMeta(e, c.purpose)
	if c.meta != nil {
		meta = c.meta(e)
	}
	res, err := c.send(ctx, r.h, meta)
	if _, _, refused := domain.KindOf(err); refused || (err == nil && res.Unchanged) {
		// The handler decides on its cached fold of the stream and re-reads it only when an
		// append conflicts, so a refusal or an empty decision may come from a fold that
		// misses what another process appended — the very event that led here. Decide
		// again on the stream as it is.
		if err := c.refresh(ctx, r.h); err != nil {
			return sentCommand{}, fmt.Errorf("%s: %w", c.purpose, err)
		}
		res, err = c.send(ctx, r.h, meta)
	}
	if err != nil {
		return sentCommand{}, fmt.Errorf("%s: %w", c.purpose, err)
	}
	r.sent(e, c.purpose, res)
	return sentCommand{meta, c.stream, res}, nil
}

// sent records a command sent in answer to e.
func (r *Runner) sent(e eventstore.Event, purpose string, res commands.Result) {
	r.metrics.commandSent(res)
	r.mu.Lock()
	if res.Position.Compare(r.newestSent) > 0 {
		r.newestSent = res.Position
	}
	r.mu.Unlock()
	if r.afterSend != nil {
		r.afterSend(e, purpose)
	}
}

// fail records and logs an event that cannot be handled.
func (r *Runner) fail(e eventstore.Event, err error) *Failure {
	f := &Failure{Position: e.Position, Stream: e.Stream, Version: e.Version, Type: e.Type, Message: err.Error(), err: err}
	r.metrics.errorSeen("fatal")
	r.log.Error("automation: stopped: an event cannot be handled; this is a bug, fix it and restart",
		"position", e.Position.String(), "stream", e.Stream, "version", e.Version, "type", e.Type, "error", err)
	r.update(func(s *Status) { s.State, s.Failure = StateFailed, f })
	return f
}

// transient records and logs an error that will be retried.
func (r *Runner) transient(err error, doing string) {
	r.metrics.errorSeen("transient")
	r.log.Warn("automation: retrying", "doing", doing, "error", err)
	r.update(func(s *Status) { s.State, s.LastError = StateRetrying, err.Error() })
}

// backoff is the wait before retry number attempt+1: doubling from minBackoff up to
// maxBackoff, with jitter so that runners and writers do not retry in lockstep.
func (r *Runner) backoff(attempt int) time.Duration {
	d := r.maxBackoff
	if attempt < 30 {
		d = min(r.minBackoff<<attempt, r.maxBackoff)
	}
	return d/2 + time.Duration(mathrand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// handledTypes are the events reactions answers; the runner does not decode the others.
var handledTypes = map[string]bool{
	domain.OrderPlaced{}.EventType():              true,
	domain.StockAllocated{}.EventType():           true,
	domain.BackorderFilled{}.EventType():          true,
	domain.OrderConfirmed{}.EventType():           true,
	domain.InvoiceNumberAssigned{}.EventType():    true,
	domain.OrderInvoiced{}.EventType():            true,
	domain.OrderCancelled{}.EventType():           true,
	domain.CreditNoteNumberAssigned{}.EventType(): true,
	domain.OrderShipped{}.EventType():             true,
	domain.OrderReturned{}.EventType():            true,
	domain.ReplenishmentRequested{}.EventType():   true,
	domain.PurchaseOrderReceived{}.EventType():    true,
}
