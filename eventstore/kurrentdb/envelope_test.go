package kurrentdb

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2024, 2, 29, 12, 14, 15, 123456000, time.UTC)
	hash := eventstore.ComputeHash(eventstore.Hash{}, "order-1", 0, uuid.New(), "OrderPlaced.v1", at, eventstore.Metadata{}, []byte(`{}`))
	for _, meta := range []eventstore.Metadata{
		{},
		{CorrelationID: "corr-1", CausationID: "cause-1", IdempotencyKey: "key-1", Actor: "clerk@example.com"},
		{Actor: "Zoë 🐙", CorrelationID: "関連-1"},
	} {
		raw := encodeEnvelope(at, hash, meta)
		env, ok := decodeEnvelope(raw)
		if !ok {
			t.Fatalf("decodeEnvelope(%s) refused what encodeEnvelope wrote", raw)
		}
		if !env.RecordedAt.Equal(at) || env.RecordedAt.Location() != time.UTC || env.Hash != hash || env.Metadata != meta {
			t.Errorf("round trip of %s gave %+v", raw, env)
		}
	}
}

// TestEnvelopeShape pins the documented JSON, which other tools reading the server may rely on.
func TestEnvelopeShape(t *testing.T) {
	at := time.Date(2024, 2, 29, 12, 14, 15, 123456000, time.UTC)
	var hash eventstore.Hash
	hash[0], hash[31] = 0xab, 0x01
	var got map[string]any
	if err := json.Unmarshal(encodeEnvelope(at, hash, eventstore.Metadata{Actor: "a"}), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"orderledger": 1.0,
		"recorded_at": "2024-02-29T12:14:15.123456Z",
		"hash":        "ab" + strings.Repeat("0", 60) + "01",
		"metadata":    map[string]any{"actor": "a"},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("envelope %s, want %s", g, w)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeEnvelopeRefusesWhatItDidNotWrite(t *testing.T) {
	for _, raw := range []string{
		``,
		`not json`,
		`{}`,
		`{"$correlationId":"x"}`, // another writer's metadata
		`{"orderledger":2,"recorded_at":"2024-01-01T00:00:00Z","hash":"` + hex64 + `","metadata":{}}`,
		`{"orderledger":1,"hash":"` + hex64 + `","metadata":{}}`,
		`{"orderledger":1,"recorded_at":"2024-01-01T00:00:00Z","metadata":{}}`,
		`{"orderledger":1,"recorded_at":"2024-01-01T00:00:00Z","hash":"abc","metadata":{}}`,
		`{"orderledger":1,"recorded_at":"yesterday","hash":"` + hex64 + `","metadata":{}}`,
	} {
		if env, ok := decodeEnvelope([]byte(raw)); ok {
			t.Errorf("decodeEnvelope(%s) = %+v, want it refused", raw, env)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestToEvent(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	created := time.Date(2024, 1, 2, 3, 4, 9, 123456789, time.UTC)
	id := uuid.New()
	meta := eventstore.Metadata{CausationID: "c"}
	hash := eventstore.ComputeHash(eventstore.Hash{}, "order-1", 3, id, "OrderPlaced.v1", at, meta, []byte(`{"a":1}`))
	r := &esdb.RecordedEvent{
		EventID: id, EventType: "OrderPlaced.v1", StreamID: "tenant.order-1", EventNumber: 3,
		Position: esdb.Position{Commit: 900, Prepare: 800}, CreatedDate: created,
		Data: []byte(`{"a":1}`), UserMetadata: encodeEnvelope(at, hash, meta),
	}
	e := toEvent(r, "tenant.")
	want := eventstore.Event{ID: id, Stream: "order-1", Version: 3, Type: "OrderPlaced.v1", Data: []byte(`{"a":1}`),
		Metadata: meta, RecordedAt: at, Position: eventstore.Position{Commit: 900, Prepare: 800}, Hash: hash}
	if e.ID != want.ID || e.Stream != want.Stream || e.Version != want.Version || e.Type != want.Type ||
		string(e.Data) != string(want.Data) || e.Metadata != want.Metadata || !e.RecordedAt.Equal(want.RecordedAt) ||
		e.Position != want.Position || e.Hash != want.Hash {
		t.Errorf("toEvent = %+v, want %+v", e, want)
	}
	if e.Recompute(eventstore.Hash{}) != e.Hash {
		t.Errorf("the converted event does not verify against its own hash")
	}

	// Another writer's event: the server's time, no metadata, a zero hash the audit will flag.
	r.UserMetadata = []byte(`{"$correlationId":"x"}`)
	e = toEvent(r, "tenant.")
	if !e.RecordedAt.Equal(created.Truncate(time.Microsecond)) || !e.Hash.IsZero() || e.Metadata != (eventstore.Metadata{}) {
		t.Errorf("foreign event converted to recorded_at %v hash %v metadata %+v; want the created time to the µs, zero hash, no metadata", e.RecordedAt, e.Hash, e.Metadata)
	}

	// A stream read from a server that does not report positions.
	r.Position = esdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}
	if p := toEvent(r, "").Position; !p.IsZero() {
		t.Errorf("an unreported position converted to %v, want zero", p)
	}
}

func TestInStore(t *testing.T) {
	cases := []struct {
		stream, eventType, prefix string
		want                      bool
	}{
		{"order-1", "OrderPlaced.v1", "", true},
		{"$stats-127.0.0.1:2113", "$statsCollected", "", false},
		{"$projections-sales-result", "Result", "", false}, // a system stream with an ordinary type
		{"$$order-1", "$metadata", "", false},
		{"order-1", "$>", "", false}, // a link
		{"$ce-order", "$>", "", false},
		{"t1.order-1", "OrderPlaced.v1", "t1.", true},
		{"t2.order-1", "OrderPlaced.v1", "t1.", false},
		{"order-1", "OrderPlaced.v1", "t1.", false},
		{"t1.", "OrderPlaced.v1", "t1.", false},
	}
	for _, c := range cases {
		r := &esdb.RecordedEvent{StreamID: c.stream, EventType: c.eventType}
		if got := inStore(r, c.prefix); got != c.want {
			t.Errorf("inStore(%q, %q, prefix %q) = %v, want %v", c.stream, c.eventType, c.prefix, got, c.want)
		}
	}
}

func TestPositionConversion(t *testing.T) {
	if _, ok := toClientPosition(eventstore.Position{}).(esdb.Start); !ok {
		t.Errorf("the zero Position reads from %#v, want esdb.Start", toClientPosition(eventstore.Position{}))
	}
	p := eventstore.Position{Commit: 1234, Prepare: 1200}
	cp, ok := toClientPosition(p).(esdb.Position)
	if !ok || cp.Commit != 1234 || cp.Prepare != 1200 {
		t.Errorf("toClientPosition(%v) = %#v", p, toClientPosition(p))
	}
	if back := fromClientPosition(cp); back != p {
		t.Errorf("round trip of %v gave %v", p, back)
	}
}
