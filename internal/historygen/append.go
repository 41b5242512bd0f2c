package historygen

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Shape of a log Append writes.
const (
	// Window is how many events Append generates and appends at a time.
	Window = 100_000
	// Batch is how many events of one stream one append carries at most.
	Batch = 100
)

// Sized sizes the business of a generated log of size events: historygen registers every customer
// and stocks every SKU first, and those opening events stay a small share of the log (about
// 6%), so that a short run's log is mostly orders too.
func Sized(size int64) (customers, skus int) {
	return int(min(max(size/25, 10), 2000)), int(min(max(size/100, 5), 300))
}

// Append appends a history of exactly size events made by a Generator of cfg, one the write
// side could have written. The history is cut into windows of Window events; in each,
// customers' streams go first (orders name them), then the others, each stream's events in
// appends of up to Batch with expected revision Any, from writers appends at once, as a busy
// server's would. progress, when set, is called after each window with the events appended.
func Append(ctx context.Context, store eventstore.Store, size int64, cfg Config, writers int, progress func(appended int64)) error {
	g := New(cfg)
	var pending []Record
	var appended int64
	for appended < size {
		for int64(len(pending)) < min(Window, size-appended) {
			pending = append(pending, g.Step()...)
		}
		// A step makes several events; the window ends on an exact count, and what a step
		// made beyond it is dropped: the log need not finish the story to be valid.
		window := pending[:min(int64(len(pending)), size-appended)]
		if err := AppendWindow(ctx, store, window, writers); err != nil {
			return err
		}
		appended += int64(len(window))
		pending = pending[len(window):]
		if progress != nil {
			progress(appended)
		}
	}
	return nil
}

// AppendWindow appends records stream by stream, customers first, the streams of each group
// from writers appends at once.
func AppendWindow(ctx context.Context, store eventstore.Store, records []Record, writers int) error {
	var (
		order    []string
		byStream = map[string][]Record{}
	)
	for _, rec := range records {
		if _, seen := byStream[rec.Stream]; !seen {
			order = append(order, rec.Stream)
		}
		byStream[rec.Stream] = append(byStream[rec.Stream], rec)
	}
	var customers, others []string
	for _, s := range order {
		if strings.HasPrefix(s, domain.CustomerStream("")) {
			customers = append(customers, s)
		} else {
			others = append(others, s)
		}
	}
	for _, group := range [][]string{customers, others} {
		if err := appendStreams(ctx, store, group, byStream, writers); err != nil {
			return err
		}
	}
	return nil
}

func appendStreams(ctx context.Context, store eventstore.Store, streams []string, byStream map[string][]Record, writers int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(writers, 1))
	for _, stream := range streams {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return appendStream(ctx, store, stream, byStream[stream]) })
	}
	return g.Wait()
}

func appendStream(ctx context.Context, store eventstore.Store, stream string, records []Record) error {
	for len(records) > 0 {
		batch := make([]eventstore.EventData, min(len(records), Batch))
		for i := range batch {
			typ, data, err := domain.EncodeEvent(records[i].Event)
			if err != nil {
				return err
			}
			batch[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: data,
				Metadata: eventstore.Metadata{CorrelationID: stream, Actor: "historygen"}}
		}
		if _, err := store.Append(ctx, stream, eventstore.Any(), batch...); err != nil {
			return fmt.Errorf("append to %s: %w", stream, err)
		}
		records = records[len(batch):]
	}
	return nil
}
