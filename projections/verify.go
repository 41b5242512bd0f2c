package projections

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
	"strings"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// MaxDifferences bounds the differing rows the report shows (all are counted); 20 when 0.
	MaxDifferences int
	// Progress is called as Rebuild calls it, while the scratch copy is built.
	Progress func(done, total int64)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Projectors []VerifiedProjector `json:"projectors"`
	Tables     []VerifiedTable     `json:"tables"`
	// Differing counts the rows that differ, Differences shows the first of them.
	Differing   int             `json:"differing"`
	Differences []RowDifference `json:"differences"`
}

// OK reports whether the live read models equal the rebuilt ones.
func (r VerifyReport) OK() bool { return r.Differing == 0 }

// VerifiedProjector is where a projector's read model was compared: its live checkpoint.
type VerifiedProjector struct {
	Name     string              `json:"name"`
	Position eventstore.Position `json:"position"`
	Events   int64               `json:"events"`
}

// VerifiedTable is one compared table.
type VerifiedTable struct {
	Table     string `json:"table"`
	Live      int    `json:"live_rows"`
	Rebuilt   int    `json:"rebuilt_rows"`
	Differing int    `json:"differing_rows"`
}

// RowDifference is a row that differs: Live or Rebuilt is nil where that side has no row
// with the key; Columns lists the columns whose values differ (every column of a missing row).
type RowDifference struct {
	Table   string            `json:"table"`
	Key     string            `json:"key"` // column=value
	Columns []string          `json:"columns"`
	Live    map[string]string `json:"live"`
	Rebuilt map[string]string `json:"rebuilt"`
}

func (d RowDifference) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", d.Table, d.Key)
	switch {
	case d.Live == nil:
		fmt.Fprintf(&b, "missing from the live read model; rebuilt %s", formatRow(d.Rebuilt, d.Columns))
	case d.Rebuilt == nil:
		fmt.Fprintf(&b, "in the live read model only: %s", formatRow(d.Live, d.Columns))
	default:
		for i, c := range d.Columns {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s live %s, rebuilt %s", c, d.Live[c], d.Rebuilt[c])
		}
	}
	return b.String()
}

func formatRow(row map[string]string, columns []string) string {
	parts := make([]string, len(columns))
	for i, c := range columns {
		parts[i] = c + "=" + row[c]
	}
	return strings.Join(parts, " ")
}

// nullText is how a NULL shows in a difference.
const nullText = "NULL"

// Verify rebuilds the read models from the log into scratch space (a SQLite file in the
// temporary directory beside a SQLite read store, a schema of its own in the database of a
// PostgreSQL one, dropped at the end) and compares them, row by row, with the live ones.
//
// A server may keep projecting meanwhile. Verify reads the live read models in one read-only
// snapshot, taken first, and each projector's checkpoint in the same snapshot: since a
// projector commits its rows and its checkpoint in one transaction, the snapshot shows each
// read model exactly as of its checkpoint. Each projector's scratch copy is then replayed up
// to exactly that checkpoint, however far the live one has moved on since. The snapshot is
// held until the comparison ends (on PostgreSQL a REPEATABLE READ transaction, on SQLite a
// read transaction that keeps the WAL from being checkpointed past it).
//
// A projector stopped on a broken event cannot be verified past it; the rebuild's error says
// so.
func Verify(ctx context.Context, events eventstore.Store, live *ReadStore, opts VerifyOptions) (VerifyReport, error) {
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = 20
	}
	snapshot, err := live.reads.BeginTx(ctx, live.dialect.snapshotOptions())
	if err != nil {
		return VerifyReport{}, fmt.Errorf("projections: verify: %w", err)
	}
	defer snapshot.Rollback() //nolint:errcheck // read-only: nothing to undo
	var report VerifyReport
	upTo := map[string]eventstore.Position{}
	for _, name := range Names() {
		cp, err := live.readCheckpoint(ctx, snapshot, name)
		if err != nil && !errors.Is(err, errNoCheckpoint) {
			return VerifyReport{}, fmt.Errorf("projections: verify: %w", err)
		}
		upTo[name] = cp.progress.pos
		report.Projectors = append(report.Projectors, VerifiedProjector{Name: name, Position: cp.progress.pos, Events: cp.progress.events})
	}

	scratch, drop, err := openScratch(ctx, live)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("projections: verify: scratch space: %w", err)
	}
	defer drop()
	if _, err := rebuildLog(ctx, events, scratch, nil, opts.Progress, rebuildLimits{upTo: upTo}); err != nil {
		return VerifyReport{}, err
	}
	for _, p := range allProjectors() {
		for _, t := range p.tables() {
			if err := compareTable(ctx, t, snapshot, scratch.reads, &report, opts.MaxDifferences); err != nil {
				return VerifyReport{}, fmt.Errorf("projections: verify: %s: %w", t, err)
			}
		}
	}
	return report, nil
}

