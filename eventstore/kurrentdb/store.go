package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderledger/orderledger/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// openTimeout bounds how long Open waits for the server to answer.
const openTimeout = 5 * time.Second

// Store is an eventstore.Store on one KurrentDB node or cluster. It is safe for concurrent use.
type Store struct {
	cfg    esdb.Configuration // every client is built from a copy of it
	addr   string             // for errors: the node, or the gossip seeds
	prefix string
	log    *slog.Logger
	// patience bounds the wait for a connection (see do)
	patience time.Duration

	mu     sync.Mutex
	cur    *generation
	closed bool
}

// generation is one client and the calls running on it. Client v4 closes itself for good
// when node discovery fails, so the store replaces it; the old one is closed once no call
// uses it, because closing a client while a call is about to send to it panics.
type generation struct {
	client  *esdb.Client
	refs    int
	retired bool
}

// Option configures a Store.
type Option func(*Store)

// WithStreamPrefix keeps the store to the streams whose names start with prefix: it writes
// stream s as prefix+s, reads it back as s, and ReadAll, Head and Subscribe skip every other
// stream. Several stores, such as the contract suite's, can so share one server's $all.
func WithStreamPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithLogger sets where the store and the client log; the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open connects to the server connString names and checks within a few seconds that it
// answers and lets the user read $all, so that a wrong address or a missing right fails here
// and not at the first append or read.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	cfg, err := parseConnString(connString)
	if err != nil {
		return nil, err
	}
	s := &Store{addr: describeAddress(cfg), log: slog.Default()}
	for _, opt := range opts {
		opt(s)
	}
	if strings.HasPrefix(s.prefix, "$") {
		return nil, fmt.Errorf("kurrentdb: stream prefix %q starts with $, reserved for system streams", s.prefix)
	}
	cfg.Logger = clientLogger(s.log)
	s.cfg = *cfg
	s.patience = connectPatience(cfg)
	if s.cur, err = s.newGeneration(); err != nil {
		return nil, err
	}

	pingCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := s.ping(pingCtx); err != nil {
		s.Close()
		if pingCtx.Err() != nil { // Open's bound, or the caller's deadline or cancellation
			return nil, fmt.Errorf("%w: kurrentdb at %s did not answer (Open waits at most %v): %w", eventstore.ErrUnavailable, s.addr, openTimeout, pingCtx.Err())
		}
		if isAccessDenied(err) {
			// $all is a system stream: only $admins may read it unless its ACL says otherwise
			// (docs/server/security/user-authorization.md in kurrent-io/KurrentDB).
			var clientErr *esdb.Error
			if errors.As(err, &clientErr) {
				err = clientErr // the server's answer, without mapError's general hint
			}
			return nil, fmt.Errorf(`kurrentdb at %s: the user may not read $all, which orderledger reads to follow the log: `+
				`connect as a member of $admins, or give the user read access to $all by writing {"$acl":{"$r":["$admins","<user>"]}} as the metadata of $all (stream $$$all): %w`, s.addr, err)
		}
		return nil, err
	}
	return s, nil
}

// clientLogger routes the client's log to l at debug level: the client logs every failed
// call as an error, while the store returns those errors to a caller who decides.
func clientLogger(l *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		l.Debug("kurrentdb client: "+fmt.Sprintf(format, args...), "client_level", level)
	}
}

// ping reads the newest record of $all, which any reachable node answers.
func (s *Store) ping(ctx context.Context) error {
	return s.call(ctx, func(c *esdb.Client, connected func()) error {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		if err != nil {
			return err
		}
		defer rs.Close()
		connected()
		if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	})
}

// Close closes the client once the calls still running on it return. Calls made after Close
// fail with an error wrapping eventstore.ErrUnavailable; a running Subscribe returns one.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	g := s.cur
	idle := s.retireLocked(g)
	s.mu.Unlock()
	if idle {
		return g.client.Close()
	}
	return nil
}

var errClosed = fmt.Errorf("%w: kurrentdb store is closed", eventstore.ErrUnavailable)

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Store) newGeneration() (*generation, error) {
	cfg := s.cfg
	client, err := esdb.NewClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w", err)
	}
	return &generation{client: client}, nil
}

