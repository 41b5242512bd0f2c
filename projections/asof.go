package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Time travel (?as_of=): a document as it was at an instant, folded from the streams that feed
// it rather than read from a read model. An order's document is fed by its stream alone
// (payments, refunds and credit notes are recorded there), a stock level by its SKU's stream
// alone (what purchase orders bring is recorded there when they are requested and received).
//
// A stream is folded up to and including its last event recorded at or before the instant.
// Within a stream recorded_at usually grows with the version, but it need not: it is the clock
// of whichever process appended, and two processes' clocks may disagree a little. Each event
// was decided on the state its predecessors made, so an event recorded at or before the
// instant shows that they had all happened by then, whatever their own clocks said; folding
// only the events recorded by then, skipping an earlier one stamped later, would give a state
// the stream never had. A stream's prefix is therefore what is folded, and the instant picks
// where it ends.

// asOfPage is how many events one read of a stream takes.
const asOfPage = 1000

// OrderAsOf returns an order's document as it was at `at`, folded from its stream, or
// ErrNotFound if it had not been placed by then.
func OrderAsOf(ctx context.Context, events eventstore.Store, id string, at time.Time) (Order, error) {
	o, err := foldAsOf(ctx, events, domain.OrderStream(id), at, domain.EvolveOrder)
	if err != nil {
		return Order{}, err
	}
	if !o.Exists() {
		return Order{}, fmt.Errorf("%w: order %s at %s", ErrNotFound, id, at.UTC().Format(time.RFC3339Nano))
	}
	return OrderFromDomain(o), nil
}

// StockLevelAsOf returns a SKU's stock level as it was at `at`, folded from its stream, or
// ErrNotFound if it had received no stock by then.
func StockLevelAsOf(ctx context.Context, events eventstore.Store, sku string, at time.Time) (StockLevel, error) {
	s, err := foldAsOf(ctx, events, domain.StockStream(sku), at, domain.EvolveStock)
	if err != nil {
		return StockLevel{}, err
	}
	if !s.Exists {
		return StockLevel{}, fmt.Errorf("%w: SKU %s at %s", ErrNotFound, sku, at.UTC().Format(time.RFC3339Nano))
	}
	return StockLevelFromDomain(s), nil
}

// foldAsOf folds the prefix of stream that ends with its last event recorded at or before
// `at`. It reads the whole stream, since a later event may still be stamped earlier, but keeps
// one page in memory: events recorded after `at` are only read again, and folded, when an
// event after them turns out to be recorded before it.
func foldAsOf[S any](ctx context.Context, store eventstore.Store, stream string, at time.Time, evolve func(S, domain.Event) S) (S, error) {
	var (
		state  S
		folded uint64 // the versions below it are folded
	)
	fold := func(events []eventstore.Event, upTo uint64) error {
		for _, e := range events {
			if e.Version < folded || e.Version > upTo {
				continue
			}
			data, err := domain.DecodeEvent(e.Type, e.Data)
			if err != nil {
				return fmt.Errorf("projections: as of: stream %s version %d: %w", stream, e.Version, err)
			}
			state = evolve(state, data)
			folded = e.Version + 1
		}
		return nil
	}
	for from := uint64(0); ; {
		page, err := store.ReadStream(ctx, stream, from, asOfPage)
		if err != nil {
			return state, err
		}
		last := int64(-1)
		for _, e := range page {
			if !e.RecordedAt.After(at) {
				last = int64(e.Version)
			}
		}
		if last >= 0 {
			// Earlier pages may end with events recorded after `at` that this page's event
			// shows had happened by then: read them again.
			for folded < page[0].Version {
				gap, err := store.ReadStream(ctx, stream, folded, int(min(page[0].Version-folded, asOfPage)))
				if err != nil {
					return state, err
				}
				if len(gap) == 0 {
					return state, fmt.Errorf("projections: as of: stream %s has no version %d any more", stream, folded)
				}
				if err := fold(gap, page[0].Version-1); err != nil {
					return state, err
				}
			}
			if err := fold(page, uint64(last)); err != nil {
				return state, err
			}
		}
		if len(page) < asOfPage {
			return state, nil
		}
		from = page[len(page)-1].Version + 1
	}
}
