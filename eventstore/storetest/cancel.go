package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// prompt is how long a call may take to notice a cancelled context.
const prompt = 5 * time.Second

// testContextCancellation checks that a cancelled context fails every call promptly with an
// error matching context.Canceled, that it appends nothing, that Subscribe ends when its context
// is cancelled while it waits for events, and that Subscribe returns its handler's error.
func testContextCancellation(t *testing.T, h Harness) {
	store := h.NewStore(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	err := within(t, prompt, "Append with a cancelled context", func() error {
		_, err := store.Append(cancelled, "cancel-1", eventstore.Any(), NewEvent("Cancelled.v1", `{}`))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: err %v, want context.Canceled", err)
	}
	if got := readAll(t, store, 0); len(got) != 0 {
		t.Errorf("Append with a cancelled context appended %v", ids(got))
	}

	seeded := mustAppend(t, store, "cancel-2", eventstore.NoStream(), NewEvent("Seeded.v1", `{}`))
	err = within(t, prompt, "ReadAll with a cancelled context", func() error {
		_, err := store.ReadAll(cancelled, eventstore.Position{}, 10)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll with a cancelled context: err %v, want context.Canceled", err)
	}
	err = within(t, prompt, "ReadStream with a cancelled context", func() error {
		_, err := store.ReadStream(cancelled, "cancel-2", 0, 10)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStream with a cancelled context: err %v, want context.Canceled", err)
	}
	err = within(t, prompt, "Subscribe with a cancelled context", func() error {
		return store.Subscribe(cancelled, eventstore.Position{}, func(context.Context, []eventstore.Event) error { return nil })
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context: err %v, want context.Canceled", err)
	}

	// Cancelled while following live: caught up with the seeded event, waiting for more.
	live, stopLive := context.WithCancel(t.Context())
	defer stopLive()
	caughtUp := make(chan struct{}, 1)
	liveDone := make(chan error, 1)
	go func() {
		liveDone <- store.Subscribe(live, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
			if batch[len(batch)-1].Position == seeded.Position {
				select {
				case caughtUp <- struct{}{}:
				default:
				}
			}
			return nil
		})
	}()
	select {
	case <-caughtUp:
	case err := <-liveDone:
		t.Fatalf("Subscribe returned %v before delivering the seeded event", err)
	case <-time.After(prompt):
		t.Fatal("Subscribe did not deliver the seeded event")
	}
	time.Sleep(20 * time.Millisecond) // let it settle into waiting
	stopLive()
	select {
	case err := <-liveDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe cancelled while live returned %v, want context.Canceled", err)
		}
	case <-time.After(prompt):
		t.Fatal("Subscribe did not return within 5s of its context being cancelled")
	}

	// The handler's error ends the subscription and is what Subscribe returns.
	errStop := errors.New("storetest: the handler stops")
	calls := 0
	err = within(t, prompt, "Subscribe whose handler fails", func() error {
		return store.Subscribe(t.Context(), eventstore.Position{}, func(context.Context, []eventstore.Event) error {
			calls++
			return errStop
		})
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Subscribe whose handler fails returned %v, want the handler's error", err)
	}
	if calls != 1 {
		t.Errorf("the failing handler was called %d times, want once", calls)
	}
}
