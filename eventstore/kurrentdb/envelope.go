package kurrentdb

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/orderledger/orderledger/eventstore"
)

// envelope is the user metadata of every event this adapter appends, as JSON:
//
//	{"orderledger":1,
//	 "recorded_at":"2024-02-29T12:14:15.123456Z",
//	 "hash":"<64 lowercase hex digits>",
//	 "metadata":{"correlation_id":"…","causation_id":"…","idempotency_key":"…","actor":"…"}}
//
// "orderledger" is the envelope's format version. recorded_at is UTC with microsecond
// precision; KurrentDB's own created time is not used, since an import cannot set it. metadata
// holds eventstore.Metadata with empty fields left out.
type envelope struct {
	Format     int                 `json:"orderledger"`
	RecordedAt time.Time           `json:"recorded_at"`
	Hash       eventstore.Hash     `json:"hash"`
	Metadata   eventstore.Metadata `json:"metadata"`
}

const envelopeFormat = 1

func encodeEnvelope(recordedAt time.Time, hash eventstore.Hash, metadata eventstore.Metadata) []byte {
	b, err := json.Marshal(envelope{Format: envelopeFormat, RecordedAt: recordedAt, Hash: hash, Metadata: metadata})
	if err != nil { // a time, a hash and strings always marshal
		panic(err)
	}
	return b
}

// decodeEnvelope parses user metadata; ok is false when it is not an envelope this adapter
// wrote.
func decodeEnvelope(b []byte) (env envelope, ok bool) {
	if err := json.Unmarshal(b, &env); err != nil {
		return envelope{}, false
	}
	if env.Format != envelopeFormat || env.RecordedAt.IsZero() || env.Hash.IsZero() {
		return envelope{}, false
	}
	env.RecordedAt = eventstore.NormalizeTime(env.RecordedAt)
	return env, true
}

// toEvent converts a recorded event of a stream named prefix+s into the port's event of
// stream s. An event some other writer put there has no envelope: it gets the server's
// created time, empty metadata and a zero hash, so that it reads without halting a projector
// and the audit's hash check names it.
func toEvent(r *esdb.RecordedEvent, prefix string) eventstore.Event {
	e := eventstore.Event{
		ID:       r.EventID,
		Stream:   strings.TrimPrefix(r.StreamID, prefix),
		Version:  r.EventNumber,
		Type:     r.EventType,
		Data:     r.Data,
		Position: fromClientPosition(r.Position),
	}
	if env, ok := decodeEnvelope(r.UserMetadata); ok {
		e.RecordedAt, e.Hash, e.Metadata = env.RecordedAt, env.Hash, env.Metadata
	} else {
		e.RecordedAt = eventstore.NormalizeTime(r.CreatedDate)
	}
	return e
}

// inStore reports whether a record of $all belongs to the store: not a system event, and in
// a stream with the store's prefix.
func inStore(r *esdb.RecordedEvent, prefix string) bool {
	if strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$") {
		return false
	}
	return strings.HasPrefix(r.StreamID, prefix) && len(r.StreamID) > len(prefix)
}

// fromClientPosition converts a $all position. Servers that do not fill in the position of
// an event read from its stream send the maximum value; that becomes the zero Position.
func fromClientPosition(p esdb.Position) eventstore.Position {
	if p.Commit == math.MaxUint64 {
		return eventstore.Position{}
	}
	return eventstore.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// toClientPosition is where a $all read or subscription after p starts: the start of the log
// for the zero Position.
func toClientPosition(p eventstore.Position) esdb.AllPosition {
	if p.IsZero() {
		return esdb.Start{}
	}
	return esdb.Position{Commit: p.Commit, Prepare: p.Prepare}
}
