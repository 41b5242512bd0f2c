package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNewDatabaseIsFreshAndDroppedAfterTheTest(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "ol_test_") {
			t.Fatalf("database %q: want the ol_test_ prefix", name)
		}
		var tables int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("new database has %d tables, want 0", tables)
		}
		if other := NewDatabase(t); other == dsn {
			t.Fatalf("two calls returned the same DSN %s", dsn)
		}
	})
	if name == "" {
		t.Skip("the inner test skipped: no server to check the drop against")
	}
	conn, err := pgx.Connect(t.Context(), ServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var exists bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/ol_test_x?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/ol_test_x"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=ol_test_x"},
	} {
		got, err := withDatabase(tc.server, "ol_test_x")
		if err != nil || got != tc.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tc.server, got, err, tc.want)
		}
	}
}

func TestRedactHidesPasswords(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:secret@h/db",
		"host=h password=secret user=u",
		"host=h password='se cret' user=u",
	} {
		if got := redact(dsn); strings.Contains(got, "secret") || strings.Contains(got, "cret") {
			t.Errorf("redact(%q) = %q, still shows the password", dsn, got)
		}
	}
	if got := redact(DefaultDSN); got != DefaultDSN {
		t.Errorf("redact(%q) = %q, want it unchanged", DefaultDSN, got)
	}
}
