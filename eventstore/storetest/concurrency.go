package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// testConcurrency runs 16 writers of 500 appends each over overlapping streams, with expected
// revisions retried on conflict, while one subscriber follows from the start and a second
// joins halfway. Each subscriber must deliver exactly the committed events after its start
// position, in the global order ReadAll reports.
func testConcurrency(t *testing.T, h Harness) {
	const (
		writers          = 16
		appendsPerWriter = 500
		streams          = 24
		maxAttempts      = 200
		total            = writers * appendsPerWriter
	)
	ctx := t.Context()
	store := h.NewStore(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("writers choose streams, batch sizes and expected revisions with seed %d", seed)
	fromStart := subscribe(t, store, eventstore.Position{})

	var (
		mu        sync.Mutex
		committed = make(map[uuid.UUID]string, total*2) // event ID → stream
		finished  atomic.Int64
		halfway   = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), seed))
			known := map[string]uint64{} // next version per stream, as far as this writer knows
			for range appendsPerWriter {
				stream := fmt.Sprintf("load-%d", rng.IntN(streams))
				n := 1
				if rng.IntN(10) >= 6 {
					n = 2 + rng.IntN(3)
				}
				batch := NewEvents(n, "Loaded.v1")
				useAny := rng.IntN(4) == 0
				var res eventstore.AppendResult
				for attempt := 0; ; attempt++ {
					if attempt == maxAttempts {
						t.Errorf("writer %d: %d conflicts in a row on %q", w, attempt, stream)
						return
					}
					expected := eventstore.Any()
					if !useAny {
						expected = eventstore.NoStream()
						if next := known[stream]; next > 0 {
							expected = eventstore.Exact(next - 1)
						}
					}
					var err error
					res, err = store.Append(ctx, stream, expected, batch...)
					if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
						// Catch up with what the other writers appended, then retry.
						seen, err := store.ReadStream(ctx, stream, known[stream], 1<<20)
						if err != nil {
							t.Errorf("writer %d: ReadStream %q: %v", w, stream, err)
							return
						}
						if len(seen) > 0 {
							known[stream] = seen[len(seen)-1].Version + 1
						}
						continue
					}
					if err != nil {
						t.Errorf("writer %d: Append to %q expecting %v: %v", w, stream, expected, err)
						return
					}
					if r, exact := expected.Revision(); (exact && res.Version != r+uint64(n)) || (expected.IsNoStream() && res.Version != uint64(n-1)) {
						t.Errorf("writer %d: Append of %d events to %q expecting %v landed at version %d", w, n, stream, expected, res.Version)
					}
					break
				}
				known[stream] = res.Version + 1
				mu.Lock()
				for _, e := range batch {
					committed[e.ID] = stream
				}
				mu.Unlock()
				if finished.Add(1) == total/2 {
					close(halfway)
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	select {
	case <-halfway:
	case <-writersDone:
		t.Fatal("writers stopped before half of the appends were done")
	}
	midFrom := head(t, store)
	fromMiddle := subscribe(t, store, midFrom)
	<-writersDone
	if t.Failed() {
		return
	}

	all := readAll(t, store, len(committed))
	if len(all) != len(committed) {
		t.Errorf("ReadAll returns %d events, %d were committed", len(all), len(committed))
	}
	seen := make(map[uuid.UUID]bool, len(all))
	for _, e := range all {
		if stream, ok := committed[e.ID]; !ok || stream != e.Stream || seen[e.ID] {
			t.Fatalf("ReadAll returns %s (%s), which was not committed there or is returned twice", describe(e), e.ID)
		}
		seen[e.ID] = true
	}
	if err := checkGlobalOrder(all); err != nil {
		t.Fatalf("ReadAll: %v", err)
	}

	var afterMid []eventstore.Event
	for i, e := range all {
		if e.Position.Compare(midFrom) > 0 {
			afterMid = all[i:]
			break
		}
	}
	for _, c := range []struct {
		name string
		sub  *subscription
		want []eventstore.Event
	}{{"subscriber from the start", fromStart, all}, {"subscriber from the middle", fromMiddle, afterMid}} {
		c.sub.waitFor(t, len(c.want), 30*time.Second)
		c.sub.stop(t)
		got := c.sub.snapshot()
		if err := checkGlobalOrder(got); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !sameIDs(ids(got), ids(c.want)) {
			t.Errorf("%s delivered %d events, ReadAll has %d after its start; first difference at %d", c.name, len(got), len(c.want), firstDifference(ids(got), ids(c.want)))
		}
	}
}

func firstDifference(a, b []uuid.UUID) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
