package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pipelineCheckpointTx is inCheckpointTx on PostgreSQL, in one round trip: write queues its
// statements, and they go to the server in one pipeline behind the statement that moves the
// checkpoint. A pipeline without BEGIN runs as one implicit transaction, committed at its end
// unless a statement fails, so the checkpoint statement fails (division by zero) when it
// finds the checkpoint moved, and nothing after it runs.
//
// A transaction per batch otherwise took four round trips or more (BEGIN, the checkpoint, the
// upserts, COMMIT). Under load, each is a wait for a busy server, and a read waiting with
// ?after= waited for all of them; and while the transaction was open, its transaction ID held
// back every reader of the event log in the same database.
func (s *ReadStore) pipelineCheckpointTx(ctx context.Context, name string, w writer, from, to progress, write func(q queryer, tx execer) error) error {
	var queued pipeline
	if err := write(s.reads, &queued); err != nil {
		var broken *EventError
		if errors.As(err, &broken) {
			// The rows were read outside the transaction: a rebuild that took the projector
			// over since emptied the tables, and a sound event seems to contradict them.
			if held, checkErr := s.stillAt(ctx, name, w, from); checkErr != nil {
				return checkErr
			} else if !held {
				return errFenced
			}
		}
		return writeErr(name, err)
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(name); err != nil {
			return err
		}
	}
	query, args := checkpointUpdate(name, w, from, to, w.owner, w.now().Add(w.leaseTTL))
	var b pgx.Batch
	b.Queue(s.dialect.sql("WITH moved AS ("+query+" RETURNING 1) SELECT 1 / count(*) FROM moved"), args...)
	for _, st := range queued {
		b.Queue(st.query, st.args...)
	}
	conn, err := s.writes.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		results := driverConn.(*stdlib.Conn).Conn().SendBatch(ctx, &b)
		var pgErr *pgconn.PgError
		if _, err := results.Exec(); errors.As(err, &pgErr) && pgErr.Code == "22012" {
			results.Close()
			return errFenced
		} else if err != nil {
			results.Close()
			return err
		}
		for range queued {
			if _, err := results.Exec(); err != nil {
				results.Close()
				return fmt.Errorf("projector %s: write: %w", name, err)
			}
		}
		return results.Close()
	})
}

// pipeline queues the statements of a projector transaction on PostgreSQL.
type pipeline []queuedStatement

type queuedStatement struct {
	query string
	args  []any
}

// ExecContext queues the statement; it runs when the pipeline is sent. There is no result
// yet, so it returns none: the batches' writers only look at the error.
func (p *pipeline) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	*p = append(*p, queuedStatement{query: query, args: args})
	return nil, nil
}
