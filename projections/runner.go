package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
)

// Errors WaitFor returns besides the context's.
var (
	// ErrProjectorStopped: a projector the caller waits for stopped on a broken event and will
	// not get further until it is fixed and rebuilt.
	ErrProjectorStopped = errors.New("projections: projector stopped")
	// ErrUnknownProjector: no projector of that name runs in this Runner.
	ErrUnknownProjector = errors.New("projections: no such projector in this runner")
)

// Projector states, as Status reports them: those of every follower (package follow).
const (
	StateStarting = follow.StateStarting // not yet holding its lease
	StateActive   = follow.StateActive   // holds its lease and follows the log
	StateStandby  = follow.StateStandby  // another process holds the lease; this one takes over when it goes
	StateRetrying = follow.StateRetrying // the last attempt failed (store unreachable…); it tries again
	StateFailed   = follow.StateFailed   // a broken event stopped it; see BrokenEvent
)

// Defaults of a Runner.
const (
	// defaultLeaseTTL is how long the checkpoint row names a runner as its writer without
	// renewal. Who may project is decided by the lease of package follow, which frees the
	// moment its holder dies; the row's expiry only tells a replay that a server is live, and
	// lets a runner take a row from a rebuild that died.
	defaultLeaseTTL = 15 * time.Second
	// standbyRetry is how often a projector in standby tries the lease and reads the
	// checkpoint its holder reached, which is what ?after= waits then see.
	standbyRetry = 200 * time.Millisecond
	retryMin     = 100 * time.Millisecond
	retryMax     = 10 * time.Second
	// liveCacheRows bounds the rows a running projector keeps from one batch to the next;
	// past it, it forgets them all and reads back the few the next batches touch.
	liveCacheRows = 10000
)

// Runner runs projectors in this process: each takes the log from a feed they share (one
// subscription, see logFeed) and moves on its own, so a slow or stopped projector holds no
// other back.
type Runner struct {
	store    eventstore.Store
	read     *ReadStore
	owner    string
	leaseTTL time.Duration
	log      *slog.Logger
	now      func() time.Time
	// followOnly: project nothing, only follow the checkpoints others write.
	followOnly bool
	// leases decide which process projects; nil until Run when the Runner opens its own.
	leases *follow.Store

	workers []*worker // the projectors, in report order
	counter *worker   // counts the log's events, for lag
	byName  map[string]*worker
	feed    *logFeed
}

// Option configures a Runner.
type Option func(*runnerConfig)

type runnerConfig struct {
	followOnly bool
	names      []string
	leaseTTL   time.Duration
	log        *slog.Logger
	owner      string
	registry   *prometheus.Registry
	leases     *follow.Store
}

// WithLeases takes the projectors' leases in leases (one per projector, named after it), as
// the other followers of the process do. By default Run opens leases of its own in the read
// store's database, named after WithOwner.
func WithLeases(l *follow.Store) Option { return func(c *runnerConfig) { c.leases = l } }

// WithProjectors runs only the named projectors (all by default).
func WithProjectors(names ...string) Option {
	return func(c *runnerConfig) { c.names = names }
}

// WithFollowOnly makes a Runner that projects nothing: it reads the checkpoints the processes
// that do project write, once a second, so that WaitFor and Status work in a process that only
// serves reads.
func WithFollowOnly() Option { return func(c *runnerConfig) { c.followOnly = true } }

// WithLeaseTTL sets how long a projector's lease lasts without renewal: how soon another
// process takes over after this one dies. Leases are renewed every third of it.
func WithLeaseTTL(d time.Duration) Option { return func(c *runnerConfig) { c.leaseTTL = d } }

// WithLogger sets the logger (slog.Default by default).
func WithLogger(l *slog.Logger) Option { return func(c *runnerConfig) { c.log = l } }

// WithOwner names this process in the leases it opens (host:pid:random by default).
func WithOwner(id string) Option { return func(c *runnerConfig) { c.owner = id } }

// WithRegistry registers the lag metrics on reg.
func WithRegistry(reg *prometheus.Registry) Option { return func(c *runnerConfig) { c.registry = reg } }

