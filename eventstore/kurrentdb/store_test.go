package kurrentdb

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

func TestOpenFailsFastWhenNothingListens(t *testing.T) {
	start := time.Now()
	s, err := Open(t.Context(), "esdb://127.0.0.1:1?tls=false")
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded against a port where nothing listens")
	}
	if !errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open: %v; want ErrUnavailable naming 127.0.0.1:1", err)
	}
	if elapsed > openTimeout+time.Second {
		t.Errorf("Open took %v to fail", elapsed)
	}
}

// TestOpenGivesUpOnASilentServer points Open at a socket that accepts connections and never
// answers: the client then waits on its own, ignoring contexts, and Open must not.
func TestOpenGivesUpOnASilentServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var held sync.WaitGroup
	held.Go(func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	s, err := Open(ctx, "kurrentdb://"+lis.Addr().String()+"?tls=false")
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded against a server that never answers")
	}
	if !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), lis.Addr().String()) {
		t.Errorf("Open: %v; want ErrUnavailable and DeadlineExceeded, naming %s", err, lis.Addr())
	}
	if elapsed > 2*time.Second {
		t.Errorf("Open took %v with a 1s deadline", elapsed)
	}
	lis.Close()
	held.Wait()
}

func TestOpenRefusesBadInput(t *testing.T) {
	if _, err := Open(t.Context(), "esdb://localhost?tsl=false"); err == nil || !strings.Contains(err.Error(), `unknown setting "tsl"`) {
		t.Errorf("Open with a misspelt setting: %v", err)
	}
	f := newFakeServer(t)
	if _, err := Open(t.Context(), f.connString(), WithStreamPrefix("$sys-")); err == nil || !strings.Contains(err.Error(), "starts with $") {
		t.Errorf("Open with a $ prefix: %v", err)
	}
}

func openFake(t *testing.T, f *fakeServer, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), f.connString(), opts...)
	if err != nil {
		t.Fatalf("Open against the fake: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newEvents(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{ID: uuid.New(), Type: "Tested.v1", Data: []byte(`{"i":` + strconv.Itoa(i) + `}`)}
	}
	return out
}

func readAllOf(t *testing.T, s *Store) []eventstore.Event {
	t.Helper()
	events, err := s.ReadAll(t.Context(), eventstore.Position{}, 10000)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return events
}

