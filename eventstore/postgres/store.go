package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderledger/orderledger/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	opts options
	// databaseOID narrows the read horizon to this database.
	databaseOID uint32

	// ctx lives as long as the Store; Close cancels it to stop the notifier and the listener.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	subscribers  wakeHub
	notifyNeeded chan struct{}
	listenOnce   sync.Once

	// appends queues the appends for the lanes' committers. inFlight counts the groups sent to
	// the server, and the appends applied by callers that found the store idle (appendNow);
	// lastAlone says whether the last to end was a single append; groupDone wakes a committer
	// waiting for one to end (see gatherGroup).
	appends   chan *appendRequest
	inFlight  atomic.Int32
	lastAlone atomic.Bool
	groupDone chan struct{}
}

type options struct {
	safetyPoll     time.Duration
	notifyInterval time.Duration
	appendLanes    int
}

// Option tunes a Store.
type Option func(*options)

// WithSafetyPoll sets how often an idle subscriber reads although nothing woke it. The poll
// only matters when a writer crashed between its commit and its notification; the default is
// one second.
func WithSafetyPoll(d time.Duration) Option { return func(o *options) { o.safetyPoll = d } }

// WithAppendLanes sets how many transactions the Store's appends run in at once (at least one;
// the default is 2). Fewer lanes make larger groups, which cost less per append; more lanes
// let more groups wait for a commit or for a stream's lock at once.
func WithAppendLanes(n int) Option { return func(o *options) { o.appendLanes = max(n, 1) } }

// Open connects to the database at dsn and creates or migrates the schema.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{safetyPoll: time.Second, notifyInterval: 5 * time.Millisecond, appendLanes: defaultAppendLanes}
	for _, opt := range opts {
		opt(&o)
	}
	config, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: %w", err)
	}
	if err := migrate(ctx, pool, migrations, functions); err != nil {
		pool.Close()
		return nil, wrapErr("open", err)
	}
	var databaseOID uint32
	if err := pool.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = current_database()").Scan(&databaseOID); err != nil {
		pool.Close()
		return nil, wrapErr("open", err)
	}
	// The store outlives the call that opened it but keeps its values (loggers, tracing).
	storeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		pool:         pool,
		opts:         o,
		databaseOID:  databaseOID,
		ctx:          storeCtx,
		cancel:       cancel,
		notifyNeeded: make(chan struct{}, 1),
		appends:      make(chan *appendRequest, appendQueue),
		groupDone:    make(chan struct{}, 1),
	}
	s.subscribers.init()
	s.lastAlone.Store(true)
	s.wg.Add(1 + o.appendLanes)
	go s.notifyLoop()
	for range o.appendLanes {
		go s.commitLoop()
	}
	return s, nil
}

// Close stops the store's goroutines and closes its connections. Subscriptions still running
// and appends still queued return an error; appends already sent to the database get their
// result.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

const (
	appendOneSQL = `SELECT outcome, last_version, last_xid, last_position
FROM orderledger_append_one($1, $2, $3, $4, $5, $6, $7)`
	appendSQL = `SELECT outcome, last_version, last_xid, last_position
FROM orderledger_append($1, $2, $3, $4, $5, $6, $7)`
)

// Outcomes of the append functions.
const (
	outcomeAppended = iota
	outcomeRetry
	outcomeWrongRevision
	outcomeDuplicate
	outcomeLaterDuplicate // orderledger_append_group only
)

// querier is what an append needs: the pool, or a transaction the caller holds open.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appendWith validates an append and runs it alone on q (outside group commit), reporting
// whether it appended anything, so that the caller wakes subscribers once the transaction has
// committed.
func (s *Store) appendWith(ctx context.Context, q querier, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, false, err
	}
	return appendAlone(ctx, q, stream, expected, events)
}

