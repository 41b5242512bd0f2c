package postgres

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// migrateAsRelease2 makes a database as release 2 left it: schema version 2, with the
// group function of that version (testdata), which the repeatable migration later replaces.
func migrateAsRelease2(ctx context.Context, pool *pgxpool.Pool) error {
	if err := migrate(ctx, pool, migrations[:2], nil); err != nil {
		return err
	}
	v2, err := os.ReadFile("testdata/append_group_v2.sql")
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, string(v2))
	return err
}

// A database migrated one release at a time, with events appended between the steps, ends
// with the same schema (tables, columns, constraints, indexes, functions, triggers) as one
// created fresh, and its log still chains.
func TestMigratedStepByStepEqualsFresh(t *testing.T) {
	ctx := t.Context()
	stepped := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, stepped)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	appendOne := func(stream string) {
		t.Helper()
		if _, _, err := appendAlone(ctx, pool, stream, eventstore.Any(), []eventstore.EventData{event("Step.v1", `{}`)}); err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
	}
	for v := 1; v <= len(migrations); v++ {
		if v == 2 {
			err = migrateAsRelease2(ctx, pool)
		} else {
			err = migrate(ctx, pool, migrations[:v], nil)
		}
		if err != nil {
			t.Fatalf("migrate to version %d: %v", v, err)
		}
		appendOne(fmt.Sprintf("order-step%d", v))
	}
	s := openStore(t, stepped) // the repeatable migrations
	checkSchemaVersion(t, s)
	if _, err := s.Append(ctx, "order-step1", eventstore.Exact(0), event("After.v1", `{}`)); err != nil {
		t.Fatalf("append after the last step: %v", err)
	}

	fresh := pgtest.NewDatabase(t)
	openStore(t, fresh)
	want, got := schemaOf(t, fresh), schemaOf(t, stepped)
	t.Logf("%d schema objects compared", len(want))
	if !slices.Equal(got, want) {
		for _, line := range want {
			if !slices.Contains(got, line) {
				t.Errorf("fresh has, stepped lacks: %s", line)
			}
		}
		for _, line := range got {
			if !slices.Contains(want, line) {
				t.Errorf("stepped has, fresh lacks: %s", line)
			}
		}
	}
}

// schemaOf describes the objects of a database's public schema, one sorted line each.
func schemaOf(t *testing.T, dsn string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var out []string
	for _, q := range []string{
		`SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
		 FROM information_schema.columns WHERE table_schema = current_schema()`,
		`SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		 FROM pg_constraint WHERE connamespace = current_schema()::regnamespace`,
		`SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()`,
		`SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace`,
		`SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal`,
	} {
		rows, err := conn.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lines...)
	}
	slices.Sort(out)
	return out
}

// The SQL files hold streamLockSpace as a literal: each two-key stream lock they take must be
// in the space the Go code (and its tests) lock streams in.
func TestSchemaLocksStreamsInTheirSpace(t *testing.T) {
	want := fmt.Sprintf("pg_advisory_xact_lock(%d, ", streamLockSpace)
	n := 0
	for _, sql := range append(slices.Clone(migrations), functions...) {
		for line := range strings.Lines(sql) {
			if i := strings.Index(line, "pg_advisory_xact_lock("); i >= 0 && strings.Contains(line[i:], ",") {
				n++
				if !strings.Contains(line, want) {
					t.Errorf("a stream lock outside streamLockSpace (%d): %s", streamLockSpace, strings.TrimSpace(line))
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no stream lock found in the schema's SQL")
	}
}
