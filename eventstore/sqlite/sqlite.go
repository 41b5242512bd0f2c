package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/orderledger/orderledger/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// busyTimeoutMillis is how long a connection waits for a lock held by another process (another
// Store on the same file) before it gives up with SQLITE_BUSY.
const busyTimeoutMillis = "10000"

// readConnections bounds the read pool; reads run in parallel under WAL.
const readConnections = 8

// defaultMaxGroup bounds how many queued appends one transaction takes, so that one commit
// stays short even under a flood of appends.
const defaultMaxGroup = 256

// errClosed is what calls on a closed Store return.
var errClosed = fmt.Errorf("%w: eventstore/sqlite: store is closed", eventstore.ErrUnavailable)

// Store is an event store in one SQLite file. It is safe for concurrent use; several Stores
// (in this process or others) may share a file.
type Store struct {
	write *sql.DB // the one write connection: Open migrates through it, then the writer goroutine owns it
	read  *sql.DB
	stmts statements

	maxGroup   int
	appends    chan *appendRequest
	closing    chan struct{} // closed by Close: the writer stops taking appends
	writerDone chan struct{}

	// life is the context of the Store's own work (the writer's transactions, the data_version
	// watcher); Close cancels it once the writer has stopped.
	life     context.Context
	stopLife context.CancelFunc
	watchers sync.WaitGroup

	signalMu      sync.Mutex
	committed     chan struct{} // closed and replaced whenever the log may have grown
	subscribers   int
	stopWatching  context.CancelFunc
	watchingEnded bool // set by Close: no watcher starts after it waits for them

	closeOnce sync.Once
	closeErr  error
}

// Open opens the event store in the file at path, creating the file and its directory if they
// are missing and creating or migrating the schema.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, defaultMaxGroup)
}

// open is Open with the group size as a parameter, so benchmarks can compare group commit
// (maxGroup > 1) with one transaction per append (maxGroup 1).
func open(ctx context.Context, path string, maxGroup int) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: %w", err)
	}

	// IMMEDIATE transactions take the write lock at BEGIN, so a write transaction never fails
	// halfway because another process wrote first; they wait up to the busy timeout instead.
	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busyTimeoutMillis},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("eventstore/sqlite: open %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("eventstore/sqlite: %s: %w", abs, err)
	}

	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busyTimeoutMillis},
		"_query_only":   {"1"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("eventstore/sqlite: open %s: %w", abs, err)
	}
	read.SetMaxOpenConns(readConnections)
	read.SetMaxIdleConns(readConnections)

	s := &Store{
		write:      write,
		read:       read,
		maxGroup:   maxGroup,
		appends:    make(chan *appendRequest, 4*defaultMaxGroup),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		committed:  make(chan struct{}),
	}
	if s.stmts, err = prepare(ctx, write, read); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("eventstore/sqlite: %s: %w", abs, err)
	}
	// The Store outlives the call that opened it, so its own work must not end with ctx.
	s.life, s.stopLife = context.WithCancel(context.WithoutCancel(ctx))
	go s.writeLoop()
	return s, nil
}

// dsn is a SQLite URI for the file with the driver's parameters; the URI form escapes any
// character a path may hold.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// Close stops the writer after the group it is committing, ends subscriptions and closes the
// connections. Appends still queued fail with eventstore.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		s.stopLife()
		s.signalMu.Lock()
		s.watchingEnded = true
		s.signalMu.Unlock()
		s.watchers.Wait()
		s.closeErr = errors.Join(s.stmts.close(), s.read.Close(), s.write.Close())
	})
	return s.closeErr
}

// signal returns a channel that is closed when the log may have grown after this call.
func (s *Store) signal() <-chan struct{} {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	return s.committed
}

// notify wakes every subscriber waiting on signal.
func (s *Store) notify() {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	close(s.committed)
	s.committed = make(chan struct{})
}
