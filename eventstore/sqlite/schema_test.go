package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// A file migrated one release at a time and then opened by this build ends with the same
// tables, columns, indexes and triggers as one created fresh, and its log goes on.
func TestMigratedStepByStepEqualsFresh(t *testing.T) {
	dir := t.TempDir()
	stepped := filepath.Join(dir, "stepped.db")
	db, err := sql.Open("sqlite", dsn(stepped, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for v := 1; v < len(migrations); v++ {
		if err := migrateTo(t.Context(), db, migrations[:v]); err != nil {
			t.Fatalf("migrate to version %d: %v", v, err)
		}
	}
	db.Close()
	s := openStore(t, stepped)
	for v := range 2 {
		expected := eventstore.NoStream()
		if v > 0 {
			expected = eventstore.Exact(uint64(v - 1))
		}
		if _, err := s.Append(t.Context(), "order-step", expected, eventstore.EventData{ID: uuid.New(), Type: "Step.v1", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(dir, "fresh.db")
	openStore(t, fresh)
	want, got := schemaOf(t, fresh), schemaOf(t, stepped)
	t.Logf("%d schema objects compared", len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("stepped:\n%v\nfresh:\n%v", got, want)
	}
}

// schemaOf describes a file's tables (their columns), indexes and triggers, one sorted line each.
func schemaOf(t *testing.T, path string) []string {
	t.Helper()
	db := rawDB(t, path)
	rows, err := db.QueryContext(t.Context(), `SELECT m.type, m.name, m.tbl_name FROM sqlite_master m WHERE m.name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var tables []string
	for rows.Next() {
		var typ, name, table string
		if err := rows.Scan(&typ, &name, &table); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ+" "+name+" on "+table)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, table := range tables {
		cols, err := db.QueryContext(t.Context(), `SELECT name, type, "notnull", coalesce(dflt_value, ''), pk FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for cols.Next() {
			var name, typ, dflt string
			var notNull, pk int
			if err := cols.Scan(&name, &typ, &notNull, &dflt, &pk); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("column %s.%s %s notnull=%d default=%s pk=%d", table, name, typ, notNull, dflt, pk))
		}
		cols.Close()
	}
	slices.Sort(out)
	return out
}
