package historygen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// SyntheticOptions shape a synthetic log (see Synthetic).
type SyntheticOptions struct {
	// Events is how many events to append in all.
	Events int
	// Streams is how many order streams the events are spread over, round-robin by append.
	Streams int
	// Batch is how many events one append carries, all to one stream.
	Batch int
	// Writers is how many appends run at once.
	Writers int
	// Progress, when set, is called after appends with the number of events appended so far,
	// from the writers' goroutines, one call at a time.
	Progress func(appended uint64)
}

// SyntheticDefaults: a million events over a hundred thousand streams, ten per append, so that a
// verification keeps many stream heads and the log interleaves streams.
var SyntheticDefaults = SyntheticOptions{Events: 1_000_000, Streams: 100_000, Batch: 10, Writers: 8}

// syntheticTypes are the types the generator cycles through along a stream's versions.
var syntheticTypes = []string{
	"OrderPlaced.v1", "StockReserved.v1", "PaymentRecorded.v1", "InvoiceNumberAssigned.v1", "OrderShipped.v1",
	"OrderDelivered.v1",
}

// Synthetic appends opts.Events events of a synthetic order log to store — events of the
// right size and shape, not a history the write side could have written; for measuring what
// reads the whole log (audit verify, export) on millions of events — and returns how many it appended. Stream i is
// "order-gen-<i>"; append k goes to stream k mod Streams with expected revision Any, so the log
// interleaves the streams and the writers never conflict. Each event carries about 300 bytes
// of order JSON and metadata with a correlation id and an actor, and the store's own clock.
func Synthetic(ctx context.Context, store eventstore.Store, opts SyntheticOptions) (uint64, error) {
	if opts.Events <= 0 || opts.Streams <= 0 || opts.Batch <= 0 || opts.Writers <= 0 {
		return 0, fmt.Errorf("historygen: synthetic: events, streams, batch and writers must be positive: %+v", opts)
	}
	appends := (opts.Events + opts.Batch - 1) / opts.Batch
	var (
		next       atomic.Int64 // the next append to take
		appended   atomic.Uint64
		progressMu sync.Mutex
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for range opts.Writers {
		wg.Go(func() {
			batch := make([]eventstore.EventData, 0, opts.Batch)
			for {
				k := int(next.Add(1) - 1)
				if k >= appends || ctx.Err() != nil {
					return
				}
				stream := k % opts.Streams
				round := k / opts.Streams
				n := min(opts.Batch, opts.Events-k*opts.Batch)
				batch = batch[:0]
				for j := range n {
					batch = append(batch, syntheticEvent(stream, round*opts.Batch+j))
				}
				if _, err := store.Append(ctx, "order-gen-"+strconv.Itoa(stream), eventstore.Any(), batch...); err != nil {
					cancel(fmt.Errorf("historygen: synthetic: append %d: %w", k, err))
					return
				}
				done := appended.Add(uint64(n))
				if opts.Progress != nil {
					progressMu.Lock()
					opts.Progress(done)
					progressMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return appended.Load(), err
	}
	return appended.Load(), ctx.Err()
}

// syntheticEvent is the n-th event of stream: an order document with two lines and an address, so the
// data and its size look like what the write API stores.
func syntheticEvent(stream, n int) eventstore.EventData {
	order := strconv.Itoa(stream)
	data := make([]byte, 0, 320)
	data = append(data, `{"order_id":"ord-`...)
	data = append(data, order...)
	data = append(data, `","customer_id":"cust-`...)
	data = strconv.AppendInt(data, int64(stream%9973), 10)
	data = append(data, `","seq":`...)
	data = strconv.AppendInt(data, int64(n), 10)
	data = append(data, `,"currency":"EUR","lines":[{"sku":"SKU-`...)
	data = strconv.AppendInt(data, int64(stream%503), 10)
	data = append(data, `","quantity":2,"unit_price":{"amount":"19.99","currency":"EUR"}},{"sku":"SKU-`...)
	data = strconv.AppendInt(data, int64((stream+n)%997), 10)
	data = append(data, `","quantity":1,"unit_price":{"amount":"5.49","currency":"EUR"}}],`...)
	data = append(data, `"shipping_address":{"street":"12 Rue de la Paix","city":"Paris","postal_code":"75002","country":"FR"}}`...)
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: syntheticTypes[n%len(syntheticTypes)],
		Data: data,
		Metadata: eventstore.Metadata{
			CorrelationID: "corr-ord-" + order,
			Actor:         "historygen",
		},
	}
}
