package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaLockKey is the key of the transaction-level advisory lock (the one-bigint form of
// pg_advisory_xact_lock) held while a schema is created or migrated. Other packages that keep
// their schema version in schema_migrations, such as the projections, take the same lock so
// that no two processes ever create that table or migrate at once.
const SchemaLockKey int64 = 0x6f6c5f736368656d // "ol_schem"

// schemaComponent is this package's row in schema_migrations.
const schemaComponent = "eventstore"

// streamLockSpace is the first key of the two-int4 advisory lock taken per stream by the
// append functions; the two-key form keeps stream locks apart from SchemaLockKey.
const streamLockSpace = 0x4f4c4556 // "OLEV"

// The schema is SQL in files embedded in the binary:
//
//   - migrations/NNNN_name.sql: the numbered migrations; file N brings the schema from version
//     N-1 to N. Released files never change: a database records the version it reached, not
//     the text it ran. A file with no statement (only comments) is a step with nothing left to
//     do, kept so that the numbering stays that of the releases.
//   - functions/*.sql: repeatable migrations, each one CREATE OR REPLACE of a function, applied
//     after the numbered ones every time a store opens, so that a function's definition lives
//     in one file and a change to it is an edit, not a copy.
//
// The SQL holds the value of streamLockSpace as a literal (schema_test.go checks it).
//
//go:embed migrations/*.sql functions/*.sql
var schemaFiles embed.FS

// migrations[i] brings the schema from version i to version i+1; functions are the
// repeatable migrations.
var (
	migrations = readSQL("migrations")
	functions  = readSQL("functions")
)

// readSQL returns the .sql files of dir, in the order of their names.
func readSQL(dir string) []string {
	entries, err := fs.ReadDir(schemaFiles, dir)
	if err != nil {
		panic(err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries { // fs.ReadDir sorts by name
		b, err := fs.ReadFile(schemaFiles, path.Join(dir, e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	return out
}

// hasStatement reports whether sql holds anything but comments and blank lines.
func hasStatement(sql string) bool {
	for line := range strings.Lines(sql) {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
			return true
		}
	}
	return false
}

// migrate creates or upgrades the schema to the version reached by steps (migrations, or in
// tests a prefix of it, to make a database as an older release left it), then applies the
// repeatable migrations funcs (functions; nil in such tests). Two processes opening the same
// database at once serialise on SchemaLockKey, so the second finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool, steps, funcs []string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", SchemaLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component text PRIMARY KEY,
			version   int  NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, "SELECT version FROM schema_migrations WHERE component = $1", schemaComponent).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if version > len(steps) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(steps))
		}
		for v := version; v < len(steps); v++ {
			if !hasStatement(steps[v]) {
				continue
			}
			if _, err := tx.Exec(ctx, steps[v]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		for i, f := range funcs {
			if _, err := tx.Exec(ctx, f); err != nil {
				return fmt.Errorf("apply repeatable migration %d: %w", i+1, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES ($1, $2)
			ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`, schemaComponent, len(steps))
		return err
	})
}
