package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// The states of a follower, the same for every follower and every process.
const (
	StateStarting = "starting" // not yet holding its lease, nor known to stand by
	StateActive   = "active"   // holds the lease and follows the log
	StateStandby  = "standby"  // another process holds the lease; this one takes over when it goes
	StateRetrying = "retrying" // the last attempt failed (a store unreachable…); it tries again
	StateFailed   = "failed"   // met an event it must not skip (a bug); it stays stopped on it
	StateStopped  = "stopped"  // not running: Run has returned
)

// Fail marks err as one the follower must stop on rather than retry: Lead and Run return it,
// and the follower reports StateFailed.
func Fail(err error) error {
	if err == nil {
		return nil
	}
	return &failure{err}
}

type failure struct{ err error }

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// IsFailure reports whether err was marked with Fail.
func IsFailure(err error) bool {
	var f *failure
	return errors.As(err, &f)
}

// Reporter is told each change of a follower's state: holder is the fence token of the
// active holder while standing by, err the error retried or failed on.
type Reporter func(state, holder string, err error)

// Lead holds the lease name whenever it can and runs act under it, until ctx ends: it stands
// by while another process holds the lease (trying every poll interval), runs act with a
// context that ends when the term is lost, and frees the lease when act returns. An error
// from act is retried with backoff, after the lease is freed, unless it is marked with Fail:
// Lead then returns it. Lead returns ctx's error when ctx ends.
func (s *Store) Lead(ctx context.Context, name string, report Reporter, act func(ctx context.Context, t *Term) error, opts ...Option) error {
	o := buildOptions(opts)
	if report == nil {
		report = func(string, string, error) {}
	}
	log := o.log.With("lease", name)
	backoff := retryMin
	lastHolder := ""
	for ctx.Err() == nil {
		t, err := s.Acquire(ctx, name)
		var held *HeldError
		switch {
		case ctx.Err() != nil:
			if t != nil {
				t.Release() // taken just as ctx ended
			}
			return ctx.Err()
		case errors.As(err, &held):
			if held.Holder != lastHolder {
				log.Info("follow: standing by; another process holds the lease", "holder", held.Holder)
				lastHolder = held.Holder
			}
			report(StateStandby, held.Holder, nil)
			sleep(ctx, o.poll)
			continue
		case err != nil:
			report(StateRetrying, "", err)
			log.Warn("follow: cannot take the lease; retrying", "err", err, "in", backoff)
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, retryMax)
			continue
		}
		lastHolder = ""
		log.Info("follow: lease taken; active", "token", t.Token())
		report(StateActive, "", nil)
		termCtx, end := WithTerm(ctx, t)
		err = act(termCtx, t)
		lost := errors.Is(context.Cause(termCtx), ErrLeaseLost)
		end()
		t.Release()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case IsFailure(err):
			report(StateFailed, "", err)
			log.Error("follow: stopped on an error it must not skip", "err", err)
			return err
		case lost || errors.Is(err, ErrLeaseLost):
			log.Warn("follow: lease lost; standing by", "err", err)
			report(StateStarting, "", nil)
			backoff = retryMin
		default:
			if err == nil {
				err = errors.New("follow: the follower returned while its context was live")
			}
			report(StateRetrying, "", err)
			log.Warn("follow: follower failed; retrying", "err", err, "in", backoff)
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, retryMax)
		}
	}
	return ctx.Err()
}

// Backoff between retries.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
)

// jitter spreads retries over [d/2, d], so that processes do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(mathrand.Int64N(int64(d/2)+1))
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

// Handler handles a batch of events, in log order. An error has the batch handled again from
// the last checkpoint after a backoff, unless it is marked with Fail.
type Handler func(ctx context.Context, batch []eventstore.Event) error

// Follower follows the log from its checkpoint under its lease, calls its handler with each
// batch and then saves the checkpoint, fenced: at least once per event, and never two
// processes at a time.
type Follower struct {
	leases *Store
	events eventstore.Store
	name   string
	handle Handler
	opts   []Option
	log    *slog.Logger

	mu     sync.Mutex
	status Status
}

// Status is what a Follower reports, for /readyz and operators.
type Status struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Holder is this process in the lease; LeaseHolder the active holder's fence token while
	// this one stands by.
	Holder      string `json:"holder"`
	LeaseHolder string `json:"lease_holder,omitempty"`
	// Position is the checkpoint: every event up to it has been handled.
	Position  string `json:"position"`
	LastError string `json:"last_error,omitempty"`
}

// New returns a follower of the log events under the lease name kept in leases.
func New(leases *Store, events eventstore.Store, name string, handle Handler, opts ...Option) *Follower {
	o := buildOptions(opts)
	return &Follower{
		leases: leases, events: events, name: name, handle: handle, opts: opts, log: o.log,
		status: Status{Name: name, State: StateStarting, Holder: leases.Holder(), Position: eventstore.Position{}.String()},
	}
}

// Status returns a snapshot of what the follower is doing.
func (f *Follower) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *Follower) report(state, holder string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.State, f.status.LeaseHolder, f.status.LastError = state, holder, ""
	if err != nil {
		f.status.LastError = err.Error()
	}
}

// Run follows the log until ctx ends (it returns ctx's error) or the handler fails with an
// error marked by Fail (it returns that error).
func (f *Follower) Run(ctx context.Context) error {
	defer func() {
		f.mu.Lock()
		if f.status.State != StateFailed {
			f.status.State = StateStopped
		}
		f.mu.Unlock()
	}()
	return f.leases.Lead(ctx, f.name, f.report, func(ctx context.Context, t *Term) error {
		from, err := f.leases.Position(ctx, f.name)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.status.Position = from.String()
		f.mu.Unlock()
		err = f.events.Subscribe(ctx, from, func(ctx context.Context, batch []eventstore.Event) error {
			if len(batch) == 0 {
				return nil
			}
			if err := f.handle(ctx, batch); err != nil {
				return err
			}
			last := batch[len(batch)-1].Position
			if err := f.leases.Save(ctx, t, last); err != nil {
				return err
			}
			f.mu.Lock()
			f.status.Position, f.status.State, f.status.LastError = last.String(), StateActive, ""
			f.mu.Unlock()
			return nil
		})
		if err == nil {
			err = fmt.Errorf("follow: the subscription of %s ended", f.name)
		}
		return err
	}, f.opts...)
}