// compareTable walks a table's rows in key order on both sides at once.
func compareTable(ctx context.Context, table string, live, rebuilt queryer, report *VerifyReport, maxDiffs int) error {
	// Keys are compared as Go strings, in byte order, as both databases sort them: PostgreSQL
	// key columns are COLLATE "C" and SQLite compares TEXT bytewise.
	query := "SELECT * FROM " + table + " ORDER BY 1"
	liveRows, err := live.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer liveRows.Close()
	rebuiltRows, err := rebuilt.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rebuiltRows.Close()
	columns, err := liveRows.Columns()
	if err != nil {
		return err
	}
	l, r := &rowCursor{rows: liveRows}, &rowCursor{rows: rebuiltRows}
	check := VerifiedTable{Table: table}
	differ := func(d RowDifference) {
		check.Differing++
		report.Differing++
		if len(report.Differences) < maxDiffs {
			d.Table = table
			report.Differences = append(report.Differences, d)
		}
	}
	asMap := func(row []sql.NullString) map[string]string {
		m := make(map[string]string, len(row))
		for i, v := range row {
			m[columns[i]] = text(v)
		}
		return m
	}
	for {
		lrow, err := l.peek(len(columns))
		if err != nil {
			return err
		}
		rrow, err := r.peek(len(columns))
		if err != nil {
			return err
		}
		switch {
		case lrow == nil && rrow == nil:
			report.Tables = append(report.Tables, check)
			return nil
		case rrow != nil && (lrow == nil || text(rrow[0]) < text(lrow[0])):
			r.take()
			check.Rebuilt++
			differ(RowDifference{Key: columns[0] + "=" + text(rrow[0]), Columns: columns, Rebuilt: asMap(rrow)})
		case lrow != nil && (rrow == nil || text(lrow[0]) < text(rrow[0])):
			l.take()
			check.Live++
			differ(RowDifference{Key: columns[0] + "=" + text(lrow[0]), Columns: columns, Live: asMap(lrow)})
		default:
			l.take()
			r.take()
			check.Live++
			check.Rebuilt++
			var changed []string
			for i := range columns {
				if lrow[i] != rrow[i] {
					changed = append(changed, columns[i])
				}
			}
			if len(changed) > 0 {
				differ(RowDifference{Key: columns[0] + "=" + text(lrow[0]), Columns: changed, Live: asMap(lrow), Rebuilt: asMap(rrow)})
			}
		}
	}
}

func text(v sql.NullString) string {
	if !v.Valid {
		return nullText
	}
	return v.String
}

// rowCursor reads rows as text, one at a time, looking at each before taking it.
type rowCursor struct {
	rows   *sql.Rows
	row    []sql.NullString // nil once the rows are done
	loaded bool
}

// peek returns the next row without taking it; nil when there is none.
func (c *rowCursor) peek(columns int) ([]sql.NullString, error) {
	if c.loaded {
		return c.row, nil
	}
	c.loaded, c.row = true, nil
	if !c.rows.Next() {
		return nil, c.rows.Err()
	}
	row := make([]sql.NullString, columns)
	ptrs := make([]any, columns)
	for i := range row {
		ptrs[i] = &row[i]
	}
	if err := c.rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	c.row = row
	return row, nil
}

// take moves past the row peek returned.
func (c *rowCursor) take() { c.loaded = false }

// openScratch opens an empty read store beside live, and a function that closes and drops it.
func openScratch(ctx context.Context, live *ReadStore) (*ReadStore, func(), error) {
	if !live.dialect.postgres {
		dir, err := os.MkdirTemp("", "orderledger-verify-")
		if err != nil {
			return nil, nil, err
		}
		s, err := OpenReadStore(ctx, "sqlite:"+filepath.Join(dir, "scratch.db"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return s, func() {
			s.Close()
			if err := os.RemoveAll(dir); err != nil {
				slog.WarnContext(ctx, "verify: removing the scratch read store failed", "dir", dir, "err", err)
			}
		}, nil
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	schema := "orderledger_verify_" + hex.EncodeToString(b[:])
	u, err := url.Parse(live.dsn)
	if err != nil {
		return nil, nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	if _, err := live.writes.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, nil, err
	}
	dropSchema := func() {
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := live.writes.ExecContext(dropCtx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			slog.WarnContext(ctx, "verify: dropping the scratch schema failed; drop it by hand", "schema", schema, "err", err)
		}
	}
	s, err := OpenReadStore(ctx, u.String())
	if err != nil {
		dropSchema()
		return nil, nil, err
	}
	return s, func() {
		s.Close()
		dropSchema()
	}, nil
}
