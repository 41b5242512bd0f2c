package projections

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/sqlite"
)

// TestLogFeedDeliversEveryEventOnce: readers that start before the feed's head, at it, and
// ones too slow for what it keeps all get every event after their position once, in order,
// whether it comes from the feed or from the store.
func TestLogFeedDeliversEveryEventOnce(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendCustomers := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			id := fmt.Sprintf("c%d", i)
			typ, data, err := domain.EncodeEvent(domain.CustomerRegistered{CustomerID: id, Name: "N", Email: id + "@example.com", RegisteredAt: time.Unix(int64(i), 0).UTC()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Append(t.Context(), domain.CustomerStream(id), eventstore.NoStream(),
				eventstore.EventData{ID: uuid.New(), Type: typ, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	const total = 300
	appendCustomers(0, 100)
	all, err := store.ReadAll(t.Context(), eventstore.Position{}, 100)
	if err != nil || len(all) != 100 {
		t.Fatalf("read %d events, err %v", len(all), err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// It keeps a handful of events, so that slow readers fall behind it.
	f := newLogFeed(store, func(t string) bool { return customerEventTypes[t] }, 16)
	f.open(ctx)

	type reader struct {
		from   eventstore.Position
		slow   bool
		mu     sync.Mutex
		got    []eventstore.Event
		fed    int // events that came decoded, from the feed
		broken error
	}
	readers := []*reader{
		{from: eventstore.Position{}},
		{from: all[49].Position},
		{from: all[99].Position},
		{from: all[10].Position, slow: true},
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() {
			err := f.follow(ctx, r.from, func(_ context.Context, events []eventstore.Event, decoded []decodedEvent) error {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.got = append(r.got, events...)
				if decoded != nil {
					r.fed += len(events)
					for i, d := range decoded {
						if _, ok := d.data.(domain.CustomerRegistered); !ok || d.err != nil {
							r.broken = fmt.Errorf("event %s decoded as %#v, %v", events[i].Position, d.data, d.err)
						}
					}
				}
				if r.slow {
					time.Sleep(5 * time.Millisecond)
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				r.mu.Lock()
				r.broken = err
				r.mu.Unlock()
			}
		})
	}
	appendCustomers(100, total)
	all, err = store.ReadAll(t.Context(), eventstore.Position{}, total)
	if err != nil || len(all) != total {
		t.Fatalf("read %d events, err %v", len(all), err)
	}
	want := func(from eventstore.Position) []eventstore.Event {
		for i, e := range all {
			if e.Position.Compare(from) > 0 {
				return all[i:]
			}
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		done := true
		for _, r := range readers {
			r.mu.Lock()
			done = done && len(r.got) >= len(want(r.from))
			r.mu.Unlock()
		}
		if done {
			break
		}
	}
	cancel()
	wg.Wait()
	for i, r := range readers {
		if r.broken != nil {
			t.Errorf("reader %d: %v", i, r.broken)
		}
		w := want(r.from)
		if len(r.got) != len(w) {
			t.Errorf("reader %d from %s got %d events, want %d", i, r.from, len(r.got), len(w))
			continue
		}
		for j := range w {
			if r.got[j].ID != w[j].ID {
				t.Errorf("reader %d: event %d is %s, want %s", i, j, r.got[j].Position, w[j].Position)
				break
			}
		}
		if r.fed == 0 {
			t.Errorf("reader %d got nothing from the feed", i)
		}
	}
}

// TestLogFeedReportsTheTapsFailure: a reader waiting for the log learns that the
// subscription failed, and the next follow starts it again.
func TestLogFeedReportsTheTapsFailure(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := newLogFeed(store, func(t string) bool { return customerEventTypes[t] }, 16)
	f.open(t.Context())
	waited := make(chan error, 1)
	go func() {
		waited <- f.follow(t.Context(), eventstore.Position{}, func(context.Context, []eventstore.Event, []decodedEvent) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond)
	store.Close()
	select {
	case err := <-waited:
		if err == nil {
			t.Fatal("follow returned nil once the store closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow still waits for a store that closed")
	}
}
