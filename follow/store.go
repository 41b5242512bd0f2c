package follow

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
	"github.com/orderledger/orderledger/internal/stores"
)

// Errors of the package.
var (
	// ErrHeld: another holder has the lease (see HeldError for who).
	ErrHeld = errors.New("follow: the lease is held by another holder")
	// ErrLeaseLost: the term ended (another holder took the lease, or this one's lease
	// session died); a checkpoint write under it was refused and rolled back.
	ErrLeaseLost = errors.New("follow: lease lost")
)

// HeldError is ErrHeld with the holder's fence token, as stamped on the checkpoint row.
type HeldError struct {
	Name   string
	Holder string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("follow: lease %s is held by %s", e.Name, e.Holder)
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Store keeps the leases and the checkpoints of followers in one database: the read store's,
// SQLite or PostgreSQL. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	postgres bool
	locks    locker
	holder   string
	terms    atomic.Int64
	log      *slog.Logger
	// nowMillis is the database's clock, as SQL, in milliseconds since the epoch.
	nowMillis string
	closeOnce sync.Once
}

// Option configures a Store or a Follower.
type Option func(*options)

type options struct {
	holder      string
	log         *slog.Logger
	healthEvery time.Duration
	poll        time.Duration
}

// WithHolder names this process in the leases it takes (host:pid:random by default). Each
// term adds a number of its own to it, so no two terms share a fence token.
func WithHolder(name string) Option { return func(o *options) { o.holder = name } }

// WithLogger sets the logger (slog.Default by default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithHealthCheck sets how often a PostgreSQL lease session is checked while it holds leases
// (250 ms by default): how long a process cut off from the database may take to notice that
// its terms ended. Another process may take over meanwhile; fencing keeps its writes out.
func WithHealthCheck(d time.Duration) Option { return func(o *options) { o.healthEvery = d } }

// WithPoll sets how often a standby tries the lease (200 ms by default): the most a takeover
// waits after the holder died.
func WithPoll(d time.Duration) Option { return func(o *options) { o.poll = d } }

func buildOptions(opts []Option) options {
	o := options{log: slog.Default(), healthEvery: 250 * time.Millisecond, poll: 200 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	if o.holder == "" {
		o.holder = DefaultHolder()
	}
	return o
}

// DefaultHolder names this process: host, pid and a random part, so that two processes never
// share a name.
func DefaultHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}

// Open opens the followers' leases and checkpoints in the database dsn names — "sqlite:PATH"
// (the lock files go beside PATH) or "postgres://…" — creating the table if it is missing.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := buildOptions(opts)
	kind, err := stores.KindOf(dsn)
	if err != nil {
		return nil, fmt.Errorf("follow: %w", err)
	}
	s := &Store{holder: o.holder, log: o.log}
	switch kind {
	case stores.SQLite:
		abs, err := filepath.Abs(stores.SQLitePath(dsn))
		if err != nil {
			return nil, fmt.Errorf("follow: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
			return nil, fmt.Errorf("follow: %w", err)
		}
		// The file is shared with the event store and the projections, so a write may wait
		// for their transactions (busy timeout) rather than fail at once. Transactions begin
		// IMMEDIATE: one that read first and then wrote would otherwise fail with no wait when
		// another process wrote in between (its snapshot gone stale), as two servers starting
		// on one file do.
		params := url.Values{"_busy_timeout": {"10000"}, "_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_txlock": {"immediate"}}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
		if s.db, err = sql.Open("sqlite", u.String()); err != nil {
			return nil, fmt.Errorf("follow: open %s: %w", abs, err)
		}
		s.db.SetMaxOpenConns(1)
		s.nowMillis = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`
		s.locks = newFileLocker(abs)
	case stores.Postgres:
		if s.db, err = sql.Open("pgx", dsn); err != nil {
			return nil, fmt.Errorf("follow: %w", err)
		}
		s.db.SetMaxOpenConns(4)
		s.postgres = true
		s.nowMillis = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`
		if s.locks, err = newPGLocker(dsn, o.holder, o.healthEvery, o.log); err != nil {
			s.db.Close()
			return nil, err
		}
	default:
		return nil, fmt.Errorf("follow: leases live in SQLite or PostgreSQL, not in %s", kind)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close frees every lease this Store holds and closes its connections.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.locks.close()
		err = s.db.Close()
	})
	return err
}

