package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/kurrentdb"
	"github.com/orderledger/orderledger/internal/stores"
)

// batchSize is append_batch100's events per append.
const batchSize = 100

// batchStreams is how many streams append_batch100 takes turns at, so that its appends are
// not all at the tail of one ever-growing stream.
const batchStreams = 16

// appendStage measures append_single and append_batch100 on a store of their own, beside raw
// INSERTs into a table of the same shape in the same database.
func (r *run) appendStage(ctx context.Context, st Stores) error {
	writers := r.cfg.Clients
	// Every writer gets a connection, and the store's notifier one more, as it would in a
	// deployment sized for that many writers; the baseline has as many.
	if kind, _ := stores.KindOf(st.EventsDSN); kind == stores.Postgres {
		dsn, err := withPoolSize(st.EventsDSN, writers+2)
		if err != nil {
			return err
		}
		st.EventsDSN = dsn
	}
	store, err := r.openPrivate(ctx, st)
	if err != nil {
		return fmt.Errorf("bench: open the scratch event store: %w", err)
	}
	defer store.Close()
	base, err := openRaw(ctx, st, writers+2)
	if err != nil {
		return fmt.Errorf("bench: open the baseline's connections: %w", err)
	}
	if base != nil {
		defer base.close()
		if err := base.createTable(ctx); err != nil {
			return fmt.Errorf("bench: create the baseline's table: %w", err)
		}
	}
	turnLength := r.cfg.Duration / (2 * turns)

	if r.selected[AppendSingle] {
		r.logf("measuring %s: %d writers appending one event at a time, beside one-row INSERT transactions (%s)", AppendSingle, writers, r.cfg.Duration)
		// Writer w appends to a stream of its own with the exact expected revision, as a
		// command handler does; the baseline's writer w inserts the next version of its own.
		subject := crew(writers, turnLength, func(ctx context.Context, w int, n int64) error {
			expected := eventstore.NoStream()
			if n > 0 {
				expected = eventstore.Exact(uint64(n - 1))
			}
			_, err := store.Append(ctx, "order-single"+strconv.Itoa(w), expected, orderEvent(w, n))
			return err
		})
		value, baseline, err := r.withBaseline(ctx, subject, base, func(raw raw) turn {
			return crew(writers, turnLength, func(ctx context.Context, w int, n int64) error {
				return raw.insertOne(ctx, "order-single"+strconv.Itoa(w), n, orderEvent(w, n))
			})
		})
		if err != nil {
			return fmt.Errorf("bench: %s: %w", AppendSingle, err)
		}
		if err := r.add(AppendSingle, value, "events/s", baseline); err != nil {
			return err
		}
	}

	if r.selected[AppendBatch100] {
		r.logf("measuring %s: one writer appending %d events at a time, beside %d-row INSERT transactions (%s)", AppendBatch100, batchSize, batchSize, r.cfg.Duration)
		batch := func(n int64) []eventstore.EventData {
			events := make([]eventstore.EventData, batchSize)
			for i := range events {
				events[i] = orderEvent(int(n), int64(i))
			}
			return events
		}
		stream := func(n int64) string { return "order-batch" + strconv.FormatInt(n%batchStreams, 10) }
		subject := crew(1, turnLength, func(ctx context.Context, _ int, n int64) error {
			expected := eventstore.NoStream()
			if round := n / batchStreams; round > 0 {
				expected = eventstore.Exact(uint64(round*batchSize - 1))
			}
			_, err := store.Append(ctx, stream(n), expected, batch(n)...)
			return err
		})
		value, baseline, err := r.withBaseline(ctx, subject, base, func(raw raw) turn {
			return crew(1, turnLength, func(ctx context.Context, _ int, n int64) error {
				return raw.insertBatch(ctx, stream(n), n/batchStreams*batchSize, batch(n))
			})
		})
		if err != nil {
			return fmt.Errorf("bench: %s: %w", AppendBatch100, err)
		}
		if err := r.add(AppendBatch100, value*batchSize, "events/s", baseline*batchSize); err != nil {
			return err
		}
	}
	return nil
}

// withBaseline measures subject beside the baseline turn makes of base, or alone when there
// is no base (KurrentDB); the baseline rate is then 0.
func (r *run) withBaseline(ctx context.Context, subject turn, base raw, baseline func(raw) turn) (float64, float64, error) {
	if base == nil {
		value, err := only(ctx, r.cfg.Duration, subject)
		return value, 0, err
	}
	return alternate(ctx, r.cfg.Duration, subject, baseline(base))
}

// openEvents opens a stage's event store; a KurrentDB one keeps to the stage's prefix.
func openEvents(ctx context.Context, st Stores) (eventstore.Store, error) {
	if st.StreamPrefix != "" {
		s, err := kurrentdb.Open(ctx, st.EventsDSN, kurrentdb.WithStreamPrefix(st.StreamPrefix))
		if err != nil {
			return nil, err // not a nil *kurrentdb.Store inside a non-nil interface
		}
		return s, nil
	}
	return stores.OpenEvents(ctx, st.EventsDSN)
}

// openPrivate opens a stage's event store wrapped as a server wraps it (Config.PrivateEvents).
func (r *run) openPrivate(ctx context.Context, st Stores) (eventstore.Store, error) {
	store, err := openEvents(ctx, st)
	if err != nil || r.cfg.PrivateEvents == nil {
		return store, err
	}
	return r.cfg.PrivateEvents(ctx, st, store)
}

// orderEvent is an order-sized event, about what POST /v1/orders appends, with the metadata a
// command carries.
func orderEvent(writer int, n int64) eventstore.EventData {
	id := strconv.Itoa(writer) + "-" + strconv.FormatInt(n, 10)
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: "OrderPlaced.v1",
		Data: []byte(`{"order_id":"bench-` + id + `","customer_id":"bench-c17","channel":"web","currency":"EUR",` +
			`"lines":[{"sku":"BENCH-1","quantity":2,"unit_price":1999},{"sku":"BENCH-2","quantity":1,"unit_price":450}],` +
			`"tax_rate_bps":2000,"subtotal":4448,"tax":890,"total":5338,"payment_method":"card",` +
			`"shipping_address":"12 Rue de la Paix, 75002 Paris","placed_at":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`),
		Metadata: eventstore.Metadata{CorrelationID: uuid.NewString(), Actor: "bench"},
	}
}
