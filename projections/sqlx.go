package projections

import (
	"context"
	"database/sql"
	"strings"
)

// maxStatementParams bounds the parameters of one statement, below SQLite's 32766 and
// PostgreSQL's 65535.
const maxStatementParams = 30000

// maxInListKeys bounds the keys of one "IN (…)" lookup.
const maxInListKeys = 500

// table describes a table the way the batch writers need it: its columns, the first len(key)
// of which are its primary key.
type table struct {
	name    string
	columns []string
	key     int // the first key columns form the primary key
}

// upsert writes rows (values in column order) with as few INSERT … ON CONFLICT DO UPDATE
// statements as the parameter limit allows. Rows must have distinct keys.
func (t table) upsert(ctx context.Context, tx execer, d dialect, rows [][]any) error {
	var conflict strings.Builder
	conflict.WriteString(" ON CONFLICT (")
	conflict.WriteString(strings.Join(t.columns[:t.key], ", "))
	conflict.WriteString(") DO UPDATE SET ")
	for i, c := range t.columns[t.key:] {
		if i > 0 {
			conflict.WriteString(", ")
		}
		conflict.WriteString(c + " = excluded." + c)
	}
	return t.insertRows(ctx, tx, d, rows, conflict.String())
}

// insert writes new rows; a row whose key exists is an error, which is what a projector
// appending facts wants to hear about.
func (t table) insert(ctx context.Context, tx execer, d dialect, rows [][]any) error {
	return t.insertRows(ctx, tx, d, rows, "")
}

func (t table) insertRows(ctx context.Context, tx execer, d dialect, rows [][]any, suffix string) error {
	perStatement := max(1, maxStatementParams/len(t.columns))
	head := "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ") VALUES "
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.columns)), ", ") + ")"
	for len(rows) > 0 {
		n := min(len(rows), perStatement)
		var b strings.Builder
		b.Grow(len(head) + n*(len(tuple)+2) + len(suffix))
		b.WriteString(head)
		args := make([]any, 0, n*len(t.columns))
		for i, row := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tuple)
			args = append(args, row...)
		}
		b.WriteString(suffix)
		if _, err := tx.ExecContext(ctx, d.sql(b.String()), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// selectIn runs query once per chunk of keys, with the chunk's placeholders in place of
// {keys}, and hands every row to scan.
func selectIn(ctx context.Context, q queryer, d dialect, query string, keys []string, scan func(*sql.Rows) error) error {
	for len(keys) > 0 {
		n := min(len(keys), maxInListKeys)
		text := strings.Replace(query, "{keys}", strings.TrimSuffix(strings.Repeat("?, ", n), ", "), 1)
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		if err := queryRows(ctx, q, d, text, args, scan); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// queryer is a transaction or a database.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryRows runs a query and hands every row to scan.
func queryRows(ctx context.Context, q queryer, d dialect, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, d.sql(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// keySet collects the distinct keys a batch touches, in first-seen order.
type keySet struct {
	seen map[string]struct{}
	keys []string
}

func (k *keySet) add(key string) {
	if k.seen == nil {
		k.seen = make(map[string]struct{})
	}
	if _, ok := k.seen[key]; ok {
		return
	}
	k.seen[key] = struct{}{}
	k.keys = append(k.keys, key)
}

// nullTime maps the "no time" zero of the in-memory rows to SQL NULL.
func nullTime(micros int64) any {
	if micros == 0 {
		return nil
	}
	return micros
}

// boolInt stores a boolean as 0 or 1, which both databases compare and index alike.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
