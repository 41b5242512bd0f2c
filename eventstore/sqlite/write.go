package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/internal/handoff"
)

// appendRequest is one Append waiting for the writer.
type appendRequest struct {
	*handoff.Ticket
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
}

// Append queues the append for the writer goroutine and waits for its commit. An error that
// matches context.Canceled or context.DeadlineExceeded means nothing was appended: once the
// writer has taken the request, Append waits for the outcome (one group commit).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	r := &appendRequest{Ticket: handoff.NewTicket(), stream: stream, expected: expected, events: events}
	select {
	case s.appends <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closing:
		return eventstore.AppendResult{}, errClosed
	}
	return r.Await(ctx, s.writerDone, errClosed)
}

// writeLoop is the writer goroutine: it waits for an append, opens a transaction, takes the
// appends queued by then (up to maxGroup) and commits them together.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	group := make([]*appendRequest, 0, s.maxGroup)
	for {
		select {
		case <-s.closing:
			return
		case r := <-s.appends:
			group = s.commitGroup(append(group[:0], r))
		}
	}
}

// commitGroup applies the group's one request and the appends queued behind it, in order, and
// commits them at once. An append is refused (expected revision, partial repeat) by its reads,
// before it writes anything, so a refusal leaves the others in the transaction intact; any other
// error fails the transaction and every append in it. It answers every request it took and
// returns the group for reuse.
func (s *Store) commitGroup(group []*appendRequest) []*appendRequest {
	ctx := s.life
	w, err := s.beginWrite(ctx)
	// Gather once the write lock is held: what queued while waiting for it joins this commit.
gather:
	for len(group) < s.maxGroup {
		select {
		case r := <-s.appends:
			group = append(group, r)
		default:
			break gather
		}
	}
	outcomes := make([]handoff.Outcome, len(group))
	took := make([]bool, len(group))
	answer := func() []*appendRequest {
		for i, r := range group {
			if took[i] {
				r.Answer(outcomes[i])
			}
		}
		clear(group) // let the answered requests go
		return group
	}
	// failAll fails every append of the group that was not refused already, taking those not
	// taken yet so that none is left waiting.
	failAll := func(cause error) []*appendRequest {
		for i, r := range group {
			if took[i] && outcomes[i].Err != nil {
				continue
			}
			if took[i] = took[i] || r.Take(); took[i] {
				outcomes[i] = handoff.Outcome{Err: fmt.Errorf("eventstore/sqlite: append to %q: %w", r.stream, cause)}
			}
		}
		return answer()
	}
	if err != nil {
		return failAll(err)
	}
	applied := 0
	for i, r := range group {
		if took[i] = r.Take(); !took[i] {
			continue
		}
		res, err := w.apply(ctx, r.stream, r.expected, r.events)
		if err != nil && !refused(err) {
			// SQLite may already have rolled the transaction back, and a later statement would
			// then commit on its own: stop here.
			w.tx.Rollback() // the statement's own error is the one to report
			return failAll(err)
		}
		outcomes[i] = handoff.Outcome{Result: res, Err: err}
		if err == nil {
			applied++
		}
	}
	if applied == 0 {
		w.tx.Rollback() // nothing was written
		return answer()
	}
	if err := w.tx.Commit(); err != nil {
		return failAll(fmt.Errorf("commit: %w", err))
	}
	s.notify()
	return answer()
}

// refused reports whether an append failed on the contract (wrong expected revision, partial
// repeat): it wrote nothing and the transaction goes on. Any other error fails the transaction.
func refused(err error) bool {
	return errors.Is(err, eventstore.ErrWrongExpectedRevision) || errors.Is(err, eventstore.ErrDuplicateEventID)
}

// writeTx is a write transaction on the write connection with the statements an append needs.
type writeTx struct {
	tx                                    *sql.Tx
	headAndID, findIDs, insert, storedIDs *sql.Stmt
}

// beginWrite opens a write transaction. It takes the only write connection, so while one is
// open no other append can start.
func (s *Store) beginWrite(ctx context.Context) (*writeTx, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &writeTx{
		tx:        tx,
		headAndID: tx.StmtContext(ctx, s.stmts.headAndID),
		findIDs:   tx.StmtContext(ctx, s.stmts.findIDs),
		insert:    tx.StmtContext(ctx, s.stmts.insert),
		storedIDs: tx.StmtContext(ctx, s.stmts.storedIDs),
	}, nil
}