func TestReadsSkipSystemEventsAndKeepForeignOnes(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	f.put("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`), nil)
	mine := newEvents(2)
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), mine...); err != nil {
		t.Fatal(err)
	}
	f.put("$projections-sales-result", "Result", []byte(`{}`), nil)
	f.put("$$order-1", "$metadata", []byte(`{"$maxCount":10}`), nil)
	f.put("$ce-order", "$>", []byte(`0@order-1`), nil)
	foreign := f.put("order-1", "WrittenElsewhere.v1", []byte(`{"x":1}`), []byte(`{"$correlationId":"c"}`))
	f.put("$stats-127.0.0.1:2113", "$statsCollected", []byte(`{}`), nil)

	all := readAllOf(t, s)
	if len(all) != 3 || all[0].ID != mine[0].ID || all[1].ID != mine[1].ID || all[2].ID != foreign.id {
		t.Fatalf("ReadAll returns %d events %v; want the two appended and the foreign one", len(all), all)
	}
	if f := all[2]; !f.Hash.IsZero() || f.Version != 2 || f.Metadata != (eventstore.Metadata{}) {
		t.Errorf("the foreign event reads as %+v; want version 2, no metadata, zero hash", f)
	}
	head, err := s.Head(t.Context())
	if err != nil || head != all[2].Position {
		t.Errorf("Head %v, %v; want %v, past the trailing system event", head, err, all[2].Position)
	}

	// The next append chains to the foreign event's (zero) hash and is accepted: the audit,
	// not the store, reports the break.
	res, err := s.Append(t.Context(), "order-1", eventstore.Exact(2), newEvents(1)...)
	if err != nil || res.Version != 3 {
		t.Fatalf("append after the foreign event: %+v, %v", res, err)
	}

	got := make(chan []eventstore.Event, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.Subscribe(ctx, eventstore.Position{}, func(_ context.Context, batch []eventstore.Event) error {
		got <- batch
		return nil
	})
	var delivered []eventstore.Event
	for len(delivered) < 4 {
		select {
		case b := <-got:
			delivered = append(delivered, b...)
		case <-time.After(5 * time.Second):
			t.Fatalf("Subscribe delivered %d of 4 events", len(delivered))
		}
	}
	for i, e := range delivered[:3] {
		if e.ID != all[i].ID || e.Position != all[i].Position {
			t.Errorf("Subscribe event %d is %s@%v, ReadAll's %s@%v", i, e.ID, e.Position, all[i].ID, all[i].Position)
		}
	}
	select {
	case b := <-got:
		t.Errorf("Subscribe delivered more: %v", b)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestStreamPrefixKeepsStoresApart(t *testing.T) {
	f := newFakeServer(t)
	a := openFake(t, f, WithStreamPrefix("tenant-a."))
	b := openFake(t, f, WithStreamPrefix("tenant-b."))
	plain := openFake(t, newFakeServer(t)) // the same events without a prefix, on another server

	at := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	events := newEvents(3)
	for i := range events {
		events[i].RecordedAt = at
	}
	for _, s := range []*Store{a, plain} {
		if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), events...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Append(t.Context(), "order-1", eventstore.NoStream(), newEvents(1)...); err != nil {
		t.Fatalf("the same stream name in another prefix: %v", err)
	}

	fromA, fromPlain, fromB := readAllOf(t, a), readAllOf(t, plain), readAllOf(t, b)
	if len(fromA) != 3 || len(fromB) != 1 {
		t.Fatalf("tenant a reads %d events, tenant b %d; want 3 and 1", len(fromA), len(fromB))
	}
	for i, e := range fromA {
		if e.Stream != "order-1" || e.Hash != fromPlain[i].Hash {
			t.Errorf("event %d reads as stream %q hash %v; want order-1 and the unprefixed store's hash %v", i, e.Stream, e.Hash, fromPlain[i].Hash)
		}
	}
	f.mu.Lock()
	onServer := len(f.streams["tenant-a.order-1"])
	f.mu.Unlock()
	if got := onServer; got != 3 {
		t.Errorf("the server holds %d events in tenant-a.order-1, want 3", got)
	}
	headA, _ := a.Head(t.Context())
	headB, _ := b.Head(t.Context())
	if headA != fromA[2].Position || headB != fromB[0].Position {
		t.Errorf("Heads %v and %v; want %v and %v", headA, headB, fromA[2].Position, fromB[0].Position)
	}
}

// TestAppendAfterAConcurrentWriter puts another writer's event between the adapter's read of
// the stream head and its append.
func TestAppendAfterAConcurrentWriter(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	other := openFake(t, f)
	var fired atomic.Int32
	f.setBeforeAppend(func(stream string) {
		if fired.Add(1) == 1 { // the other writer's own append passes through here too
			if _, err := other.Append(t.Context(), stream, eventstore.Any(), newEvents(1)...); err != nil {
				t.Errorf("the concurrent writer: %v", err)
			}
		}
	})

	res, err := s.Append(t.Context(), "order-1", eventstore.Any(), newEvents(2)...)
	if err != nil || res.Version != 2 {
		t.Fatalf("Any after a concurrent writer: %+v, %v; want versions 1 and 2", res, err)
	}
	stream, _ := s.ReadStream(t.Context(), "order-1", 0, 10)
	var prev eventstore.Hash
	for _, e := range stream {
		if e.Recompute(prev) != e.Hash {
			t.Errorf("%s/%d does not chain to the event before it", e.Stream, e.Version)
		}
		prev = e.Hash
	}

	fired.Store(0)
	_, err = s.Append(t.Context(), "order-1", eventstore.Exact(2), newEvents(1)...)
	if !errors.Is(err, eventstore.ErrWrongExpectedRevision) || !strings.Contains(err.Error(), "is at version 3") {
		t.Errorf("Exact after a concurrent writer: %v; want ErrWrongExpectedRevision saying the stream is at version 3", err)
	}

	// A writer that always gets in between: Any gives up after maxAppendAttempts.
	f.setBeforeAppend(func(stream string) { f.put(stream, "Interloper.v1", []byte(`{}`), nil) })
	_, err = s.Append(t.Context(), "order-1", eventstore.StreamExists(), newEvents(1)...)
	if !errors.Is(err, eventstore.ErrWrongExpectedRevision) || !strings.Contains(err.Error(), "moved on 5 times") {
		t.Errorf("StreamExists against a writer that always wins: %v", err)
	}
	f.setBeforeAppend(nil)
	for _, e := range readAllOf(t, s) {
		if e.Type == "Tested.v1" && e.Version > 3 {
			t.Errorf("a losing append was written: %s/%d", e.Stream, e.Version)
		}
	}
}

// collector records what a Subscribe delivers.
type collector struct {
	mu     sync.Mutex
	events []eventstore.Event
	done   chan error
}

func subscribeAll(t *testing.T, s *Store, from eventstore.Position) (*collector, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{done: make(chan error, 1)}
	go func() {
		c.done <- s.Subscribe(ctx, from, func(_ context.Context, batch []eventstore.Event) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.events = append(c.events, batch...)
			return nil
		})
	}()
	t.Cleanup(cancel)
	return c, cancel
}

func (c *collector) waitFor(t *testing.T, n int, within time.Duration) []eventstore.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		got := append([]eventstore.Event(nil), c.events...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case err := <-c.done:
			t.Fatalf("Subscribe returned %v after %d of %d events", err, len(got), n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Subscribe delivered %d of %d events within %v", len(got), n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkDelivered(t *testing.T, got []eventstore.Event, want []eventstore.EventData) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("delivered %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID {
			t.Fatalf("event %d delivered is %s, want %s", i, got[i].ID, want[i].ID)
		}
		if i > 0 && got[i].Position.Compare(got[i-1].Position) <= 0 {
			t.Fatalf("event %d at %v after %v", i, got[i].Position, got[i-1].Position)
		}
	}
}

func TestSubscribeResubscribesAfterADrop(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	first := newEvents(3)
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), first...); err != nil {
		t.Fatal(err)
	}
	c, _ := subscribeAll(t, s, eventstore.Position{})
	c.waitFor(t, 3, 5*time.Second)
	f.dropSubscriptions()
	second := newEvents(3)
	if _, err := s.Append(t.Context(), "order-2", eventstore.NoStream(), second...); err != nil {
		t.Fatal(err)
	}
	f.dropSubscriptions()
	c.waitFor(t, 6, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	c.mu.Lock()
	got := append([]eventstore.Event(nil), c.events...)
	c.mu.Unlock()
	checkDelivered(t, got, append(first, second...))
}

