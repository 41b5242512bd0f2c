package storetest

import (
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// testSnapshots holds the optional eventstore.Snapshots to its contract: one snapshot per
// stream, replaced by a newer one or one of another shape, never by an older one of the same.
func testSnapshots(t *testing.T, h Harness) {
	store := h.NewStore(t)
	snaps, ok := store.(eventstore.Snapshots)
	if !ok {
		t.Skipf("%T keeps no snapshots (eventstore.Snapshots is optional)", store)
	}
	ctx := t.Context()
	if _, found, err := snaps.LoadSnapshot(ctx, "stock-S1"); err != nil || found {
		t.Fatalf("a stream without a snapshot: found %v, %v", found, err)
	}
	save := func(version uint64, schema, state string) eventstore.Snapshot {
		t.Helper()
		s := eventstore.Snapshot{Stream: "stock-S1", Version: version, EventID: uuid.New(), Schema: schema, State: []byte(state)}
		if err := snaps.SaveSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	load := func() eventstore.Snapshot {
		t.Helper()
		s, found, err := snaps.LoadSnapshot(ctx, "stock-S1")
		if err != nil || !found {
			t.Fatalf("load: found %v, %v", found, err)
		}
		return s
	}
	same := func(got, want eventstore.Snapshot, why string) {
		t.Helper()
		if got.Stream != want.Stream || got.Version != want.Version || got.EventID != want.EventID || got.Schema != want.Schema || string(got.State) != string(want.State) {
			t.Fatalf("%s: loaded %+v, want %+v", why, got, want)
		}
	}
	v5 := save(5, "a.v1", `{"n":5}`)
	same(load(), v5, "first snapshot")
	save(3, "a.v1", `{"n":3}`)
	same(load(), v5, "an older snapshot of the same shape")
	v9 := save(9, "a.v1", `{"n":9}`)
	same(load(), v9, "a newer snapshot")
	b2 := save(2, "a.v2", `{"m":2}`)
	same(load(), b2, "a snapshot of another shape")
	if _, found, err := snaps.LoadSnapshot(ctx, "stock-S2"); err != nil || found {
		t.Fatalf("another stream: found %v, %v", found, err)
	}
}

// testFindEvent holds the optional eventstore.EventFinder to its contract: any event of a
// stream by its ID, however far back, and nothing of another stream.
func testFindEvent(t *testing.T, h Harness) {
	store := h.NewStore(t)
	finder, ok := store.(eventstore.EventFinder)
	if !ok {
		t.Skipf("%T does not find events by ID (eventstore.EventFinder is optional)", store)
	}
	events := NewEvents(300, "Found.v1")
	mustAppend(t, store, "find-1", eventstore.NoStream(), events...)
	mustAppend(t, store, "find-2", eventstore.NoStream(), NewEvent("Other.v1", `{}`))
	for _, i := range []int{0, 150, 299} {
		e, found, err := finder.FindEvent(t.Context(), "find-1", events[i].ID)
		if err != nil || !found || e.Version != uint64(i) || e.ID != events[i].ID || e.Stream != "find-1" {
			t.Fatalf("event %d: %+v, %v, %v", i, e, found, err)
		}
	}
	if _, found, err := finder.FindEvent(t.Context(), "find-2", events[0].ID); err != nil || found {
		t.Fatalf("an event of another stream: found %v, %v", found, err)
	}
	if _, found, err := finder.FindEvent(t.Context(), "find-1", uuid.New()); err != nil || found {
		t.Fatalf("an ID never appended: found %v, %v", found, err)
	}
}