// appendAlone runs one validated append in one call of orderledger_append_one (one event) or
// orderledger_append (a batch).
func appendAlone(ctx context.Context, q querier, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	var (
		clock    recordClock
		outcome  int
		version  int64
		xid      *uint64
		position *int64
		row      pgx.Row
	)
	if len(events) == 1 {
		e := events[0]
		row = q.QueryRow(ctx, appendOneSQL, stream, encodeExpected(expected),
			[16]byte(e.ID), e.Type, e.Data, eventstore.EncodeMetadata(e.Metadata), clock.stamp(e))
	} else {
		n := len(events)
		ids := make([][16]byte, n)
		types := make([]string, n)
		data := make([][]byte, n)
		metadata := make([][]byte, n)
		times := make([]time.Time, n)
		for i, e := range events {
			ids[i] = e.ID
			types[i] = e.Type
			data[i] = e.Data
			metadata[i] = eventstore.EncodeMetadata(e.Metadata)
			times[i] = clock.stamp(e)
		}
		row = q.QueryRow(ctx, appendSQL, stream, encodeExpected(expected), ids, types, data, metadata, times)
	}
	err := row.Scan(&outcome, &version, &xid, &position)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			switch pgErr.ConstraintName {
			case "events_stream_id_key":
				return eventstore.AppendResult{}, false, laterDuplicate(stream)
			case "events_stream_version_key":
				// Only a writer that bypassed the append functions' stream lock can get here;
				// the unique index is the last guard and its verdict is a lost race.
				return eventstore.AppendResult{}, false, fmt.Errorf("%w: stream %q was appended to concurrently",
					eventstore.ErrWrongExpectedRevision, stream)
			}
		}
		return eventstore.AppendResult{}, false, wrapErr("append", err)
	}
	return appendResult(stream, expected, outcome, version, xid, position)
}

// recordClock stamps the events given without RecordedAt with one reading of the clock, taken
// at the first such event.
type recordClock struct{ now time.Time }

func (c *recordClock) stamp(e eventstore.EventData) time.Time {
	if !e.RecordedAt.IsZero() {
		return eventstore.NormalizeTime(e.RecordedAt)
	}
	if c.now.IsZero() {
		c.now = eventstore.NormalizeTime(time.Now())
	}
	return c.now
}

// appendResult turns a row of an append function into the append's answer, and reports
// whether it appended anything.
func appendResult(stream string, expected eventstore.ExpectedRevision, outcome int, version int64, xid *uint64, position *int64) (eventstore.AppendResult, bool, error) {
	switch outcome {
	case outcomeAppended, outcomeRetry:
		if xid == nil || position == nil {
			return eventstore.AppendResult{}, false, fmt.Errorf("eventstore/postgres: append: outcome %d without a position", outcome)
		}
		return eventstore.AppendResult{
			Version:  uint64(version),
			Position: eventstore.Position{Commit: *xid, Prepare: uint64(*position)},
			Retried:  outcome == outcomeRetry,
		}, outcome == outcomeAppended, nil
	case outcomeWrongRevision:
		if err := expected.Check(stream, uint64(version), version >= 0); err != nil {
			return eventstore.AppendResult{}, false, err
		}
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: stream %q expected %s",
			eventstore.ErrWrongExpectedRevision, stream, expected)
	case outcomeDuplicate:
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: the batch's first event is stored in %q, but the events stored after it differ from the batch",
			eventstore.ErrDuplicateEventID, stream)
	case outcomeLaterDuplicate:
		return eventstore.AppendResult{}, false, laterDuplicate(stream)
	}
	return eventstore.AppendResult{}, false, fmt.Errorf("eventstore/postgres: append: unknown outcome %d", outcome)
}

func laterDuplicate(stream string) error {
	return fmt.Errorf("%w: the batch repeats an event id already in %q", eventstore.ErrDuplicateEventID, stream)
}