// apply appends events to stream inside the transaction: a retry of a stored batch answers
// where it is; otherwise, once the expected revision holds against the stream's head, each
// event is hashed onto the chain and inserted. Every refusal comes before the first insert.
func (w *writeTx) apply(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	var (
		none     eventstore.AppendResult
		firstAt  sql.NullInt64
		last     int64
		prevHash []byte
		exists   = true
	)
	// One statement finds both the stream's head and whether the batch was appended before.
	err := w.headAndID.QueryRowContext(ctx, stream, events[0].ID[:]).Scan(&firstAt, &last, &prevHash)
	if errors.Is(err, sql.ErrNoRows) {
		exists, err = false, nil
	}
	if err != nil {
		return none, fmt.Errorf("eventstore/sqlite: read head of %q: %w", stream, err)
	}
	if firstAt.Valid {
		return w.retried(ctx, stream, firstAt.Int64, events)
	}
	if exists && len(events) > 1 {
		if err := w.noneStored(ctx, stream, events[1:]); err != nil {
			return none, err
		}
	}
	if err := expected.Check(stream, uint64(last), exists); err != nil {
		return none, err
	}
	var prev eventstore.Hash
	next := uint64(0)
	if exists {
		copy(prev[:], prevHash)
		next = uint64(last) + 1
	}

	now := eventstore.NormalizeTime(time.Now())
	var position int64
	for i, e := range events {
		recorded := now
		if !e.RecordedAt.IsZero() {
			recorded = eventstore.NormalizeTime(e.RecordedAt)
		}
		version := next + uint64(i)
		hash := eventstore.ComputeHash(prev, stream, version, e.ID, e.Type, recorded, e.Metadata, e.Data)
		res, err := w.insert.ExecContext(ctx, stream, int64(version), e.ID[:], e.Type, e.Data,
			eventstore.EncodeMetadata(e.Metadata), recorded.UnixMicro(), hash[:])
		if err == nil {
			position, err = res.LastInsertId()
		}
		if err != nil {
			return none, fmt.Errorf("eventstore/sqlite: insert %q version %d: %w", stream, version, err)
		}
		prev = hash
	}
	p := uint64(position)
	return eventstore.AppendResult{Version: next + uint64(len(events)) - 1, Position: eventstore.Position{Commit: p, Prepare: p}}, nil
}

// noneStored refuses a batch whose first event is new but another is already in stream, in one
// statement: the IDs go in as a JSON array of hex strings.
func (w *writeTx) noneStored(ctx context.Context, stream string, events []eventstore.EventData) error {
	list := make([]byte, 0, len(events)*35+1)
	list = append(list, '[')
	for i, e := range events {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, '"')
		list = hex.AppendEncode(list, e.ID[:])
		list = append(list, '"')
	}
	list = append(list, ']')
	var (
		id      []byte
		version int64
	)
	err := w.findIDs.QueryRowContext(ctx, stream, string(list)).Scan(&id, &version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("eventstore/sqlite: look up the batch's event IDs in %q: %w", stream, err)
	}
	return fmt.Errorf("%w: event %s is already in %q at version %d, but the batch's first event is not", eventstore.ErrDuplicateEventID, uuid.UUID(id), stream, version)
}

// retried answers a batch whose first event is stored at version from: if the whole batch is
// stored there in order it is a retry and gets the original result, otherwise it repeats only
// part of what is stored and is refused.
func (w *writeTx) retried(ctx context.Context, stream string, from int64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	var none eventstore.AppendResult
	rows, err := w.storedIDs.QueryContext(ctx, stream, from, len(events))
	if err != nil {
		return none, fmt.Errorf("eventstore/sqlite: read %q for a retried append: %w", stream, err)
	}
	defer rows.Close()
	var (
		n                 int
		version, position int64
		id                []byte
	)
	for rows.Next() {
		if err := rows.Scan(&id, &version, &position); err != nil {
			return none, fmt.Errorf("eventstore/sqlite: read %q for a retried append: %w", stream, err)
		}
		if uuid.UUID(id) != events[n].ID {
			return none, fmt.Errorf("%w: event %s is already in %q at version %d, followed by other events than the batch's", eventstore.ErrDuplicateEventID, events[0].ID, stream, from)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return none, fmt.Errorf("eventstore/sqlite: read %q for a retried append: %w", stream, err)
	}
	if n != len(events) {
		return none, fmt.Errorf("%w: the first %d of %d events are already in %q from version %d", eventstore.ErrDuplicateEventID, n, len(events), stream, from)
	}
	p := uint64(position)
	return eventstore.AppendResult{Version: uint64(version), Position: eventstore.Position{Commit: p, Prepare: p}, Retried: true}, nil
}
