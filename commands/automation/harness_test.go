package automation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/eventstore/sqlite"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// env is one test's world: an event store, the checkpoint table, and a handler that plays the
// people and systems outside the automation (the shop taking orders, the warehouse, finance).
type env struct {
	t           *testing.T
	store       eventstore.Store
	h           *commands.Handler
	dsn         string        // the checkpoint database
	checkpoints *follow.Store // the leases and checkpoints, named "test-runner"
	seq         int           // for unique command IDs of the outside world
	seqMu       sync.Mutex
	supervisors []*supervisor
	fresh       func(t *testing.T) *env // another empty world on the same kind of store
	lastWrite   eventstore.Position     // of the newest event the outside world appended
}

// eachStore runs test on SQLite (a file in t.TempDir(), checkpoints in the same file as the
// default configuration has it) and on PostgreSQL (a database of its own, via pgtest).
func eachStore(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteEnv(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, postgresEnv(t)) })
}

func sqliteEnv(t *testing.T) *env {
	path := filepath.Join(t.TempDir(), "orderledger.db")
	store, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, store, "sqlite:"+path, sqliteEnv)
}

func postgresEnv(t *testing.T) *env {
	dsn := pgtest.NewDatabase(t)
	store, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, store, dsn, postgresEnv)
}

func newEnv(t *testing.T, store eventstore.Store, dsn string, fresh func(*testing.T) *env) *env {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, dsn: dsn}
	cps := e.leases("test-runner")
	return &env{t: t, store: store, h: commands.NewHandler(store), dsn: dsn, checkpoints: cps, fresh: fresh}
}

// meta gives the outside world's commands IDs of their own.
func (e *env) meta() commands.Meta {
	e.seqMu.Lock()
	defer e.seqMu.Unlock()
	e.seq++
	return commands.Meta{CommandID: commands.DeriveID(testNamespace, fmt.Sprintf("%s/%d", e.t.Name(), e.seq)), Actor: "test"}
}

var testNamespace = commands.DeriveID([16]byte{}, "automation tests")

// testLogger shows the runner's warnings and errors in the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newRunner is a runner as a freshly started process has it: its own handler, so nothing of
// an earlier runner's cache survives a restart.
func (e *env) newRunner(opts ...Option) *Runner {
	opts = append([]Option{WithLogger(testLogger(e.t))}, opts...)
	r := New(commands.NewHandler(e.store), e.checkpoints, opts...)
	r.minBackoff, r.maxBackoff = 5*time.Millisecond, 200*time.Millisecond
	return r
}

// leases opens the leases and checkpoints as another process, named holder, would.
func (e *env) leases(holder string) *follow.Store {
	e.t.Helper()
	s, err := follow.Open(e.t.Context(), e.dsn, follow.WithHolder(holder), follow.WithPoll(20*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// newRunnerAs is newRunner in another process, named holder.
func (e *env) newRunnerAs(holder string, opts ...Option) *Runner {
	opts = append([]Option{WithLogger(testLogger(e.t))}, opts...)
	r := New(commands.NewHandler(e.store), e.leases(holder), opts...)
	r.minBackoff, r.maxBackoff = 5*time.Millisecond, 200*time.Millisecond
	return r
}

// supervisor keeps a runner going, as a service manager restarts a crashed process: whenever
// the runner's Run returns, a new runner starts from the checkpoint.
type supervisor struct {
	e        *env
	opts     []Option
	setup    func(r *Runner, kill func()) // adds test hooks to each new runner
	mu       sync.Mutex
	kill     context.CancelFunc
	current  *Runner
	sent     eventstore.Position // newest position appended by runners that have stopped
	stopped  bool
	starts   int
	failure  error
	finished chan struct{}
}

func (e *env) supervise(setup func(r *Runner, kill func()), opts ...Option) *supervisor {
	s := &supervisor{e: e, opts: opts, setup: setup, finished: make(chan struct{})}
	e.supervisors = append(e.supervisors, s)
	ready := make(chan struct{})
	go s.loop(ready)
	<-ready
	e.t.Cleanup(s.stop)
	return s
}

func (s *supervisor) loop(ready chan struct{}) {
	defer close(s.finished)
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		ctx, kill := context.WithCancel(s.e.t.Context())
		r := s.e.newRunner(s.opts...)
		if s.setup != nil {
			s.setup(r, kill)
		}
		s.kill, s.current = kill, r
		s.starts++
		s.mu.Unlock()
		if ready != nil {
			close(ready)
			ready = nil
		}
		err := r.Run(ctx)
		kill()
		s.mu.Lock()
		if p := r.sentUpTo(); p.Compare(s.sent) > 0 {
			s.sent = p
		}
		s.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			s.mu.Lock()
			s.failure = err
			s.stopped = true
			s.mu.Unlock()
			return
		}
	}
}

// crash stops the running runner at once; the loop starts the next.
func (s *supervisor) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kill != nil {
		s.kill()
	}
}

func (s *supervisor) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.kill != nil {
		s.kill()
	}
	s.mu.Unlock()
	<-s.finished
}

// newestSent is the position of the newest event any of its runners appended.
func (s *supervisor) newestSent() eventstore.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sent
	if s.current != nil {
		if q := s.current.sentUpTo(); q.Compare(p) > 0 {
			p = q
		}
	}
	return p
}

// handledByCurrent is how many events the running runner has handled since it started.
func (s *supervisor) handledByCurrent() uint64 {
	s.mu.Lock()
	r := s.current
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.Status().EventsHandled
}

func (s *supervisor) restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts - 1
}

func (s *supervisor) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// run starts one runner for the test and stops it at cleanup.
func (e *env) run(opts ...Option) *supervisor { return e.supervise(nil, opts...) }

