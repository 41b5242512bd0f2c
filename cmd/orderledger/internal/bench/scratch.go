package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderledger/orderledger/internal/stores"
)

// ScratchPrefix starts the name of every scratch database, directory and stream prefix a run
// creates, so that one left behind by a killed run (SIGKILL gives no chance to clean up) is
// easy to recognise.
const ScratchPrefix = "orderledger_bench_"

// removeTimeout bounds removing the scratch space, so that a hung server cannot hang the exit.
const removeTimeout = time.Minute

// scratch is room for the stages' stores on one server (or beside one SQLite file), created
// for one run and removed after it.
type scratch struct {
	kind stores.Kind
	// dsn returns the DSN of a stage's store in the space.
	dsn func(stage string) string
	// prefix returns a stage's stream prefix (KurrentDB only).
	prefix func(stage string) string
	remove func(ctx context.Context) error
}

// space is a run's scratch: one for the event stores and one for the read stores, the same
// one when both live on the same server.
type space struct {
	events, read *scratch
	readErr      error // why there is no read scratch
}

// newSpace creates the scratch space for the stores eventsDSN and readDSN name. logf tells the
// user what was created, so that a run killed beyond cleaning up says what to remove.
func newSpace(ctx context.Context, eventsDSN, readDSN string, logf func(string, ...any)) (*space, error) {
	events, err := newScratch(ctx, eventsDSN, logf)
	if err != nil {
		return nil, err
	}
	sp := &space{events: events}
	switch {
	case readDSN == "" || readDSN == eventsDSN:
		if events.kind == stores.KurrentDB {
			sp.readErr = errors.New("bench: --events is KurrentDB, so the server figures and projection_rebuild need --read (a SQLite or PostgreSQL store to hold their read models' scratch space)")
		} else {
			sp.read = events
		}
	default:
		if _, err := stores.ReadDSN(eventsDSN, readDSN); err != nil {
			_ = sp.remove(context.WithoutCancel(ctx))
			return nil, err
		}
		if sp.read, err = newScratch(ctx, readDSN, logf); err != nil {
			_ = sp.remove(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return sp, nil
}

// needRead fails when the stages that keep read models have nowhere to keep them.
func (sp *space) needRead() error { return sp.readErr }

func (sp *space) stores(stage string) Stores {
	st := Stores{EventsDSN: sp.events.dsn(stage)}
	if sp.events.prefix != nil {
		st.StreamPrefix = sp.events.prefix(stage)
	}
	if sp.read != nil {
		st.ReadDSN = sp.read.dsn(stage)
	}
	return st
}

func (sp *space) remove(ctx context.Context) error {
	err := sp.events.remove(ctx)
	if sp.read != nil && sp.read != sp.events {
		err = errors.Join(err, sp.read.remove(ctx))
	}
	return err
}

func newScratch(ctx context.Context, dsn string, logf func(string, ...any)) (*scratch, error) {
	kind, err := stores.KindOf(dsn)
	if err != nil {
		return nil, err
	}
	suffix, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	switch kind {
	case stores.Postgres:
		return newPostgresScratch(ctx, dsn, ScratchPrefix+suffix, logf)
	case stores.SQLite:
		return newSQLiteScratch(dsn, ScratchPrefix+suffix, logf)
	}
	return newKurrentDBScratch(dsn, ScratchPrefix+suffix, logf), nil
}

func randomSuffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("bench: random name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newPostgresScratch creates the database name on the server dsn names, with a schema per
// stage, and removes it with DROP DATABASE … WITH (FORCE), which also ends any connection
// still open to it. The user's own database is only connected to, to issue those two
// statements.
func newPostgresScratch(ctx context.Context, dsn, name string, logf func(string, ...any)) (*scratch, error) {
	server, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: --events/--read %s: %w", stores.Redact(dsn), err)
	}
	admin, err := connectPG(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: cannot open %s: %w", stores.Redact(dsn), err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	// template0 accepts no connections, so runs starting at once cannot trip over each other
	// as they can when copying template1.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return nil, fmt.Errorf("bench: cannot create the scratch database %s on %s (the role needs CREATEDB): %w", name, server.Host, err)
	}
	s := &scratch{
		kind: stores.Postgres,
		dsn: func(stage string) string {
			u := *server
			u.Path = "/" + name
			q := u.Query()
			q.Set("search_path", "bench_"+stage)
			u.RawQuery = q.Encode()
			return u.String()
		},
		remove: func(ctx context.Context) error { return dropDatabase(ctx, dsn, name, server.Host, logf) },
	}
	logf("created the scratch database %s on %s (dropped at the end)", name, server.Host)
	if err := createSchemas(ctx, s.dsn(stageAppend)); err != nil {
		rmErr := s.remove(context.WithoutCancel(ctx))
		return nil, errors.Join(fmt.Errorf("bench: prepare the scratch database %s: %w", name, err), rmErr)
	}
	return s, nil
}

// createSchemas gives each stage a schema of its own in the scratch database: each stage has
// its own event log, and a database holds one.
func createSchemas(ctx context.Context, dsn string) error {
	conn, err := connectPG(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stage := range []string{stageAppend, stageServe, stageLog, stageFresh, stageHistory1, stageHistory2, stageFailover} {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA bench_"+stage); err != nil {
			return err
		}
	}
	return nil
}

func dropDatabase(ctx context.Context, dsn, name, host string, logf func(string, ...any)) error {
	fail := func(err error) error {
		return fmt.Errorf("bench: could not drop the scratch database %s on %s; drop it by hand (DROP DATABASE %s WITH (FORCE)): %w", name, host, name, err)
	}
	admin, err := connectPG(ctx, dsn)
	if err != nil {
		return fail(err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42601" {
		// Before PostgreSQL 13 there is no FORCE; every connection of the run is closed by now.
		_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	}
	if err != nil {
		return fail(err)
	}
	logf("dropped the scratch database %s", name)
	return nil
}

// newSQLiteScratch makes a directory beside the file dsn names, on the same file system so
// that its fsyncs cost what the user's do, and removes it with everything in it. When the
// file's directory does not exist yet, the system's temporary directory takes its place: the
// run creates nothing where the user's file would go.
func newSQLiteScratch(dsn, name string, logf func(string, ...any)) (*scratch, error) {
	abs, err := filepath.Abs(stores.SQLitePath(dsn))
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", dsn, err)
	}
	parent := filepath.Dir(abs)
	if info, err := os.Stat(parent); err != nil || !info.IsDir() {
		parent = os.TempDir()
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench: cannot create a scratch directory in %s: %w", parent, err)
	}
	logf("created the scratch directory %s (removed at the end)", dir)
	return &scratch{
		kind: stores.SQLite,
		dsn:  func(stage string) string { return "sqlite:" + filepath.Join(dir, stage+".db") },
		remove: func(context.Context) error {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("bench: could not remove the scratch directory %s; remove it by hand: %w", dir, err)
			}
			logf("removed the scratch directory %s", dir)
			return nil
		},
	}, nil
}

// newKurrentDBScratch writes each stage's streams under a prefix of their own. KurrentDB has
// no cheap way to remove them, so they stay; the prefix says what they are.
func newKurrentDBScratch(dsn, name string, logf func(string, ...any)) *scratch {
	prefix := strings.ReplaceAll(name, "_", "-") + "-"
	logf("writing KurrentDB streams under the prefix %s<stage>/ (they stay: KurrentDB keeps what was appended)", prefix)
	return &scratch{
		kind:   stores.KurrentDB,
		dsn:    func(string) string { return dsn },
		prefix: func(stage string) string { return prefix + stage + "/" },
		remove: func(context.Context) error { return nil },
	}
}

// connectPG opens one connection to the database dsn names. The pool settings a DSN may carry
// for the stores (pool_max_conns…) are not server parameters, so they are left out.
func connectPG(ctx context.Context, dsn string) (*pgx.Conn, error) {
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	for k := range config.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(config.RuntimeParams, k)
		}
	}
	return pgx.ConnectConfig(ctx, config)
}