// Holder is this process's name in the leases.
func (s *Store) Holder() string { return s.holder }

// DB is the database the checkpoints live in, for a follower that writes its own rows in the
// transaction of a fenced checkpoint (SaveIn).
func (s *Store) DB() *sql.DB { return s.db }

// The table: one row per follower. holder is the fence token of the last term that took the
// lease; a checkpoint moves only under it.
const createTable = `CREATE TABLE IF NOT EXISTS follow_checkpoints (
	name         TEXT   NOT NULL PRIMARY KEY,
	position     TEXT   NOT NULL,
	holder       TEXT   NOT NULL DEFAULT '',
	holder_since BIGINT NOT NULL DEFAULT 0,
	updated_ms   BIGINT NOT NULL DEFAULT 0
)`

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op once committed
	if s.postgres {
		// Two servers starting at once could both run CREATE TABLE IF NOT EXISTS and one fail
		// on PostgreSQL's catalog; the schema lock every orderledger component takes
		// serialises them.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SchemaLockKey); err != nil {
			return fmt.Errorf("follow: lock schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, createTable); err != nil {
		return fmt.Errorf("follow: create table: %w", err)
	}
	// The automation kept its checkpoint in a table of its own before this package; carry
	// it over once, so an upgraded server does not handle the whole log again.
	var legacy int
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'automation_checkpoints'`
	if s.postgres {
		q = `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'automation_checkpoints'`
	}
	if err := tx.QueryRowContext(ctx, q).Scan(&legacy); err != nil {
		return fmt.Errorf("follow: look for automation_checkpoints: %w", err)
	}
	if legacy > 0 {
		// WHERE true: SQLite would read ON CONFLICT as the SELECT's join constraint.
		if _, err := tx.ExecContext(ctx, `INSERT INTO follow_checkpoints (name, position)
			SELECT name, position FROM automation_checkpoints WHERE true ON CONFLICT (name) DO NOTHING`); err != nil {
			return fmt.Errorf("follow: carry over automation_checkpoints: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	return nil
}

// Acquire takes the lease name for this process if no process holds it, and stamps the new
// term's fence token on the follower's checkpoint row. It fails with a *HeldError (ErrHeld)
// when another holder — another process, or another term of this Store — has it. Release the
// term when done.
func (s *Store) Acquire(ctx context.Context, name string) (*Term, error) {
	if name == "" {
		return nil, errors.New("follow: a lease needs a name")
	}
	hold, ok, err := s.locks.tryLock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("follow: take lease %s: %w", name, err)
	}
	if !ok {
		holder, err := s.stampedHolder(ctx, name)
		if err != nil {
			return nil, err
		}
		return nil, &HeldError{Name: name, Holder: holder}
	}
	t := &Term{Name: name, token: s.holder + "#" + strconv.FormatInt(s.terms.Add(1), 10), hold: hold}
	// The lock is ours, so whoever the row names is gone or about to be fenced off: the stamp
	// is unconditional, and from its commit on only this term moves the checkpoint.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO follow_checkpoints (name, position, holder, holder_since, updated_ms)
		VALUES ($1, $2, $3, `+s.nowMillis+`, `+s.nowMillis+`)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, holder_since = excluded.holder_since`,
		name, eventstore.Position{}.String(), t.token); err != nil {
		t.Release()
		return nil, fmt.Errorf("follow: stamp lease %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		// The caller has given up and would not release it.
		t.Release()
		return nil, err
	}
	return t, nil
}

