package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// SetBeforeCommit installs a function that runs when a batch is written and not yet committed.
func SetBeforeCommit(s *ReadStore, f func(projector string) error) { s.beforeCommit = f }

// DumpTables returns every row of every read model table, each row as text, in key order: two
// read stores hold the same read models exactly when their dumps are equal.
func DumpTables(ctx context.Context, s *ReadStore) (map[string][]string, error) {
	dump := map[string][]string{}
	for _, p := range allProjectors() {
		for _, t := range p.tables() {
			rows, err := s.reads.QueryContext(ctx, "SELECT * FROM "+t+" ORDER BY 1")
			if err != nil {
				return nil, err
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]sql.NullString, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return nil, err
				}
				parts := make([]string, len(cols))
				for i, v := range vals {
					parts[i] = fmt.Sprintf("%s=%v", cols[i], map[bool]string{true: v.String, false: "NULL"}[v.Valid])
				}
				dump[t] = append(dump[t], strings.Join(parts, " "))
			}
			if err := rows.Close(); err != nil {
				return nil, err
			}
		}
	}
	return dump, nil
}

// MissingIndexes lists the secondary indexes that do not exist.
func MissingIndexes(ctx context.Context, s *ReadStore) ([]string, error) {
	existing := map[string]bool{}
	err := queryRows(ctx, s.reads, s.dialect, s.dialect.indexNamesQuery(), nil, func(r *sql.Rows) error {
		var name string
		err := r.Scan(&name)
		existing[name] = true
		return err
	})
	var missing []string
	for _, ix := range indexes {
		if !existing[ix.name] {
			missing = append(missing, ix.name)
		}
	}
	return missing, err
}

// SetRebuildSizes makes rebuilds read batch events at a time, write every flush events and keep
// at most cacheRows rows between writes, until the returned function restores the defaults.
func SetRebuildSizes(batch int, flush int64, cacheRows int) (restore func()) {
	oldBatch, oldFlush, oldCache := rebuildBatch, rebuildFlushEvents, rebuildCacheRows
	rebuildBatch, rebuildFlushEvents, rebuildCacheRows = batch, flush, cacheRows
	return func() { rebuildBatch, rebuildFlushEvents, rebuildCacheRows = oldBatch, oldFlush, oldCache }
}

// Exec runs a statement on the read store, as someone tampering with it would.
func Exec(ctx context.Context, s *ReadStore, query string, args ...any) error {
	_, err := s.writes.ExecContext(ctx, s.dialect.sql(query), args...)
	return err
}