// NewRunner prepares the projectors; Run starts them.
func NewRunner(store eventstore.Store, read *ReadStore, opts ...Option) (*Runner, error) {
	cfg := runnerConfig{leaseTTL: defaultLeaseTTL, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.owner == "" {
		cfg.owner = ownerID("")
	}
	if cfg.leaseTTL <= 0 {
		return nil, fmt.Errorf("projections: lease TTL must be positive, got %s", cfg.leaseTTL)
	}
	ps, err := selectProjectors(cfg.names)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		store: store, read: read, owner: cfg.owner, leaseTTL: cfg.leaseTTL, log: cfg.log, now: time.Now,
		followOnly: cfg.followOnly, byName: map[string]*worker{}, leases: cfg.leases,
	}
	for _, p := range ps {
		w := newWorker(r, p, p.name())
		r.workers = append(r.workers, w)
		r.byName[p.name()] = w
	}
	r.counter = newWorker(r, nil, logCounter)
	r.feed = newLogFeed(store, func(t string) bool {
		return slices.ContainsFunc(ps, func(p projector) bool { return p.handles(t) })
	}, feedKeep)
	if cfg.registry != nil {
		if err := cfg.registry.Register(runnerCollector{r}); err != nil {
			return nil, fmt.Errorf("projections: register metrics: %w", err)
		}
	}
	return r, nil
}

// ownerID names this process: host, pid and a random part, so two runners never share a name.
func ownerID(role string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	if role != "" {
		id = role + "@" + id
	}
	return id
}