// waitFor polls cond until it holds; after timeout the test fails with cond's last answer.
// This is waiting for the automation to get somewhere, not a timed assertion.
func (e *env) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range e.supervisors {
			if err := s.err(); err != nil {
				e.t.Fatalf("waiting for %s: the runner stopped: %v", what, err)
			}
		}
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waited %s for %s: %s", timeout, what, detail)
		}
		select {
		case <-e.t.Context().Done():
			e.t.Fatalf("test ended waiting for %s", what)
		case <-time.After(15 * time.Millisecond):
		}
	}
}

// waitQuiet waits until the automation has handled everything the outside world wrote and
// everything its own commands appended: then every command it will send for what happened so
// far has been sent. (The store's Head would not do: on PostgreSQL it may trail the newest
// commit while any transaction on the server is open.)
func (e *env) waitQuiet(s *supervisor, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(timeout, "the automation to catch up", func() (bool, string) {
		at, err := e.checkpoints.Position(e.t.Context(), Name)
		if err != nil {
			return false, err.Error()
		}
		e.seqMu.Lock()
		wrote := e.lastWrite
		e.seqMu.Unlock()
		sent := s.newestSent()
		return at.Compare(wrote) >= 0 && at.Compare(sent) >= 0, fmt.Sprintf("checkpoint %s, outside world wrote up to %s, automation up to %s", at, wrote, sent)
	})
}

// fold reads a stream from the store and folds it with a state of the test's own, shared with
// no handler's cache.
func fold[S any](t *testing.T, store eventstore.Store, stream string, evolve func(S, domain.Event) S) (S, []eventstore.Event) {
	t.Helper()
	events := readStream(t, store, stream)
	var s S
	for _, ev := range events {
		s = evolve(s, decode(t, ev))
	}
	return s, events
}

func readStream(t *testing.T, store eventstore.Store, stream string) []eventstore.Event {
	t.Helper()
	var all []eventstore.Event
	for {
		page, err := store.ReadStream(t.Context(), stream, uint64(len(all)), 1000)
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all
		}
	}
}

func readAll(t *testing.T, store eventstore.Store) []eventstore.Event {
	t.Helper()
	var (
		all  []eventstore.Event
		from eventstore.Position
	)
	for {
		page, err := store.ReadAll(t.Context(), from, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all
		}
		from = page[len(page)-1].Position
	}
}

func decode(t *testing.T, ev eventstore.Event) domain.Event {
	t.Helper()
	de, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		t.Fatalf("%s version %d: %v", ev.Stream, ev.Version, err)
	}
	return de
}

func (e *env) order(id string) domain.Order {
	o, _ := fold(e.t, e.store, domain.OrderStream(id), domain.EvolveOrder)
	return o
}

func (e *env) stock(sku string) domain.Stock {
	s, _ := fold(e.t, e.store, domain.StockStream(sku), domain.EvolveStock)
	return s
}

func (e *env) waitOrder(id string, timeout time.Duration, what string, cond func(domain.Order) bool) domain.Order {
	e.t.Helper()
	var o domain.Order
	e.waitFor(timeout, "order "+id+" "+what, func() (bool, string) {
		o = e.order(id)
		return cond(o), fmt.Sprintf("status %q, invoice %q, lines %+v, credit notes %+v", o.Status, o.InvoiceNumber, o.Lines, o.CreditNotes)
	})
	return o
}

// ok fails the test if an outside-world command was refused.
func (e *env) ok(res commands.Result, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	e.wrote(res)
}

func (e *env) wrote(res commands.Result) {
	e.seqMu.Lock()
	defer e.seqMu.Unlock()
	if res.Position.Compare(e.lastWrite) > 0 {
		e.lastWrite = res.Position
	}
}

// Outside-world commands.

func (e *env) receive(sku string, quantity int64) {
	e.t.Helper()
	e.ok(e.h.ReceiveStock(e.t.Context(), domain.ReceiveStock{SKU: sku, Quantity: quantity, Reference: "initial", At: e.h.Now()}, e.meta()))
}

func (e *env) policy(sku string, reorderPoint, reorderQuantity int64) {
	e.t.Helper()
	e.ok(e.h.SetReplenishmentPolicy(e.t.Context(), domain.SetReplenishmentPolicy{SKU: sku, ReorderPoint: reorderPoint, ReorderQuantity: reorderQuantity, Supplier: "Acme Supply", At: e.h.Now()}, e.meta()))
}

func (e *env) customer(id string) {
	e.t.Helper()
	e.ok(e.h.RegisterCustomer(e.t.Context(), domain.RegisterCustomer{CustomerID: id, Name: "Customer " + id, Email: id + "@example.com", At: e.h.Now()}, e.meta()))
}

func (e *env) place(id, customer string, taxRateBps int64, lines ...domain.OrderLine) error {
	res, err := e.h.PlaceOrder(e.t.Context(), domain.PlaceOrder{OrderID: id, CustomerID: customer, Channel: "web", Currency: "EUR", Lines: lines, TaxRateBps: taxRateBps, At: e.h.Now()}, e.meta())
	if err == nil {
		e.wrote(res)
	}
	return err
}

func line(sku string, quantity, unitPrice int64) domain.OrderLine {
	return domain.OrderLine{SKU: sku, Quantity: quantity, UnitPrice: unitPrice}
}

// withMetrics returns a registry and the option that registers a runner's metrics on it.
func withMetrics() (*prometheus.Registry, Option) {
	reg := prometheus.NewRegistry()
	return reg, WithMetrics(NewMetrics(reg))
}

// sentUpTo is the position of the newest event the runner's commands appended.
func (r *Runner) sentUpTo() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newestSent
}
