package integrations

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Message is an event as the stream sends it and a webhook POSTs it.
type Message struct {
	Position   string          `json:"position"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Type       string          `json:"type"`
	RecordedAt time.Time       `json:"recorded_at"`
	Actor      *string         `json:"actor"`
	Data       json.RawMessage `json:"data"`
}

// NewMessage builds the message of ev; with redact, the personal fields of its data are null.
func NewMessage(ev eventstore.Event, redact bool) Message {
	m := Message{
		Position: ev.Position.String(), Stream: ev.Stream, Version: ev.Version, Type: ev.Type,
		RecordedAt: ev.RecordedAt.UTC(), Data: json.RawMessage(ev.Data),
	}
	if ev.Metadata.Actor != "" {
		actor := ev.Metadata.Actor
		m.Actor = &actor
	}
	if redact {
		m.Data = domain.RedactPersonalData(ev.Type, ev.Data)
	}
	if len(m.Data) == 0 {
		m.Data = json.RawMessage("null")
	}
	return m
}

// Category is the category of a stream name "<category>-<id>".
func Category(stream string) string {
	c, _, _ := strings.Cut(stream, "-")
	return c
}

// entry is an event the Broadcaster keeps, with its SSE frames encoded once for every client
// that needs them.
type entry struct {
	event    eventstore.Event
	category string

	fullOnce, redactedOnce sync.Once
	full, redacted         []byte
}

func newEntry(ev eventstore.Event) *entry {
	return &entry{event: ev, category: Category(ev.Stream)}
}

// frame is the SSE message of the event: id, event and data lines and the blank line.
func (e *entry) frame(redact bool) []byte {
	if redact {
		e.redactedOnce.Do(func() { e.redacted = encodeFrame(e.event, true) })
		return e.redacted
	}
	e.fullOnce.Do(func() { e.full = encodeFrame(e.event, false) })
	return e.full
}

func encodeFrame(ev eventstore.Event, redact bool) []byte {
	data, err := json.Marshal(NewMessage(ev, redact))
	if err != nil {
		// Only data that is not JSON fails here, which the store refuses to append.
		data = []byte(`null`)
	}
	var b bytes.Buffer
	b.Grow(len(data) + len(ev.Type) + 48)
	b.WriteString("id: ")
	b.WriteString(ev.Position.String())
	b.WriteString("\nevent: ")
	b.WriteString(ev.Type)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}