// encodeExpected maps an ExpectedRevision to orderledger_append's p_expected.
func encodeExpected(e eventstore.ExpectedRevision) int64 {
	switch {
	case e.IsAny():
		return -2
	case e.IsNoStream():
		return -1
	case e.IsStreamExists():
		return -3
	}
	v, _ := e.Revision()
	if v > math.MaxInt64 {
		return -4
	}
	return int64(v)
}

const eventColumns = `xid, position, stream, version, id, type, data, metadata, recorded_at, hash`

const readStreamSQL = `SELECT ` + eventColumns + ` FROM events
WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`

// ReadStream returns up to limit events of stream from version from on.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: read limit %d, want > 0", eventstore.ErrInvalidEvent, limit)
	}
	if from > math.MaxInt64 {
		return nil, nil
	}
	// Streams are short and callers ask for all of one with a large limit.
	return s.query(ctx, "read stream", min(limit, 16), nil, readStreamSQL, stream, int64(from), limit)
}

// horizonCTE works out the read horizon of the statement's snapshot (see the package doc),
// given this database's oid as $1, as the one row of "horizon": h, the first transaction id
// the statement may not read, and stale. A transaction of the snapshot that has ended by the
// time the backends are listed cannot be told apart from one of this database, so it holds
// the horizon back, and so does one whose backend is not listed (a prepared transaction): both
// err on the side of waiting. stale says the horizon was held back by such a transaction: one
// that runs nowhere now, so that the same read asked again, with a new snapshot, can go
// further. On a server where other databases are busy this is frequent (a transaction of
// theirs ends in the microseconds between the snapshot and the listing), and without the
// second asking a read right after an append would often miss it.
const horizonCTE = `WITH running AS MATERIALIZED (
	SELECT a.datid, a.backend_xid FROM pg_stat_get_activity(NULL) AS a WHERE a.backend_xid IS NOT NULL),
oldest AS (
	SELECT min(x) AS x FROM pg_snapshot_xip(pg_current_snapshot()) AS x
	WHERE x::xid NOT IN (SELECT r.backend_xid FROM running AS r WHERE r.datid <> $1::oid)),
horizon AS (
	SELECT coalesce(o.x, pg_snapshot_xmax(pg_current_snapshot())) AS h,
	       o.x IS NOT NULL AND o.x::xid NOT IN (SELECT r.backend_xid FROM running AS r) AS stale
	FROM oldest AS o)
`

// horizonRetries is how many times a read of the log whose horizon was stale is asked again.
const horizonRetries = 4

// readAllSQL returns the events after ($2, $3) below the horizon, each row led by the
// horizon's stale; with no such event, one row of stale alone. The join of the one horizon
// row keeps the order of the events' index scan; an ORDER BY over the join would cost a
// third of a caught-up reader's read, so readAll checks the order instead.
const readAllSQL = horizonCTE + `SELECT hz.stale, e.* FROM horizon AS hz LEFT JOIN LATERAL (
	SELECT ` + eventColumns + ` FROM events
	WHERE (xid, position) > ($2, $3) AND xid < hz.h
	ORDER BY xid, position LIMIT $4) AS e ON true`

// ReadAll returns up to limit events after from in global order, holding back every event
// that a transaction still running could precede.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	// A caller that pages through the log mostly gets full pages.
	return s.readAll(ctx, from, limit, min(limit, maxPrealloc))
}

// maxPrealloc bounds the room a read makes for the events it expects.
const maxPrealloc = 1024

// readAll is ReadAll making room for expect events up front: too little, and the slice grows
// row by row, copying the events as often again; too much, and a read that finds nothing,
// as a subscriber's that has caught up mostly does, allocates and clears room for a page.
func (s *Store) readAll(ctx context.Context, from eventstore.Position, limit, expect int) ([]eventstore.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: read limit %d, want > 0", eventstore.ErrInvalidEvent, limit)
	}
	for asked := 0; ; asked++ {
		var stale bool
		events, err := s.query(ctx, "read all", expect, &stale, readAllSQL, s.databaseOID, from.Commit, clampPosition(from.Prepare), limit)
		if err != nil {
			return nil, err
		}
		if !slices.IsSortedFunc(events, byPosition) {
			slices.SortFunc(events, byPosition)
		}
		if !stale || len(events) == limit || asked == horizonRetries {
			return events, nil
		}
	}
}

