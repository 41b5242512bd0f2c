package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/internal/handoff"
)

// Group commit. On a server that is short of CPU, most of what a single-event append costs is
// the transaction around it (the round trip, parsing and binding, the commit and its WAL
// flush), so an append that shares its transaction with others costs much less. An append to
// an idle store is applied by its caller (appendNow); while anything is in flight, appends
// queue for the lanes' committers, which share one queue: a free committer takes whatever is
// queued (waiting for more, within bounds, while another group is in flight; see gatherGroup)
// and applies it with one call of orderledger_append_group, or, for a lone append, of the
// append function that would have run without group commit.
//
// The queue is shared rather than split by stream: split, the lanes get uneven shares of the
// streams, and each one's groups are smaller; measured on two cores with 32 writers, that cost
// a quarter of the throughput. Two groups in flight that hold appends to one stream wait for
// each other on its lock, and cannot deadlock, since every group takes its locks in one order.
// Appends to one stream are applied in the order they were queued within a group, and in the
// order their groups took the lock across groups; an append queued after another returned is
// in a later group.

// defaultAppendLanes: with two, one group can be built, sent and answered while the other
// runs; more made no difference on two cores.
const defaultAppendLanes = 2

// A group waits for the one in flight unless it reaches minOverlapGroup appends or has waited
// maxOverlapWait (see gatherGroup). Measured on two cores with 32 writers, groups started at 4
// or 8 appends beside one in flight gave 5 to 10% less throughput than at 16, and not waiting
// at all gave 20% less.
const (
	minOverlapGroup = 16
	maxOverlapWait  = 20 * time.Millisecond
)

// appendQueue is how many appends wait for a committer before Append waits for room.
const appendQueue = 1024

// Bounds of one group, so that one transaction stays short and one message stays small; a
// group always takes at least one append, however large.
const (
	maxGroupAppends = 256
	maxGroupBytes   = 8 << 20
)

const appendGroupSQL = `SELECT outcome, last_version, last_xid, last_position
FROM orderledger_append_group($1, $2, $3, $4, $5, $6, $7, $8)`

// appendRequest is one Append waiting for a committer.
type appendRequest struct {
	*handoff.Ticket
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
}

// size is what the request adds to a group's message.
func (r *appendRequest) size() int {
	n := len(r.stream)
	for _, e := range r.events {
		n += len(e.Data) + len(e.Type) + 64 // the ID, the time and the metadata, roughly
	}
	return n
}

// Append applies the append itself when the store is idle (see appendNow), and otherwise
// queues it for the committers and waits for one to apply it. An error that matches
// context.Canceled or context.DeadlineExceeded means nothing was appended: once the append is
// on its way to the server, Append waits for the real outcome.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	var none eventstore.AppendResult
	if err := ctx.Err(); err != nil {
		return none, err
	}
	if s.ctx.Err() != nil {
		return none, errClosed
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return none, err
	}
	if s.lastAlone.Load() && len(s.appends) == 0 && s.inFlight.CompareAndSwap(0, 1) {
		return s.appendNow(ctx, stream, expected, events)
	}
	r := &appendRequest{Ticket: handoff.NewTicket(), stream: stream, expected: expected, events: events}
	select {
	case s.appends <- r:
	case <-ctx.Done():
		return none, ctx.Err()
	case <-s.ctx.Done():
		return none, errClosed
	}
	return r.Await(ctx, s.ctx.Done(), errClosed)
}

// appendNow applies an append in its caller's goroutine (the caller has counted it in flight)
// when the store is idle and the last append ran alone, as a lone writer's do: a committer
// would only apply it alone too, after two goroutine hand-offs that cost a lone writer's
// batches of 100 events 2% of their rate. After a group, appends queue even when nothing is in
// flight, since the group's writers are about to come back: one applied at once would make a
// group of its own. Like a committer's, the append runs to its end whatever becomes of ctx, so
// its caller gets the real outcome.
func (s *Store) appendNow(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	res, appended, err := appendAlone(context.WithoutCancel(ctx), s.pool, stream, expected, events)
	if appended {
		s.appended()
	}
	s.groupEnded(1)
	return res, err
}

