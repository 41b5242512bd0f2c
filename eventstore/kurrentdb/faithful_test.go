package kurrentdb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// Tests of what a real KurrentDB server does that the adapter once assumed it did not; the
// fake server models each behaviour, citing where the server does it.

// TestAppendOverTheServersLimitIsInvalid: a server configured with a MaxAppendSize below the
// default refuses an append the port allows; the adapter reports ErrInvalidEvent, not an
// unknown error, and nothing is stored.
func TestAppendOverTheServersLimitIsInvalid(t *testing.T) {
	f := newFakeServer(t)
	f.mu.Lock()
	f.maxAppendSize = 4096
	f.mu.Unlock()
	s := openFake(t, f)
	e := eventstore.EventData{ID: uuid.New(), Type: "Attachment.v1", Data: []byte(`"` + strings.Repeat("x", 5000) + `"`)}
	_, err := s.Append(t.Context(), "attachment-1", eventstore.NoStream(), e)
	if !errors.Is(err, eventstore.ErrInvalidEvent) || !strings.Contains(err.Error(), "MaxAppendSize") {
		t.Fatalf("append over the server's limit: %v; want ErrInvalidEvent naming MaxAppendSize", err)
	}
	if got := readAllOf(t, s); len(got) != 0 {
		t.Errorf("a refused append left %d events", len(got))
	}
}

// TestEnvelopeFitsTheOverheadThePortCounts: what the adapter adds to an event's metadata stays
// within eventstore.EventOverhead, so an append the port allows is one a default server takes.
func TestEnvelopeFitsTheOverheadThePortCounts(t *testing.T) {
	var h eventstore.Hash
	for i := range h {
		h[i] = 0xff
	}
	m := eventstore.Metadata{CorrelationID: "c", CausationID: "d", IdempotencyKey: "k", Actor: "a"}
	at := eventstore.NormalizeTime(mustTime(t, "9999-12-31T23:59:59.999999Z"))
	if extra := len(encodeEnvelope(at, h, m)) - len(eventstore.EncodeMetadata(m)); extra > eventstore.EventOverhead {
		t.Errorf("the envelope adds %d bytes to the metadata, over eventstore.EventOverhead (%d)", extra, eventstore.EventOverhead)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