// stampedHolder is the fence token last stamped on name's row ("" when none).
func (s *Store) stampedHolder(ctx context.Context, name string) (string, error) {
	var holder string
	err := s.db.QueryRowContext(ctx, `SELECT holder FROM follow_checkpoints WHERE name = $1`, name).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("follow: read lease %s: %w", name, err)
	}
	return holder, nil
}

// Held reports whether any process holds the lease name now.
func (s *Store) Held(ctx context.Context, name string) (bool, error) {
	held, err := s.locks.held(ctx, name)
	if err != nil {
		return false, fmt.Errorf("follow: look at lease %s: %w", name, err)
	}
	return held, nil
}

// Position returns the checkpoint of follower name: the last event it finished with (zero if
// it never ran).
func (s *Store) Position(ctx context.Context, name string) (eventstore.Position, error) {
	var text string
	err := s.db.QueryRowContext(ctx, `SELECT position FROM follow_checkpoints WHERE name = $1`, name).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("follow: read checkpoint %s: %w", name, err)
	}
	p, err := eventstore.ParsePosition(text)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("follow: checkpoint %s: %w", name, err)
	}
	return p, nil
}

// StartAt records that follower name starts at p: everything before p is taken as handled.
// It is for a log whose follower's work is in it already but whose checkpoint is not (a
// history imported or generated elsewhere), and only while no process holds the lease.
func (s *Store) StartAt(ctx context.Context, name string, p eventstore.Position) error {
	if held, err := s.Held(ctx, name); err != nil {
		return err
	} else if held {
		return &HeldError{Name: name}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO follow_checkpoints (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, p.String()); err != nil {
		return fmt.Errorf("follow: start %s at %s: %w", name, p, err)
	}
	return nil
}

// Execer is a *sql.DB or *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Save records that t's follower finished with every event up to p. It fails with
// ErrLeaseLost, writing nothing, when another term took the lease since t.
func (s *Store) Save(ctx context.Context, t *Term, p eventstore.Position) error {
	return s.SaveIn(ctx, s.db, t, p)
}

// SaveIn is Save within the caller's transaction on DB(): the transaction's other writes
// commit only with a checkpoint fenced by t. On ErrLeaseLost, roll the transaction back.
func (s *Store) SaveIn(ctx context.Context, ex Execer, t *Term, p eventstore.Position) error {
	res, err := ex.ExecContext(ctx, `UPDATE follow_checkpoints SET position = $1, updated_ms = `+s.nowMillis+`
		WHERE name = $2 AND holder = $3`, p.String(), t.Name, t.token)
	if err != nil {
		return fmt.Errorf("follow: save checkpoint %s: %w", t.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("follow: save checkpoint %s: %w", t.Name, err)
	}
	if n != 1 {
		return fmt.Errorf("%w: %s was taken over", ErrLeaseLost, t.Name)
	}
	return nil
}

// Term is one holder's tenure of a lease, from Acquire to Release or to its loss.
type Term struct {
	Name  string
	token string
	hold  hold
	once  sync.Once
}

// Token is the term's fence token: stamp it on a checkpoint row when the term begins and make
// every write of that row conditional on it.
func (t *Term) Token() string { return t.token }

// Lost is closed when the term ended without Release: the lease session died, so another
// process may hold the lease now. Stop acting at once; writes fenced by the token fail anyway.
func (t *Term) Lost() <-chan struct{} { return t.hold.lost() }

// Release frees the lease so another process takes over at once. It is safe to call more
// than once and after the term was lost.
func (t *Term) Release() { t.once.Do(t.hold.release) }

// WithTerm returns a context that ends when ctx does or when t is lost (its cause is then
// ErrLeaseLost), and a function that frees its resources.
func WithTerm(ctx context.Context, t *Term) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-t.Lost():
			cancel(fmt.Errorf("%w: %s: the lease session ended", ErrLeaseLost, t.Name))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}
