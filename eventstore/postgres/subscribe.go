package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderledger/orderledger/eventstore"
)

// notifyChannel is the LISTEN/NOTIFY channel every Store on a database shares.
const notifyChannel = "orderledger_events"

// subscribeBatch is how many events a subscription reads and hands over at once;
// subscribeExpect how many it makes room for when the last read was not a full batch.
const (
	subscribeBatch  = 512
	subscribeExpect = 16
)

// Backoff of a subscriber whose next events wait behind a transaction still open. That
// transaction may not be an append and will not notify, so the subscriber polls, soon at
// first and less often while it stays open.
const (
	blockedRetryMin = time.Millisecond
	blockedRetryMax = 50 * time.Millisecond
)

// Backoff of the listener reconnecting after its connection dropped.
const (
	listenRetryMin = 10 * time.Millisecond
	listenRetryMax = time.Second
)

// wakeHub wakes the subscriptions of one Store. Each has a channel of capacity one, so a wake-up
// that arrives while it is busy is kept and wake-ups in between coalesce.
type wakeHub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (h *wakeHub) init() { h.subs = make(map[chan struct{}]struct{}) }

func (h *wakeHub) add() chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *wakeHub) remove(ch chan struct{}) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

func (h *wakeHub) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// appended runs after an append has committed: it wakes this process's subscriptions at once
// and asks the notifier to tell other processes.
func (s *Store) appended() {
	s.subscribers.wake()
	select {
	case s.notifyNeeded <- struct{}{}:
	default:
	}
}

// notifyLoop sends NOTIFY outside the appends' transactions: a transaction that has issued
// NOTIFY takes a cluster-wide lock at commit, which would serialise every append. Requests
// that arrive while one is sent, or within notifyInterval after, coalesce into one.
func (s *Store) notifyLoop() {
	defer s.wg.Done()
	pause := time.NewTimer(0)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.notifyNeeded:
		}
		// A lost notification costs other processes one safety poll, so a failure is not
		// worth more than moving on.
		_, _ = s.pool.Exec(s.ctx, "SELECT pg_notify($1, '')", notifyChannel)
		pause.Reset(s.opts.notifyInterval)
		select {
		case <-s.ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// startListener starts, once per Store, the goroutine that turns notifications from other
// processes into wake-ups.
func (s *Store) startListener() {
	s.listenOnce.Do(func() {
		s.wg.Add(1)
		go s.listenLoop()
	})
}

// listenLoop keeps a dedicated connection listening, reconnecting when it drops. After every
// (re)connection it wakes the subscriptions, since notifications sent while it was not
// listening are lost.
func (s *Store) listenLoop() {
	defer s.wg.Done()
	retry := listenRetryMin
	for s.ctx.Err() == nil {
		if s.listen() {
			retry = listenRetryMin
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, listenRetryMax)
	}
}

// listen listens until the connection fails or the store closes, and reports whether it got
// as far as listening.
func (s *Store) listen() bool {
	conn, err := pgx.ConnectConfig(s.ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(s.ctx))
	if _, err := conn.Exec(s.ctx, "LISTEN "+notifyChannel); err != nil {
		return false
	}
	for {
		s.subscribers.wake()
		if _, err := conn.WaitForNotification(s.ctx); err != nil {
			return true
		}
	}
}

// errClosed is returned by subscriptions of a Store that was closed under them.
var errClosed = errors.New("eventstore/postgres: store closed")

// Subscribe delivers every event after from to handle, in global order and each once: it reads
// as long as there is something to read, then waits for an append in this process, a
// notification from another, the safety poll or, when a transaction still open holds back
// committed events, a short retry.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	s.startListener()
	// Registered before the first read, so an append that commits after any read wakes us.
	woken := s.subscribers.add()
	defer s.subscribers.remove(woken)

	timer := time.NewTimer(s.opts.safetyPoll)
	defer timer.Stop()
	var blockedRetry time.Duration
	// A subscriber that has caught up reads a few events at a time, or none; one catching up
	// reads full batches.
	expect := subscribeExpect
	for {
		batch, err := s.readAll(ctx, from, subscribeBatch, expect)
		if err != nil {
			return s.subscribeErr(ctx, err)
		}
		expect = subscribeExpect
		if len(batch) == subscribeBatch {
			expect = subscribeBatch
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			from = batch[len(batch)-1].Position
			blockedRetry = 0
			continue
		}
		blocked, err := s.heldBack(ctx, from)
		if err != nil {
			return s.subscribeErr(ctx, err)
		}
		wait := s.opts.safetyPoll
		if blocked {
			blockedRetry = min(max(2*blockedRetry, blockedRetryMin), blockedRetryMax)
			wait = min(blockedRetry, wait)
		} else {
			blockedRetry = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return errClosed
		case <-woken:
		case <-timer.C:
		}
	}
}

func (s *Store) subscribeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if s.ctx.Err() != nil {
		return errClosed
	}
	return fmt.Errorf("eventstore/postgres: subscribe: %w", err)
}

// heldBackSQL finds a committed event after the position that ReadAll does not return yet
// because an older transaction is still running. It asks for the first such event in key
// order rather than whether one exists: a generic plan for EXISTS, which takes a third of the
// table to match, scans the table from its start for the first match, while every match is
// at its end; ordered as the primary key, the lookup is one probe of it.
const heldBackSQL = `SELECT true FROM events WHERE (xid, position) > ($1, $2) ORDER BY xid, position LIMIT 1`

func (s *Store) heldBack(ctx context.Context, from eventstore.Position) (bool, error) {
	var held bool
	err := s.pool.QueryRow(ctx, heldBackSQL, from.Commit, clampPosition(from.Prepare)).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrapErr("subscribe", err)
	}
	return held, nil
}