func byPosition(a, b eventstore.Event) int { return a.Position.Compare(b.Position) }

// clampPosition maps a position beyond any bigserial value to the largest one, which orders the
// same against every stored row.
func clampPosition(p uint64) int64 {
	if p > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(p)
}

// headSQL returns the horizon's stale and the last event below the horizon (NULL when none).
const headSQL = horizonCTE + `SELECT hz.stale, e.xid, e.position FROM horizon AS hz LEFT JOIN LATERAL (
	SELECT xid, position FROM events WHERE xid < hz.h
	ORDER BY xid DESC, position DESC LIMIT 1) AS e ON true`

// Head returns the position of the last event ReadAll can return now.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	for asked := 0; ; asked++ {
		var (
			stale    bool
			xid      *uint64
			position *int64
		)
		if err := s.pool.QueryRow(ctx, headSQL, s.databaseOID).Scan(&stale, &xid, &position); err != nil {
			return eventstore.Position{}, wrapErr("head", err)
		}
		if stale && asked < horizonRetries {
			continue
		}
		if xid == nil || position == nil {
			return eventstore.Position{}, nil
		}
		return eventstore.Position{Commit: *xid, Prepare: uint64(*position)}, nil
	}
}

// query reads events, with room for expect of them made up front. A read of the log
// (stale not nil) has the horizon's stale before each event's columns, and a row of it alone
// when no event is below the horizon (readAllSQL).
func (s *Store) query(ctx context.Context, op string, expect int, stale *bool, sql string, args ...any) ([]eventstore.Event, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	events := make([]eventstore.Event, 0, expect)
	// One set of destinations for every row: the values are copied into each event.
	var (
		e        eventstore.Event
		xid      uint64
		position int64
		version  int64
		metadata []byte
		hash     []byte
	)
	dest := []any{&xid, &position, &e.Stream, &version, (*[16]byte)(&e.ID), &e.Type, &e.Data, &metadata, &e.RecordedAt, &hash}
	var horizonOnly []any
	if stale != nil {
		dest = append([]any{stale}, dest...)
		horizonOnly = make([]any, len(dest)) // nil: the columns of the missing event
		horizonOnly[0] = stale
	}
	for rows.Next() {
		if stale != nil && rows.RawValues()[1] == nil {
			if err := rows.Scan(horizonOnly...); err != nil {
				return nil, wrapErr(op, err)
			}
			continue
		}
		// Fresh slices for every row, so no event shares another's bytes.
		e, metadata, hash = eventstore.Event{}, nil, nil
		if err := rows.Scan(dest...); err != nil {
			return nil, wrapErr(op, err)
		}
		e.Position = eventstore.Position{Commit: xid, Prepare: uint64(position)}
		e.Version = uint64(version)
		e.RecordedAt = e.RecordedAt.UTC()
		var err error
		if e.Metadata, err = decodeMetadata(metadata); err != nil {
			return nil, fmt.Errorf("eventstore/postgres: %s: event %s of %q: metadata: %w", op, e.ID, e.Stream, err)
		}
		if len(hash) != len(e.Hash) {
			return nil, fmt.Errorf("eventstore/postgres: %s: event %s of %q: hash of %d bytes", op, e.ID, e.Stream, len(hash))
		}
		e.Hash = eventstore.Hash(hash)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(op, err)
	}
	return events, nil
}

// wrapErr names the operation and marks a failure to reach the server as
// eventstore.ErrUnavailable; context errors stay matchable as they are.
func wrapErr(op string, err error) error {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	if errors.As(err, &connectErr) || errors.As(err, &netErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("eventstore/postgres: %s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("eventstore/postgres: %s: %w", op, err)
}