// TestSubscribeFromAPosition starts after an event in the middle and must not repeat it.
func TestSubscribeFromAPosition(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	events := newEvents(5)
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), events...); err != nil {
		t.Fatal(err)
	}
	all := readAllOf(t, s)
	c, _ := subscribeAll(t, s, all[1].Position)
	got := c.waitFor(t, 3, 5*time.Second)
	checkDelivered(t, got, events[2:])
}

// TestClientRebuiltAfterItClosesItself takes the server down until the client gives up
// discovery and closes itself, then brings it back: the store must carry on with a new
// client, and a subscription must resume where it was.
func TestClientRebuiltAfterItClosesItself(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	before := newEvents(2)
	if _, err := s.Append(t.Context(), "order-1", eventstore.NoStream(), before...); err != nil {
		t.Fatal(err)
	}
	c, _ := subscribeAll(t, s, eventstore.Position{})
	c.waitFor(t, 2, 5*time.Second)

	s.mu.Lock()
	firstClient := s.cur
	s.mu.Unlock()
	f.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Append(t.Context(), "order-1", eventstore.Any(), newEvents(1)...)
		if err == nil {
			t.Fatal("Append succeeded while the server was down")
		}
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("Append while the server is down: %v; want ErrUnavailable", err)
		}
		s.mu.Lock()
		replaced := s.cur != firstClient
		s.mu.Unlock()
		if replaced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not replace its client within 10s of the server going away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	retired := firstClient.retired
	s.mu.Unlock()
	if !retired {
		t.Error("the client that closed itself was not retired")
	}

	f.restart(t)
	after := newEvents(2)
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := s.Append(t.Context(), "order-1", eventstore.Exact(1), after...)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Append after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := c.waitFor(t, 4, 15*time.Second)
	checkDelivered(t, got, append(before, after...))
}

func TestCloseEndsCallsAndSubscriptions(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f)
	c, _ := subscribeAll(t, s, eventstore.Position{})
	time.Sleep(50 * time.Millisecond) // let it subscribe
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("Subscribe on a closed store returned %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after Close")
	}
	if _, err := s.Append(t.Context(), "order-1", eventstore.Any(), newEvents(1)...); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Append after Close: %v, want ErrUnavailable", err)
	}
	if _, err := s.Head(t.Context()); !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Head after Close: %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestReadStreamRefusesBadArguments(t *testing.T) {
	s := openFake(t, newFakeServer(t))
	if _, err := s.ReadStream(t.Context(), "$stats-x", 0, 10); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("ReadStream of a system stream: %v, want ErrInvalidEvent", err)
	}
	if _, err := s.ReadStream(t.Context(), "order-1", 0, 0); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("ReadStream with limit 0: %v, want ErrInvalidEvent", err)
	}
	if _, err := s.ReadAll(t.Context(), eventstore.Position{}, -1); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("ReadAll with limit -1: %v, want ErrInvalidEvent", err)
	}
}
