package kurrentdb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderledger/orderledger/eventstore"
)

// maxBatch bounds the events handed to a Subscribe handler at once.
const maxBatch = 500

// Backoff between resubscriptions: doubling from minBackoff up to maxBackoff, and back to
// minBackoff once events flow again.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Subscribe follows $all with a catch-up subscription from after from. When the subscription
// drops it resubscribes from the last event delivered, after a backoff; when the client has
// closed itself it builds a new one first. Events at or before the last one delivered are
// never delivered again, whatever the server resends.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	last := from
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		g, sub, err := s.subscribe(ctx, last)
		if err == nil {
			var handlerErr error
			err, handlerErr = s.follow(ctx, sub, &last, &failures, handle)
			if handlerErr != nil {
				return handlerErr
			}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, errClosed) || s.isClosed() {
			return errClosed
		}
		action, delay := afterDrop(err, failures)
		failures++
		switch action {
		case giveUp:
			return mapError(err, s.addr)
		case rebuildClient:
			s.replace(g)
		}
		s.log.Warn("kurrentdb: subscription to $all dropped; resubscribing",
			"addr", s.addr, "after", last.String(), "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// subscribe starts a subscription to $all after last. A subscription that starts only after
// do gave up waiting is closed, not leaked.
func (s *Store) subscribe(ctx context.Context, last eventstore.Position) (*generation, *esdb.Subscription, error) {
	var (
		mu        sync.Mutex
		sub       *esdb.Subscription
		abandoned bool
	)
	opts := esdb.SubscribeToAllOptions{From: toClientPosition(last), Filter: s.subscriptionFilter()}
	g, err := s.do(ctx, func(c *esdb.Client, connected func()) error {
		started, err := c.SubscribeToAll(ctx, opts)
		if err != nil {
			return err
		}
		connected()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			started.Close()
			return nil
		}
		sub = started
		return nil
	})
	if err != nil {
		mu.Lock()
		abandoned = true
		late := sub
		mu.Unlock()
		if late != nil {
			late.Close()
		}
		return g, nil, err
	}
	return g, sub, nil
}

// subscriptionFilter has the server skip what ReadAll skips, so that catching up does not
// ship every system event; follow filters again because a type filter alone lets through
// events of system streams whose types do not start with "$".
func (s *Store) subscriptionFilter() *esdb.SubscriptionFilter {
	if s.prefix != "" {
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.prefix}}
	}
	return esdb.ExcludeSystemEventsFilter()
}

// follow hands the subscription's events to handle in batches of what has arrived, until the
// subscription drops (dropped) or handle fails (handlerErr) or ctx is done (neither).
func (s *Store) follow(ctx context.Context, sub *esdb.Subscription, last *eventstore.Position, failures *int, handle func(context.Context, []eventstore.Event) error) (dropped, handlerErr error) {
	// The pump reads ahead, up to a batch, while the handler runs.
	arrived := make(chan *esdb.SubscriptionEvent, maxBatch)
	stop := make(chan struct{})
	var pump sync.WaitGroup
	pump.Go(func() {
		for {
			ev := sub.Recv()
			select {
			case arrived <- ev:
			case <-stop:
				return
			}
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	})
	defer func() {
		close(stop)
		sub.Close() // ends a Recv in progress
		pump.Wait()
	}()

	for {
		var ev *esdb.SubscriptionEvent
		select {
		case <-ctx.Done():
			return nil, nil
		case ev = <-arrived:
		}
		batch, dropped := s.collect(nil, ev, *last)
	drain:
		for dropped == nil && len(batch) < maxBatch {
			select {
			case ev = <-arrived:
				batch, dropped = s.collect(batch, ev, *last)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return nil, err
			}
			*last = batch[len(batch)-1].Position
			*failures = 0
		}
		if dropped != nil {
			return dropped, nil
		}
	}
}

// collect adds ev to batch if it is one of the store's events after last and after the
// batch's own, or returns why the subscription dropped.
func (s *Store) collect(batch []eventstore.Event, ev *esdb.SubscriptionEvent, last eventstore.Position) ([]eventstore.Event, error) {
	if d := ev.SubscriptionDropped; d != nil {
		if d.Error == nil {
			return batch, errors.New("kurrentdb: subscription dropped without a reason")
		}
		return batch, d.Error
	}
	if ev.EventAppeared == nil {
		return batch, nil // checkpoints, caught up, fell behind: nothing to deliver
	}
	r := ev.EventAppeared.OriginalEvent()
	if !inStore(r, s.prefix) {
		return batch, nil
	}
	if len(batch) > 0 {
		last = batch[len(batch)-1].Position
	}
	e := toEvent(r, s.prefix)
	if e.Position.Compare(last) <= 0 {
		return batch, nil
	}
	return append(batch, e), nil
}

// dropAction is what Subscribe does after a subscription failed to start or dropped.
type dropAction int

const (
	resubscribe   dropAction = iota // on the same client, from the last event delivered
	rebuildClient                   // the client closed itself (or seems to): build a new one, then resubscribe
	giveUp                          // retrying cannot help: return the error
)

// afterDrop decides what follows the failures-th failure in a row (counting from 0) with err,
// and how long to wait first.
func afterDrop(err error, failures int) (dropAction, time.Duration) {
	delay := min(minBackoff<<min(failures, 16), maxBackoff)
	if errors.Is(err, errStuck) {
		return rebuildClient, delay
	}
	var esdbErr *esdb.Error
	if errors.As(err, &esdbErr) {
		switch esdbErr.Code() {
		case esdb.ErrorCodeConnectionClosed:
			return rebuildClient, delay
		case esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeAccessDenied:
			return giveUp, 0
		}
		return resubscribe, delay
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return giveUp, 0
	}
	return resubscribe, delay
}
