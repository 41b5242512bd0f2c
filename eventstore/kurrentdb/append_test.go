package kurrentdb

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

func TestPinExpected(t *testing.T) {
	atOne := &eventstore.Event{Version: 1}
	cases := []struct {
		expected eventstore.ExpectedRevision
		head     *eventstore.Event
		want     esdb.ExpectedRevision // nil: refused
		wantErr  string
	}{
		{eventstore.Any(), nil, esdb.NoStream{}, ""},
		{eventstore.Any(), atOne, esdb.Revision(1), ""},
		{eventstore.NoStream(), nil, esdb.NoStream{}, ""},
		{eventstore.NoStream(), atOne, nil, `stream "s" expected no stream, is at version 1`},
		// StreamExists is sent as the exact revision read, since the hashes chain to it.
		{eventstore.StreamExists(), atOne, esdb.Revision(1), ""},
		{eventstore.StreamExists(), nil, nil, `stream "s" expected stream exists, is at no stream`},
		{eventstore.Exact(1), atOne, esdb.Revision(1), ""},
		{eventstore.Exact(0), atOne, nil, `expected version 0, is at version 1`},
		{eventstore.Exact(2), atOne, nil, `expected version 2, is at version 1`},
		{eventstore.Exact(0), nil, nil, `expected version 0, is at no stream`},
	}
	for _, c := range cases {
		headDesc := "empty"
		if c.head != nil {
			headDesc = fmt.Sprint("at ", c.head.Version)
		}
		got, err := pinExpected("s", c.expected, c.head)
		if c.want == nil {
			if !errors.Is(err, eventstore.ErrWrongExpectedRevision) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v on a stream %s: err %v, want ErrWrongExpectedRevision saying %q", c.expected, headDesc, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v on a stream %s: %#v, %v; want %#v", c.expected, headDesc, got, err, c.want)
		}
	}
}

func TestFindRetry(t *testing.T) {
	a, b, c, d, x := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	tail := []eventstore.Event{ // the stream's last events, oldest first
		{ID: a, Version: 10, Position: eventstore.Position{Commit: 100, Prepare: 100}},
		{ID: b, Version: 11, Position: eventstore.Position{Commit: 200, Prepare: 200}},
		{ID: c, Version: 12, Position: eventstore.Position{Commit: 300, Prepare: 300}},
		{ID: d, Version: 13, Position: eventstore.Position{Commit: 400, Prepare: 400}},
	}
	batch := func(ids ...uuid.UUID) []eventstore.EventData {
		out := make([]eventstore.EventData, len(ids))
		for i, id := range ids {
			out[i] = eventstore.EventData{ID: id}
		}
		return out
	}
	retries := []struct {
		name    string
		events  []eventstore.EventData
		version uint64
	}{
		{"WholeBatch", batch(a, b, c), 12},
		{"Single", batch(b), 11},
		{"TheLastOne", batch(d), 13},
	}
	for _, r := range retries {
		original, ok, err := findRetry("s", tail, r.events)
		if err != nil || !ok || original.Version != r.version || original.Position != tail[r.version-10].Position {
			t.Errorf("%s: %+v, %v, %v; want a retry ending at version %d", r.name, original, ok, err, r.version)
		}
	}

	if _, ok, err := findRetry("s", tail, batch(x, uuid.New())); ok || err != nil {
		t.Errorf("new events: ok %v err %v, want neither", ok, err)
	}
	if _, ok, err := findRetry("s", nil, batch(x)); ok || err != nil {
		t.Errorf("an empty stream: ok %v err %v, want neither", ok, err)
	}

	partial := []struct {
		name   string
		events []eventstore.EventData
	}{
		{"PlusNew", batch(c, d, x)},
		{"NewThenRepeat", batch(x, b)},
		{"RepeatThenNew", batch(b, x)},
		{"OutOfOrder", batch(a, c)},
	}
	for _, p := range partial {
		_, ok, err := findRetry("s", tail, p.events)
		if ok || !errors.Is(err, eventstore.ErrDuplicateEventID) {
			t.Errorf("%s: ok %v err %v, want ErrDuplicateEventID", p.name, ok, err)
		}
	}
}

func TestSealChainsToTheHead(t *testing.T) {
	given := time.Date(2023, 12, 31, 23, 59, 59, 999999999, time.FixedZone("CET", 3600))
	now := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	events := []eventstore.EventData{
		{ID: uuid.New(), Type: "A.v1", Data: []byte(`{"n":1}`), Metadata: eventstore.Metadata{Actor: "x"}},
		{ID: uuid.New(), Type: "B.v1", Data: []byte(`{"n":2}`), RecordedAt: given},
	}
	for _, head := range []*eventstore.Event{nil, {Version: 6, Hash: eventstore.Hash{1, 2, 3}}} {
		proposed, last, lastHash := seal("order-1", head, events, now)
		prev, version := eventstore.Hash{}, uint64(0)
		if head != nil {
			prev, version = head.Hash, head.Version+1
		}
		if want := version + 1; last != want {
			t.Errorf("head %+v: last version %d, want %d", head, last, want)
		}
		for i, p := range proposed {
			env, ok := decodeEnvelope(p.Metadata)
			if !ok {
				t.Fatalf("event %d: metadata %s is not an envelope", i, p.Metadata)
			}
			wantAt := eventstore.NormalizeTime(now)
			if !events[i].RecordedAt.IsZero() {
				wantAt = eventstore.NormalizeTime(events[i].RecordedAt)
			}
			stored := eventstore.Event{ID: p.EventID, Stream: "order-1", Version: version + uint64(i), Type: p.EventType,
				Data: p.Data, Metadata: env.Metadata, RecordedAt: env.RecordedAt}
			if p.EventID != events[i].ID || p.EventType != events[i].Type || p.ContentType != esdb.ContentTypeJson ||
				!env.RecordedAt.Equal(wantAt) || env.Metadata != events[i].Metadata {
				t.Errorf("event %d sealed as %+v with envelope %+v", i, p, env)
			}
			if want := stored.Recompute(prev); env.Hash != want {
				t.Errorf("head %+v, event %d: hash %v, want %v chained to %v", head, i, env.Hash, want, prev)
			}
			prev = env.Hash
		}
		if lastHash != prev {
			t.Errorf("head %+v: seal returned the last hash %v, sealed %v", head, lastHash, prev)
		}
	}
}