// groupEnded counts a group of size appends (one applied by its caller is a group of one) out
// of flight and wakes a committer waiting for the groups in flight.
func (s *Store) groupEnded(size int) {
	s.lastAlone.Store(size <= 1)
	s.inFlight.Add(-1)
	select {
	case s.groupDone <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// commitLoop is a lane's committer. It stops when the Store closes, after the group it is
// applying, whose callers may no longer withdraw.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	// A group sent to the server runs to its end even if Close is called meanwhile: cut off,
	// its callers could not learn whether it committed.
	ctx := context.WithoutCancel(s.ctx)
	var (
		group []*appendRequest
		next  *appendRequest // taken off the queue, but left for the next group by its bounds
	)
	overlap := time.NewTimer(0)
	for {
		if next == nil {
			select {
			case <-s.ctx.Done():
				return
			case next = <-s.appends:
			}
		}
		group, next = s.gatherGroup(group[:0], next, overlap)
		s.inFlight.Add(1)
		s.commitGroup(ctx, group)
		s.groupEnded(len(group))
		clear(group) // let the answered requests go
	}
}

// gatherGroup starts a group with first and adds what is queued, up to the group's bounds. It
// returns the group and the request that did not fit, if any.
//
// While another group is in flight, it keeps gathering until that group is done, its
// own has minOverlapGroup appends, or maxOverlapWait has passed: a small group started beside
// one in flight would take the first few appends answered by the previous group, leaving the
// next group small in turn, and small groups cost more per append. The wait is bounded so that
// a group stuck behind a stream lock held elsewhere does not hold up every other append.
func (s *Store) gatherGroup(group []*appendRequest, first *appendRequest, overlap *time.Timer) ([]*appendRequest, *appendRequest) {
	group = append(group, first)
	size := first.size()
	overlap.Reset(maxOverlapWait)
	defer overlap.Stop()
	waited := false
	for len(group) < maxGroupAppends {
		var r *appendRequest
		if !waited && len(group) < minOverlapGroup && s.inFlight.Load() > 0 {
			select {
			case r = <-s.appends:
			case <-s.groupDone:
				continue // re-check: another group may still be in flight
			case <-overlap.C:
				waited = true
				continue
			case <-s.ctx.Done():
				return group, nil
			}
		} else {
			select {
			case r = <-s.appends:
			default:
				return group, nil
			}
		}
		if size += r.size(); size > maxGroupBytes {
			return group, r
		}
		group = append(group, r)
	}
	return group, nil
}

// commitGroup applies the requests of group that are still wanted and answers each. A group
// that fails as a whole (an error no append's refusal explains, such as a unique violation
// that the stream locks should have prevented, or a lost connection) is applied again one
// append at a time, so that each caller gets the answer its own append deserves; an append of
// the failed group that did commit after all is then found as a retry.
func (s *Store) commitGroup(ctx context.Context, group []*appendRequest) {
	wanted := group[:0:0]
	for _, r := range group {
		if r.Take() {
			wanted = append(wanted, r)
		}
	}
	if len(wanted) > 1 {
		outcomes := make([]handoff.Outcome, len(wanted))
		appended, err := s.appendGroup(ctx, wanted, outcomes)
		if err == nil {
			if appended {
				s.appended()
			}
			for i, r := range wanted {
				r.Answer(outcomes[i])
			}
			return
		}
	}
	// Alone, each append is answered as soon as it is done: one waiting for a stream lock
	// holds up none of the others' answers.
	for _, r := range wanted {
		res, appended, err := appendAlone(ctx, s.pool, r.stream, r.expected, r.events)
		if appended {
			s.appended()
		}
		r.Answer(handoff.Outcome{Result: res, Err: err})
	}
}

// appendGroup applies the requests in one call of orderledger_append_group and fills in each
// one's outcome, reporting whether any appended. An error fails the group as a whole: it did
// not commit, unless the error came after the commit (a connection lost, an answer that cannot
// be read), and then applying its appends again finds each one that did as a retry.
func (s *Store) appendGroup(ctx context.Context, group []*appendRequest, outcomes []handoff.Outcome) (bool, error) {
	var (
		clock    recordClock
		streams  = make([]string, len(group))
		expected = make([]int64, len(group))
		offsets  = make([]int32, len(group))
		events   int
	)
	for _, r := range group {
		events += len(r.events)
	}
	ids := make([][16]byte, 0, events)
	types := make([]string, 0, events)
	data := make([][]byte, 0, events)
	metadata := make([][]byte, 0, events)
	times := make([]time.Time, 0, events)
	for i, r := range group {
		streams[i] = r.stream
		expected[i] = encodeExpected(r.expected)
		offsets[i] = int32(len(ids) + 1) // PostgreSQL arrays start at 1
		for _, e := range r.events {
			ids = append(ids, e.ID)
			types = append(types, e.Type)
			data = append(data, e.Data)
			metadata = append(metadata, eventstore.EncodeMetadata(e.Metadata))
			times = append(times, clock.stamp(e))
		}
	}

	type answer struct {
		outcome  int
		version  int64
		xid      *uint64
		position *int64
	}
	rows, err := s.pool.Query(ctx, appendGroupSQL, streams, expected, offsets, ids, types, data, metadata, times)
	if err != nil {
		return false, err
	}
	answers := make([]answer, 0, len(group))
	for rows.Next() {
		var a answer
		if err := rows.Scan(&a.outcome, &a.version, &a.xid, &a.position); err != nil {
			rows.Close()
			return false, err
		}
		answers = append(answers, a)
	}
	// rows.Err comes after the commit: no answer is final before it.
	if err := rows.Err(); err != nil {
		return false, err
	}
	if len(answers) != len(group) {
		return false, fmt.Errorf("eventstore/postgres: append group: %d rows for %d appends", len(answers), len(group))
	}
	appendedAny := false
	for i, a := range answers {
		r := group[i]
		res, appended, err := appendResult(r.stream, r.expected, a.outcome, a.version, a.xid, a.position)
		outcomes[i] = handoff.Outcome{Result: res, Err: err}
		appendedAny = appendedAny || appended
	}
	return appendedAny, nil
}