// retireLocked marks g as no longer current and reports whether it can be closed now.
func (s *Store) retireLocked(g *generation) bool {
	g.retired = true
	return g.refs == 0
}

// replace swaps in a new client for old, which closed itself (or seems to), unless that already happened
// or the store is closed.
func (s *Store) replace(old *generation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.cur != old {
		return
	}
	next, err := s.newGeneration()
	if err != nil { // the configuration was valid when Open built the first client
		s.log.Error("kurrentdb: cannot rebuild the client", "addr", s.addr, "err", err)
		return
	}
	s.log.Warn("kurrentdb: the client closed itself; continuing with a new one", "addr", s.addr)
	s.cur = next
	if s.retireLocked(old) {
		old.client.Close()
	}
}

func (s *Store) acquire() (*generation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	s.cur.refs++
	return s.cur, nil
}

func (s *Store) release(g *generation) {
	s.mu.Lock()
	g.refs--
	idle := g.retired && g.refs == 0
	s.mu.Unlock()
	if idle {
		g.client.Close()
	}
}

// op is one use of a client. It must use ctx for every call, and call connected once the
// client has handed it a connection (when its first call returns).
type op func(c *esdb.Client, connected func()) error

// errStuck means a call got no connection within the store's patience: a client that closed
// itself while the call waited leaves it waiting for ever.
var errStuck = errors.New("kurrentdb: no connection within the time discovery can take")

// do runs op on the current client and returns its error as the client reported it. Client v4
// waits for a connection without looking at any context, and for ever when it closes itself
// meanwhile, so op runs in a goroutine and do returns when ctx is done, or with errStuck when
// op has not connected within the patience. The caller must not look at what op writes
// unless do returns nil.
func (s *Store) do(ctx context.Context, fn op) (*generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g, err := s.acquire()
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	conn := make(chan struct{})
	var once sync.Once
	go func() {
		defer s.release(g)
		done <- fn(g.client, func() { once.Do(func() { close(conn) }) })
	}()
	patience := time.NewTimer(s.patience)
	defer patience.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() != nil {
				return g, ctx.Err()
			}
			return g, err
		case <-conn:
			conn = nil // connected: from here on only ctx bounds the call
			patience.Stop()
		case <-patience.C:
			return g, fmt.Errorf("%w after %v: %w", errStuck, s.patience, eventstore.ErrUnavailable)
		case <-ctx.Done():
			select {
			case err := <-done:
				if err == nil {
					return g, nil
				}
			default:
			}
			return g, ctx.Err()
		}
	}
}

// connectPatience is how long do waits for a call to get a connection: the longest node
// discovery can take with cfg, plus a call's deadline, plus slack. Discovery tries every
// candidate MaxDiscoverAttempts times; each try is one call (a gossip read and a features
// read for a cluster), each bounded by GossipTimeout.
func connectPatience(cfg *esdb.Configuration) time.Duration {
	perTry := time.Duration(cfg.GossipTimeout) * time.Second
	if cfg.DnsDiscover || len(cfg.GossipSeeds) > 0 {
		perTry *= 2
	}
	perAttempt := time.Duration(max(1, len(cfg.GossipSeeds)))*perTry + time.Duration(cfg.DiscoveryInterval)*time.Millisecond
	deadline := 10 * time.Second // the client's default for a call that is not a stream
	if cfg.DefaultDeadline != nil {
		deadline = *cfg.DefaultDeadline
	}
	return time.Duration(max(1, cfg.MaxDiscoverAttempts))*perAttempt + deadline + 2*time.Second
}

// call is do for single calls: a client that closed itself, or seems to have, is replaced for
// the next call, and the error is mapped to the port's.
func (s *Store) call(ctx context.Context, fn op) error {
	g, err := s.do(ctx, fn)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil || errors.Is(err, errClosed):
		return err
	case errors.Is(err, errStuck):
		s.replace(g)
		return fmt.Errorf("kurrentdb at %s: %w", s.addr, err)
	case isClientClosed(err):
		s.replace(g)
	}
	return mapError(err, s.addr)
}
