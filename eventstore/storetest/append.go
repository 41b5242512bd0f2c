package storetest

import (
	"errors"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// testExpectedRevision appends with every kind of expected revision to an empty stream and to a
// stream at version 1; a refused append must leave the store as it was.
func testExpectedRevision(t *testing.T, h Harness) {
	store := h.NewStore(t)
	cases := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedRevision
		ok       bool
	}{
		{"AnyOnEmpty", 0, eventstore.Any(), true},
		{"NoStreamOnEmpty", 0, eventstore.NoStream(), true},
		{"StreamExistsOnEmpty", 0, eventstore.StreamExists(), false},
		{"Exact0OnEmpty", 0, eventstore.Exact(0), false},
		{"AnyOnExisting", 2, eventstore.Any(), true},
		{"NoStreamOnExisting", 2, eventstore.NoStream(), false},
		{"StreamExistsOnExisting", 2, eventstore.StreamExists(), true},
		{"ExactLastOnExisting", 2, eventstore.Exact(1), true},
		{"ExactBehindOnExisting", 2, eventstore.Exact(0), false},
		{"ExactAheadOnExisting", 2, eventstore.Exact(2), false},
	}
	var last eventstore.Position // of the last event appended
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := "expect-" + c.name
			if c.existing > 0 {
				last = mustAppend(t, store, stream, eventstore.NoStream(), NewEvents(c.existing, "Seeded.v1")...).Position
			}
			batch := NewEvents(2, "Appended.v1")
			res, err := store.Append(t.Context(), stream, c.expected, batch...)
			got := readStream(t, store, stream)
			if !c.ok {
				if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
					t.Fatalf("Append expecting %v to a stream of %d events: err %v, want ErrWrongExpectedRevision", c.expected, c.existing, err)
				}
				if len(got) != c.existing {
					t.Errorf("refused append left %d events in the stream, want %d", len(got), c.existing)
				}
				last = nothingAppendedAfter(t, store, last, "after a refused append")
				return
			}
			if err != nil {
				t.Fatalf("Append expecting %v to a stream of %d events: %v", c.expected, c.existing, err)
			}
			last = res.Position
			if want := uint64(c.existing + 1); res.Version != want {
				t.Errorf("AppendResult.Version %d, want %d", res.Version, want)
			}
			if len(got) != c.existing+2 || !sameIDs(ids(got[c.existing:]), dataIDs(batch)) {
				t.Fatalf("stream holds %v, want the %d seeded events then %v", ids(got), c.existing, dataIDs(batch))
			}
			if got[len(got)-1].Position != res.Position {
				t.Errorf("last event at %v, AppendResult.Position %v", got[len(got)-1].Position, res.Position)
			}
		})
	}
}

