package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// harness gives every test a Store on a database of its own.
type harness struct{}

func (harness) NewStore(t *testing.T) eventstore.Store { return newStore(t) }

// BeginAppend runs the same append function as Append inside a transaction left open, so the
// suite can commit it late or roll it back.
func (harness) BeginAppend(ctx context.Context, t *testing.T, store eventstore.Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (commit, rollback func() error, err error) {
	return beginAppend(ctx, store.(*Store), stream, expected, events...)
}

func beginAppend(ctx context.Context, s *Store, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (commit, rollback func() error, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	_, appended, err := s.appendWith(ctx, tx, stream, expected, events)
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, nil, err
	}
	// The transaction outlives ctx's caller, who may end it from a cleanup.
	txCtx := context.WithoutCancel(ctx)
	commit = func() error {
		if err := tx.Commit(txCtx); err != nil {
			return err
		}
		if appended {
			s.appended()
		}
		return nil
	}
	rollback = func() error { return tx.Rollback(txCtx) }
	return commit, rollback, nil
}

// newStore opens a Store on a fresh database and closes it when t ends.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openStore(t, pgtest.NewDatabase(t), opts...)
}

func openStore(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// connect opens a plain connection to the store's database for what the Store API cannot do.
func connect(t testing.TB, s *Store) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(t.Context(), s.pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}