// Run runs the projectors until ctx ends, then frees their leases. A projector stopped by a
// broken event stays stopped while the others go on; Run returns nil once ctx is done.
func (r *Runner) Run(ctx context.Context) error {
	names := []string{logCounter}
	for _, w := range r.workers {
		names = append(names, w.name)
	}
	if err := r.read.ensureStateRows(ctx, names); err != nil {
		if ctx.Err() != nil {
			// Stopped before it started (a server shutting down at once): as documented, nil.
			return nil
		}
		return fmt.Errorf("projections: %w", err)
	}
	if r.leases == nil && !r.followOnly {
		leases, err := follow.Open(ctx, r.read.dsn, follow.WithHolder(r.owner), follow.WithLogger(r.log))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("projections: %w", err)
		}
		defer leases.Close()
		r.leases = leases
	}
	r.feed.open(ctx)
	var wg sync.WaitGroup
	for _, w := range append([]*worker{r.counter}, r.workers...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// WaitFor returns once the named projectors (all of this Runner's when none is named) have
// read the log at least up to pos; it watches their progress in this process. It fails with
// ErrProjectorStopped if one of them has stopped short of pos, and with ctx's error when ctx
// ends first.
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position, projectors ...string) error {
	workers := r.workers
	if len(projectors) > 0 {
		workers = make([]*worker, 0, len(projectors))
		for _, n := range projectors {
			w, ok := r.byName[n]
			if !ok {
				return fmt.Errorf("%w: %q", ErrUnknownProjector, n)
			}
			workers = append(workers, w)
		}
	}
	for _, w := range workers {
		for {
			changed, cur, broken := w.watch()
			if cur.pos.Compare(pos) >= 0 {
				break
			}
			if broken != nil {
				return fmt.Errorf("%w: %v", ErrProjectorStopped, broken)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
		}
	}
	return nil
}

// worker runs one projector, or the log counter (p nil), in a Runner.
type worker struct {
	r    *Runner
	p    projector
	name string

	// writeMu makes this projector's transactions (batches, renewals) take turns, and guards
	// w and persisted.
	writeMu   sync.Mutex
	w         writer
	persisted progress
	// rows holds, from one batch to the next, the rows the projector read or wrote since it
	// took the lease, so that a batch reads back only the rows it has not seen: they cannot
	// have changed under it, since every write to its tables moves its checkpoint, which
	// fences this writer off. Nil after a failed batch, whose changes it may hold.
	rows batch

	mu      sync.Mutex
	current progress
	changed chan struct{} // closed and replaced whenever current moves
	state   string
	holder  string
	lastErr error
	broken  *EventError
}

func newWorker(r *Runner, p projector, name string) *worker {
	return &worker{r: r, p: p, name: name, changed: make(chan struct{}), state: StateStarting}
}

// watch returns the progress, a channel closed when it next moves, and the broken event if the
// projector stopped.
func (w *worker) watch() (<-chan struct{}, progress, *EventError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed, w.current, w.broken
}

func (w *worker) publish(p progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current = p
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *worker) progress() progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

func (w *worker) setState(state, holder string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state, w.holder, w.lastErr = state, holder, err
}

func (w *worker) stop(broken *EventError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state, w.broken, w.lastErr = StateFailed, broken, broken
	// Wake WaitFor callers so they learn at once.
	close(w.changed)
	w.changed = make(chan struct{})
}

// LeaseName is the name of a projector's lease in package follow ("log" is the counter of
// the log's events that every projector's lag is measured against).
func LeaseName(projector string) string { return "projector-" + projector }

// LeaseNames are the leases of every projector and of the log counter.
func LeaseNames() []string {
	names := []string{LeaseName(logCounter)}
	for _, n := range Names() {
		names = append(names, LeaseName(n))
	}
	return names
}

// run takes the lease and follows the log until ctx ends or a broken event stops it, waiting
// in standby while another process holds the lease and retrying after failures.
//
// The lease (package follow) decides which process projects; it frees the moment its holder
// dies. The projector's checkpoint row carries the term's token, and every batch commits only
// while the row still carries it, so a holder cut off from the database that has not noticed
// yet commits nothing once another has taken over.
func (w *worker) run(ctx context.Context) {
	log := w.r.log.With("projector", w.name)
	token := ""
	defer func() {
		if token == "" {
			return
		}
		// A row taken just as ctx ended, before this worker learned it had it, would
		// otherwise name this process as a live writer to a replay until it lapses.
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := w.r.read.dropLease(dropCtx, w.name, token); err != nil {
			log.Warn("freeing the projector's checkpoint row failed; it lapses on its own", "err", err)
		}
	}()
	backoff := retryMin
	retry := func(err error) {
		w.setState(StateRetrying, "", err)
		log.Error("projector failed; retrying", "err", err, "in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, retryMax)
	}
	standby := func(holder string) {
		// The holder's checkpoint is what the read models show: report it.
		cp, err := w.r.read.readCheckpoint(ctx, w.r.read.reads, w.name)
		if err != nil {
			if ctx.Err() == nil {
				retry(err)
			}
			return
		}
		w.publish(cp.progress)
		if holder == "" {
			holder = cp.leaseOwner
		}
		w.setState(StateStandby, holder, nil)
		sleep(ctx, standbyRetry)
	}
	for ctx.Err() == nil {
		if w.r.followOnly {
			w.follower(ctx)
			continue
		}
		term, err := w.r.leases.Acquire(ctx, LeaseName(w.name))
		var held *follow.HeldError
		switch {
		case ctx.Err() != nil:
			if term != nil {
				term.Release() // taken just as ctx ended
			}
			return
		case errors.As(err, &held):
			standby(held.Holder)
			continue
		case err != nil:
			retry(err)
			continue
		}
		token = term.Token()
		cp, holds, err := w.r.read.acquire(ctx, w.name, token, w.r.leaseTTL, w.r.now())
		if err != nil || !holds {
			term.Release()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				retry(err)
			default:
				// A rebuild or a replay has the row: wait for it to finish.
				standby(cp.leaseOwner)
			}
			continue
		}
		w.writeMu.Lock()
		w.w = writer{owner: token, generation: cp.generation, leaseTTL: w.r.leaseTTL, now: w.r.now}
		w.persisted = cp.progress
		// Whoever held the lease meanwhile may have changed any row.
		w.rows = nil
		w.writeMu.Unlock()
		if w.p != nil {
			// A rebuild that died before its end leaves the indexes it dropped missing.
			if err := w.r.read.ensureIndexes(ctx, w.p.tables()...); err != nil {
				w.release(ctx)
				term.Release()
				if ctx.Err() == nil {
					retry(err)
				}
				continue
			}
		}
		// Every write to the projector's tables now goes through this worker.
		w.r.read.startCaching(w.name)
		w.publish(cp.progress)
		w.setState(StateActive, "", nil)
		log.Info("projector active", "from", cp.progress.pos.String(), "events", cp.progress.events, "term", token)

		termCtx, endTerm := follow.WithTerm(ctx, term)
		err = w.follow(termCtx)
		lost := errors.Is(context.Cause(termCtx), follow.ErrLeaseLost)
		endTerm()
		// Before anything else is published: another process may write the tables from now on.
		w.r.read.stopCaching(w.name)
		var broken *EventError
		switch {
		case ctx.Err() != nil:
			w.release(ctx)
			term.Release()
			return
		case errors.As(err, &broken):
			log.Error("projector stopped on a broken event", "position", broken.Position.String(), "stream", broken.Stream,
				"version", broken.Version, "type", broken.Type, "event_id", broken.EventID.String(), "err", broken.Err)
			w.release(ctx)
			term.Release()
			w.stop(broken)
			return
		case lost:
			log.Warn("projector's lease session ended; standing by")
			term.Release()
			w.setState(StateStarting, "", nil)
			backoff = retryMin
		case errors.Is(err, errFenced):
			log.Warn("projector taken over by another process; standing by")
			term.Release()
			backoff = retryMin
		default:
			w.release(ctx)
			term.Release()
			retry(err)
		}
	}
}

// follower reports the checkpoint whoever projects has written, then waits a little.
func (w *worker) follower(ctx context.Context) {
	cp, err := w.r.read.readCheckpoint(ctx, w.r.read.reads, w.name)
	switch {
	case err == nil:
		w.publish(cp.progress)
		w.setState(StateStandby, cp.leaseOwner, nil)
	case ctx.Err() == nil:
		w.setState(StateRetrying, "", err)
	}
	sleep(ctx, standbyRetry)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// follow subscribes from the checkpoint and projects every batch, renewing the lease on the
// side, until an error or ctx ends.
func (w *worker) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var heartbeat sync.WaitGroup
	heartbeat.Add(1)
	go func() {
		defer heartbeat.Done()
		ticker := time.NewTicker(w.r.leaseTTL / 3)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			if err := w.renew(ctx); err != nil {
				cancel(err)
				return
			}
		}
	}()
	err := w.r.feed.follow(ctx, w.progress().pos, w.handle)
	cancel(nil)
	heartbeat.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// handle projects one batch of the log, decoded by the feed or not (decoded nil): the events
// up to a broken one, then stops on it.
func (w *worker) handle(ctx context.Context, batch []eventstore.Event, decoded []decodedEvent) error {
	if w.p == nil {
		w.publish(w.progress().after(batch))
		return nil
	}
	var (
		envs   []envelope
		n      int
		broken *EventError
	)
	if decoded == nil {
		envs, n, broken = decode(w.name, batch, w.p.handles)
	} else {
		envs, n, broken = pick(w.name, batch, decoded, w.p.handles)
	}
	if err := w.project(ctx, batch[:n], envs); err != nil {
		return err
	}
	if broken != nil {
		return broken
	}
	return nil
}

// project applies events (envs are those the projector wants, decoded) and moves the
// checkpoint past them. A batch with nothing to write only moves the progress in memory; the
// next write or renewal records it.
func (w *worker) project(ctx context.Context, events []eventstore.Event, envs []envelope) error {
	if len(events) == 0 {
		return nil
	}
	next := w.progress().after(events)
	if len(envs) == 0 {
		w.publish(next)
		return nil
	}
	w.writeMu.Lock()
	if w.rows == nil {
		w.rows = w.p.newBatch(w.r.read.dialect)
	}
	err := w.r.read.commitBatch(ctx, w.p, w.w, w.persisted, next, w.rows, envs)
	if err == nil {
		w.persisted = next
		if w.rows.written() > liveCacheRows {
			w.rows = nil
		}
		// Under writeMu: a renewal in between would record the progress before this batch
		// as the checkpoint, behind the rows just committed.
		w.publish(next)
	} else {
		// Rolled back: the rows in memory may hold what it applied.
		w.rows = nil
	}
	w.writeMu.Unlock()
	var broken *EventError
	if errors.As(err, &broken) {
		// Keep what comes before the broken event, so the read model stops right at it.
		i := slices.IndexFunc(events, func(e eventstore.Event) bool { return e.Position == broken.Position })
		j := slices.IndexFunc(envs, func(e envelope) bool { return e.meta.Position == broken.Position })
		if i > 0 && j >= 0 {
			if err := w.project(ctx, events[:i], envs[:j]); err != nil {
				return err
			}
		}
		return broken
	}
	return err
}

// renew records the progress made in memory and extends the lease.
func (w *worker) renew(ctx context.Context) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	cur := w.progress()
	if err := w.r.read.renew(ctx, w.name, w.w, w.persisted, cur); err != nil {
		return err
	}
	w.persisted = cur
	return nil
}

// release records the progress and frees the lease, so that another process can take over at
// once rather than when the lease would have lapsed.
func (w *worker) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if err := w.r.read.release(ctx, w.name, w.w, w.persisted, w.progress()); err != nil && !errors.Is(err, errFenced) {
		w.r.log.Warn("releasing the projector's lease failed; it lapses on its own", "projector", w.name, "err", err)
	}
}
