package automation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/postgres"
)

// ErrLeaseLost is returned when a runner finds that another holder took its lease: it must stop
// acting on the log until it holds the lease again.
var ErrLeaseLost = errors.New("automation: lease lost to another holder")

// Checkpoints keeps, for each named automation, the position in the log it has handled up to
// and the lease that lets one runner at a time act on the log. It lives in the read store's
// database (SQLite or PostgreSQL) in a table of its own, automation_checkpoints.
type Checkpoints struct {
	db       *sql.DB
	postgres bool
	// nowMillis is the database's clock in milliseconds since the epoch, as SQL: lease expiry is
	// judged by one clock, the database's, so the hosts' clocks need not agree.
	nowMillis string
}

// OpenCheckpoints opens the checkpoint table in the database named by dsn — "sqlite:PATH" or
// "postgres://…" (also "postgresql://…") — creating the table if it is missing.
func OpenCheckpoints(ctx context.Context, dsn string) (*Checkpoints, error) {
	c, err := openCheckpoints(dsn)
	if err != nil {
		return nil, err
	}
	if err := c.migrate(ctx); err != nil {
		c.db.Close()
		return nil, err
	}
	return c, nil
}

func openCheckpoints(dsn string) (*Checkpoints, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("automation: checkpoints: sqlite DSN names no file; want sqlite:PATH")
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("automation: checkpoints: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
			return nil, fmt.Errorf("automation: checkpoints: %w", err)
		}
		// The file is shared with the event store and the projections, so a write may wait for
		// their transactions (busy timeout) rather than fail at once.
		params := url.Values{"_busy_timeout": {"10000"}, "_journal_mode": {"WAL"}, "_synchronous": {"FULL"}}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
		db, err := sql.Open("sqlite", u.String())
		if err != nil {
			return nil, fmt.Errorf("automation: checkpoints: open %s: %w", abs, err)
		}
		db.SetMaxOpenConns(1)
		return &Checkpoints{db: db, nowMillis: `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("automation: checkpoints: %w", err)
		}
		db.SetMaxOpenConns(2)
		return &Checkpoints{db: db, postgres: true, nowMillis: `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`}, nil
	}
	return nil, fmt.Errorf("automation: checkpoints: DSN %q: want sqlite:PATH or postgres://…", redactDSN(dsn))
}

// redactDSN keeps a DSN's scheme only, so that an error never prints a password.
func redactDSN(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, ":"); ok {
		return scheme + ":…"
	}
	return "…"
}

// Close closes the database connection.
func (c *Checkpoints) Close() error { return c.db.Close() }

// The table: one row per automation. holder is empty while nobody holds the lease.
const createTable = `CREATE TABLE IF NOT EXISTS automation_checkpoints (
	name             TEXT   NOT NULL PRIMARY KEY,
	position         TEXT   NOT NULL,
	holder           TEXT   NOT NULL DEFAULT '',
	lease_expires_ms BIGINT NOT NULL DEFAULT 0,
	updated_ms       BIGINT NOT NULL DEFAULT 0
)`

func (c *Checkpoints) migrate(ctx context.Context) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("automation: checkpoints: %w", err)
	}
	defer tx.Rollback()
	if c.postgres {
		// Two servers starting at once could both run CREATE TABLE IF NOT EXISTS and one fail on
		// PostgreSQL's catalog; the schema lock every orderledger component takes serialises them.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.SchemaLockKey); err != nil {
			return fmt.Errorf("automation: checkpoints: lock schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, createTable); err != nil {
		return fmt.Errorf("automation: checkpoints: create table: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("automation: checkpoints: %w", err)
	}
	return nil
}

// Position returns the position automation name has handled up to (zero if it never ran).
func (c *Checkpoints) Position(ctx context.Context, name string) (eventstore.Position, error) {
	var text string
	err := c.db.QueryRowContext(ctx, `SELECT position FROM automation_checkpoints WHERE name = $1`, name).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("automation: read checkpoint %s: %w", name, err)
	}
	p, err := eventstore.ParsePosition(text)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("automation: checkpoint %s: %w", name, err)
	}
	return p, nil
}

// LeaseInfo describes who holds an automation's lease.
type LeaseInfo struct {
	Holder    string
	ExpiresIn time.Duration
}

// acquire takes the lease of name for holder for ttl if it is free, expired or already
// holder's. Otherwise it reports the current holder and acquired is false.
func (c *Checkpoints) acquire(ctx context.Context, name, holder string, ttl time.Duration) (acquired bool, current LeaseInfo, err error) {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO automation_checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		name, eventstore.Position{}.String()); err != nil {
		return false, LeaseInfo{}, fmt.Errorf("automation: create checkpoint %s: %w", name, err)
	}
	res, err := c.db.ExecContext(ctx, `UPDATE automation_checkpoints
		SET holder = $1, lease_expires_ms = `+c.nowMillis+` + $2
		WHERE name = $3 AND (holder = $1 OR holder = '' OR lease_expires_ms < `+c.nowMillis+`)`,
		holder, ttl.Milliseconds(), name)
	if err != nil {
		return false, LeaseInfo{}, fmt.Errorf("automation: take lease %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, LeaseInfo{}, fmt.Errorf("automation: take lease %s: %w", name, err)
	} else if n == 1 {
		return true, LeaseInfo{Holder: holder, ExpiresIn: ttl}, nil
	}
	var leftMillis int64
	err = c.db.QueryRowContext(ctx, `SELECT holder, lease_expires_ms - `+c.nowMillis+` FROM automation_checkpoints WHERE name = $1`, name).
		Scan(&current.Holder, &leftMillis)
	if err != nil {
		return false, LeaseInfo{}, fmt.Errorf("automation: read lease %s: %w", name, err)
	}
	current.ExpiresIn = time.Duration(leftMillis) * time.Millisecond
	return false, current, nil
}

// renew extends holder's lease by ttl from now, or returns ErrLeaseLost if holder no longer
// has it.
func (c *Checkpoints) renew(ctx context.Context, name, holder string, ttl time.Duration) error {
	res, err := c.db.ExecContext(ctx, `UPDATE automation_checkpoints SET lease_expires_ms = `+c.nowMillis+` + $1
		WHERE name = $2 AND holder = $3`, ttl.Milliseconds(), name, holder)
	return c.mustTouchOne(res, err, "renew lease", name)
}

// release gives up holder's lease so that a standby runner takes over at once instead of
// waiting for it to expire.
func (c *Checkpoints) release(ctx context.Context, name, holder string) error {
	res, err := c.db.ExecContext(ctx, `UPDATE automation_checkpoints SET holder = '', lease_expires_ms = 0
		WHERE name = $1 AND holder = $2`, name, holder)
	return c.mustTouchOne(res, err, "release lease", name)
}

// save records that name has handled everything up to p. Only the lease holder may: a runner
// that lost its lease while handling a batch must not move back a checkpoint its successor
// has advanced.
func (c *Checkpoints) save(ctx context.Context, name, holder string, p eventstore.Position) error {
	res, err := c.db.ExecContext(ctx, `UPDATE automation_checkpoints SET position = $1, updated_ms = `+c.nowMillis+`
		WHERE name = $2 AND holder = $3`, p.String(), name, holder)
	return c.mustTouchOne(res, err, "save checkpoint", name)
}

func (c *Checkpoints) mustTouchOne(res sql.Result, err error, op, name string) error {
	if err != nil {
		return fmt.Errorf("automation: %s %s: %w", op, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("automation: %s %s: %w", op, name, err)
	}
	if n != 1 {
		return fmt.Errorf("%w: %s %s", ErrLeaseLost, op, name)
	}
	return nil
}

// StartAt records that automation name starts at p: everything before p is taken as handled.
// It is for a log whose automation's work is in it already but whose checkpoint is not (a
// history imported or generated elsewhere), and only while nobody holds the lease.
func (c *Checkpoints) StartAt(ctx context.Context, name string, p eventstore.Position) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO automation_checkpoints (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE automation_checkpoints.holder = ''`, name, p.String())
	if err != nil {
		return fmt.Errorf("automation: start %s at %s: %w", name, p, err)
	}
	return nil
}
