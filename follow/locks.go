package follow

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// locker is where the leases live: a lock the holder's death frees.
type locker interface {
	// tryLock takes name's lock if no one (this process included) holds it.
	tryLock(ctx context.Context, name string) (hold, bool, error)
	// held reports whether anyone holds name's lock.
	held(ctx context.Context, name string) (bool, error)
	close()
}

// hold is one lock held.
type hold interface {
	lost() <-chan struct{}
	release()
}

// leaseLockSpace is the first key of the two-int4 advisory locks of leases, apart from the
// event store's stream locks ("OLEV") and the schema lock (the one-bigint form).
const leaseLockSpace = 0x4f4c4657 // "OLFW"

// leaseLockKey is the second key: a hash of the name, kept non-negative so that pg_locks shows
// it as the same number.
func leaseLockKey(name string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int32(h.Sum32() & 0x7fffffff)
}

// pgLocker keeps leases as session-level advisory locks on one connection of their own, the
// lease session. The database frees them when the session ends, whatever ends it.
type pgLocker struct {
	config      *pgx.ConnConfig
	healthEvery time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	session *pgSession // nil until needed, and after it died
	// schema is the session's current schema: advisory locks are per database, and two
	// deployments may share a database in schemas of their own (as bench's stages do).
	schema string
	closed bool
}

// pgSession is one lease session and the leases held on it.
type pgSession struct {
	conn *pgx.Conn
	held map[string]bool
	dead chan struct{} // closed when the session died or was closed: every term on it is lost
	done chan struct{} // closed when the health check has stopped
}

func newPGLocker(dsn, holder string, healthEvery time.Duration, log *slog.Logger) (*pgLocker, error) {
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("follow: %w", err)
	}
	// So that an operator (or a test) finds the session that holds a process's leases.
	config.RuntimeParams["application_name"] = applicationName(holder)
	return &pgLocker{config: config, healthEvery: healthEvery, log: log}, nil
}

// applicationName is the lease session's application_name in pg_stat_activity.
func applicationName(holder string) string {
	name := "orderledger lease " + holder
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// ApplicationName is the application_name of the lease session of a Store whose holder is
// holder, as pg_stat_activity shows it.
func ApplicationName(holder string) string { return applicationName(holder) }

// connect opens the lease session. Called with mu held.
func (l *pgLocker) connect(ctx context.Context) (*pgSession, error) {
	if l.session != nil {
		return l.session, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&l.schema); err != nil {
		_ = conn.Close(ctx)
		return nil, err
	}
	s := &pgSession{conn: conn, held: map[string]bool{}, dead: make(chan struct{}), done: make(chan struct{})}
	l.session = s
	go l.watch(s)
	return s, nil
}

// watch checks the session until it dies or is closed. A process whose session died stops
// acting on its leases (their terms are lost) before long; the database freed the locks the
// moment it ended the session.
func (l *pgLocker) watch(s *pgSession) {
	defer close(s.done)
	ticker := time.NewTicker(l.healthEvery)
	defer ticker.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-ticker.C:
		}
		l.mu.Lock()
		if l.session != s {
			l.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(l.healthEvery, time.Second))
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			if len(s.held) > 0 {
				l.log.Warn("follow: the lease session died; its leases are lost", "leases", len(s.held), "err", err)
			}
			l.drop(s)
		}
		l.mu.Unlock()
	}
}

// drop ends a session: its terms are lost. Called with mu held.
func (l *pgLocker) drop(s *pgSession) {
	if l.session == s {
		l.session = nil
	}
	select {
	case <-s.dead:
		return
	default:
	}
	close(s.dead)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

// key is name's lock key in the session's schema. Called with mu held, once connected.
func (l *pgLocker) key(name string) int32 { return leaseLockKey(l.schema + "." + name) }

func (l *pgLocker) tryLock(ctx context.Context, name string) (hold, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false, errors.New("follow: store closed")
	}
	s, err := l.connect(ctx)
	if err != nil {
		return nil, false, err
	}
	if s.held[name] {
		// The lock is reentrant within a session; another term of this process holds it.
		return nil, false, nil
	}
	// Not the caller's context: a query cancelled half way would leave it unknown whether the
	// lock was taken, and a lock taken unbeknown to this process would never be freed.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var ok bool
	if err := s.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(leaseLockSpace), l.key(name)).Scan(&ok); err != nil {
		// Whether the lock was taken is unknown: end the session, which frees it if it was.
		l.drop(s)
		return nil, false, err
	}
	if !ok {
		return nil, false, nil
	}
	s.held[name] = true
	return &pgHold{l: l, s: s, name: name}, true, nil
}

func (l *pgLocker) held(ctx context.Context, name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, errors.New("follow: store closed")
	}
	s, err := l.connect(ctx)
	if err != nil {
		return false, err
	}
	if s.held[name] {
		return true, nil
	}
	var n int
	err = s.conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2`,
		int64(leaseLockSpace), int64(l.key(name))).Scan(&n)
	if err != nil {
		if s.conn.IsClosed() {
			l.drop(s)
		}
		return false, err
	}
	return n > 0, nil
}

func (l *pgLocker) close() {
	l.mu.Lock()
	l.closed = true
	s := l.session
	if s != nil {
		l.drop(s)
	}
	l.mu.Unlock()
	if s != nil {
		<-s.done
	}
}

type pgHold struct {
	l    *pgLocker
	s    *pgSession
	name string
}

func (h *pgHold) lost() <-chan struct{} { return h.s.dead }

func (h *pgHold) release() {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if !h.s.held[h.name] {
		return
	}
	delete(h.s.held, h.name)
	select {
	case <-h.s.dead:
		return // the database freed it with the session
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, int32(leaseLockSpace), h.l.key(h.name)); err != nil {
		// Unknown whether it was freed: end the session, which frees it for sure.
		h.l.drop(h.s)
	}
}

// fileLocker keeps leases as flock(2) locks on files beside the SQLite database file: the
// kernel frees them when the process exits, however it exits.
type fileLocker struct {
	base string // the database file's path; lock files are base + ".lease-" + name

	mu     sync.Mutex
	files  map[string]*os.File
	closed bool
}

func newFileLocker(dbPath string) *fileLocker {
	return &fileLocker{base: dbPath, files: map[string]*os.File{}}
}

// path is name's lock file. Names are the followers' own (projector names, "order-to-cash"),
// but anything outside a safe set is replaced so a name cannot point elsewhere.
func (l *fileLocker) path(name string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
	return fmt.Sprintf("%s.lease-%s-%08x", l.base, safe, uint32(leaseLockKey(name)))
}

func (l *fileLocker) tryLock(_ context.Context, name string) (hold, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false, errors.New("follow: store closed")
	}
	if l.files[name] != nil {
		return nil, false, nil
	}
	f, err := os.OpenFile(l.path(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	l.files[name] = f
	return &fileHold{l: l, name: name, f: f}, true, nil
}

func (l *fileLocker) held(_ context.Context, name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.files[name] != nil {
		return true, nil
	}
	f, err := os.OpenFile(l.path(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	// Closing the file frees the shared lock just taken.
	return false, nil
}

func (l *fileLocker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for name, f := range l.files {
		f.Close()
		delete(l.files, name)
	}
}

type fileHold struct {
	l    *fileLocker
	name string
	f    *os.File
}

// neverLost: a file lock lasts as long as the process.
var neverLost = make(chan struct{})

func (h *fileHold) lost() <-chan struct{} { return neverLost }

func (h *fileHold) release() {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.l.files[h.name] == h.f {
		delete(h.l.files, h.name)
		h.f.Close() // frees the lock
	}
}
