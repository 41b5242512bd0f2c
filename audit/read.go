package audit

import (
	"context"
	"errors"
	"sync"

	"github.com/orderledger/orderledger/eventstore"
)

// errStop is what a visit function returns to end readAll early without an error.
var errStop = errors.New("audit: stop reading")

// readAll calls visit with the events after from and at or before upTo, in global order, in
// batches of up to limit. The next batch is read while visit works on the current one, so the
// store's latency and the caller's hashing or writing overlap. upTo bounds the read because a
// log that is still being written to has no end of its own.
func readAll(ctx context.Context, store eventstore.Store, from, upTo eventstore.Position, limit int, visit func([]eventstore.Event) error) error {
	if from.Compare(upTo) >= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type batch struct {
		events []eventstore.Event
		err    error
	}
	batches := make(chan batch, 1)
	var reader sync.WaitGroup
	// The reader must have stopped before readAll returns: the caller may close the store.
	defer reader.Wait()
	defer cancel()
	reader.Go(func() {
		defer close(batches)
		for {
			events, err := store.ReadAll(ctx, from, limit)
			last := len(events) == 0
			for i := range events {
				if events[i].Position.Compare(upTo) > 0 {
					events, last = events[:i], true
					break
				}
			}
			if err != nil || len(events) == 0 {
				if err != nil {
					select {
					case batches <- batch{err: err}:
					case <-ctx.Done():
					}
				}
				return
			}
			select {
			case batches <- batch{events: events}:
			case <-ctx.Done():
				return
			}
			if last || events[len(events)-1].Position.Compare(upTo) == 0 {
				return
			}
			from = events[len(events)-1].Position
		}
	})
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if err := visit(b.events); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return ctx.Err()
}
