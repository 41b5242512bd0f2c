package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// Held is one piece of personal data the log holds about a customer, with where it came from.
type Held struct {
	Field string `json:"field"`
	// Value is the plaintext; nil once the data key is destroyed.
	Value *string `json:"value"`
	// Stored says how the log holds it: encrypted, erased (encrypted under a destroyed key)
	// or plaintext (written before personal data was encrypted).
	Stored FieldState `json:"stored"`
	Source Source     `json:"source"`
}

// Source is the event a piece of personal data was recorded by.
type Source struct {
	Stream     string              `json:"stream"`
	Version    uint64              `json:"version"`
	Type       string              `json:"type"`
	Position   eventstore.Position `json:"position"`
	RecordedAt time.Time           `json:"recorded_at"`
	Actor      *string             `json:"actor"`
}

// HeldIn lists the personal data held by the events of stream (at most limit events from
// version 0; 0 means all), whatever its subject: the caller picks streams of one customer.
func (s *Store) HeldIn(ctx context.Context, stream string, limit int) ([]Held, error) {
	const page = 500
	held := []Held{}
	for from := uint64(0); ; {
		n := page
		if limit > 0 && limit-int(from) < n {
			n = limit - int(from)
		}
		if n <= 0 {
			return held, nil
		}
		events, err := s.inner.ReadStream(ctx, stream, from, n)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			if domain.PersonalFields(e.Type) == nil {
				continue
			}
			data, states, err := s.openData(ctx, e.Type, e.Data)
			if err != nil {
				return nil, fmt.Errorf("%s version %d: %w", e.Stream, e.Version, err)
			}
			var values map[string]*string
			_ = json.Unmarshal(data, &values)
			for _, field := range domain.PersonalFields(e.Type) {
				state, ok := states[field]
				if !ok {
					continue
				}
				h := Held{Field: field, Value: values[field], Stored: state, Source: Source{
					Stream: e.Stream, Version: e.Version, Type: e.Type, Position: e.Position, RecordedAt: e.RecordedAt.UTC(),
				}}
				if e.Metadata.Actor != "" {
					actor := e.Metadata.Actor
					h.Source.Actor = &actor
				}
				held = append(held, h)
			}
		}
		if len(events) < n {
			return held, nil
		}
		from = events[len(events)-1].Version + 1
	}
}

// CheckErasable returns nil when erasing the customer makes all their personal data
// unreadable, and domain.ErrErasureUnavailable naming why otherwise: their stream holds personal
// data written in plaintext before it was encrypted, which cannot be rewritten without breaking
// the hash chain. A customer registered after encryption began has every order sealed too, since
// orders name an existing customer.
func (s *Store) CheckErasable(ctx context.Context, customerID string) error {
	held, err := s.HeldIn(ctx, domain.CustomerStream(customerID), 0)
	if err != nil {
		return err
	}
	var plain []string
	for _, h := range held {
		if h.Stored == Plaintext {
			plain = append(plain, fmt.Sprintf("%s of %s version %d (%s)", h.Field, h.Source.Stream, h.Source.Version, h.Source.Type))
		}
	}
	if len(plain) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the log holds %s in plaintext, written before personal data was encrypted; "+
		"it cannot be removed without rewriting the log and breaking its hash chain",
		domain.ErrErasureUnavailable, strings.Join(plain, ", "))
}