// testIdempotentRetry appends batches again: a whole repeat is a retry that succeeds without
// appending, a repeat of part of a batch is refused and appends nothing.
func testIdempotentRetry(t *testing.T, h Harness) {
	store := h.NewStore(t)
	const stream = "retry-1"
	abc := NewEvents(3, "Retried.v1")
	first := mustAppend(t, store, stream, eventstore.NoStream(), abc...)
	if first.Retried {
		t.Fatalf("a first append answered Retried")
	}
	first.Retried = true // what a retry must answer

	for _, expected := range []eventstore.ExpectedRevision{eventstore.NoStream(), eventstore.Any()} {
		again, err := store.Append(t.Context(), stream, expected, abc...)
		if err != nil {
			t.Fatalf("retrying the batch expecting %v: %v", expected, err)
		}
		if again != first {
			t.Errorf("retry expecting %v answered %+v, the original append %+v", expected, again, first)
		}
	}
	if got := readStream(t, store, stream); !sameIDs(ids(got), dataIDs(abc)) {
		t.Fatalf("after retries the stream holds %v, want %v", ids(got), dataIDs(abc))
	}

	// A retry that arrives after the stream has moved on still finds the original.
	d := NewEvent("Retried.v1", `{"n":3}`)
	dResult := mustAppend(t, store, stream, eventstore.Exact(2), d)
	dResult.Retried = true
	last := mustAppend(t, store, stream, eventstore.Exact(3), NewEvent("Retried.v1", `{"n":4}`)).Position
	again, err := store.Append(t.Context(), stream, eventstore.Exact(2), d)
	if err != nil {
		t.Fatalf("retrying a single event after the stream moved on: %v", err)
	}
	if again != dResult {
		t.Errorf("late retry answered %+v, the original append %+v", again, dResult)
	}

	partial := []struct {
		name  string
		batch []eventstore.EventData
	}{
		{"EarlierBatchPlusNew", append(append([]eventstore.EventData(nil), abc...), NewEvent("Retried.v1", `{}`))},
		{"NewThenRepeat", []eventstore.EventData{NewEvent("Retried.v1", `{}`), abc[1]}},
		{"RepeatThenNew", []eventstore.EventData{abc[2], NewEvent("Retried.v1", `{}`)}},
		{"RepeatOutOfOrder", []eventstore.EventData{abc[0], abc[2]}},
	}
	for _, p := range partial {
		_, err := store.Append(t.Context(), stream, eventstore.Any(), p.batch...)
		if !errors.Is(err, eventstore.ErrDuplicateEventID) && !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			t.Errorf("%s: err %v, want ErrDuplicateEventID or ErrWrongExpectedRevision", p.name, err)
		}
	}
	if got := readStream(t, store, stream); len(got) != 5 {
		t.Errorf("after refused partial repeats the stream has %d events, want 5", len(got))
	}
	nothingAppendedAfter(t, store, last, "after retries and refused repeats")

	// The same event ID twice in one batch is refused as well.
	x := NewEvent("Retried.v1", `{}`)
	if _, err := store.Append(t.Context(), "retry-2", eventstore.Any(), x, x); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Errorf("a batch repeating an event ID: err %v, want ErrDuplicateEventID", err)
	}
	if got := readStream(t, store, "retry-2"); len(got) != 0 {
		t.Errorf("a refused batch left %d events", len(got))
	}
}

// testInvalidInput appends what ValidateAppend refuses; nothing may reach the log.
func testInvalidInput(t *testing.T, h Harness) {
	store := h.NewStore(t)
	good := func() eventstore.EventData { return NewEvent("Valid.v1", `{"ok":true}`) }
	withType := good()
	withType.Type = ""
	badJSON := good()
	badJSON.Data = []byte(`{"unterminated":`)
	noData := good()
	noData.Data = nil
	systemType := good()
	systemType.Type = "$Valid.v1"
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"NoEvents", "invalid-1", nil},
		{"EmptyType", "invalid-1", []eventstore.EventData{good(), withType}},
		{"BadJSON", "invalid-1", []eventstore.EventData{good(), badJSON}},
		{"NoData", "invalid-1", []eventstore.EventData{noData}},
		{"SystemEventType", "invalid-1", []eventstore.EventData{good(), systemType}},
		{"SystemStream", "$invalid-1", []eventstore.EventData{good()}},
		{"EmptyStream", "", []eventstore.EventData{good()}},
	}
	for _, c := range cases {
		_, err := store.Append(t.Context(), c.stream, eventstore.Any(), c.events...)
		if !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: err %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if got := readAll(t, store, 0); len(got) != 0 {
		t.Errorf("refused appends left %d events in the log: %v", len(got), ids(got))
	}
	if h := head(t, store); !h.IsZero() {
		t.Errorf("Head %v after refused appends only, want zero", h)
	}
	// The store still works after refusing input.
	res := mustAppend(t, store, "invalid-1", eventstore.NoStream(), good())
	if res.Version != 0 {
		t.Errorf("first valid append got version %d, want 0", res.Version)
	}
}
