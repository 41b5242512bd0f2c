package postgres

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/eventstore"
)

// TestDecodeMetadataAgreesWithTheStandardDecoder: the fast path reads what EncodeMetadata
// writes exactly as eventstore.DecodeMetadata does, escapes and odd runes included.
func TestDecodeMetadataAgreesWithTheStandardDecoder(t *testing.T) {
	value := rapid.OneOf(
		rapid.Just(""),
		rapid.StringMatching(`[a-z0-9-]{1,40}`),
		rapid.String(), // quotes, backslashes, control characters, <>&, any rune
	)
	rapid.Check(t, func(t *rapid.T) {
		m := eventstore.Metadata{
			CorrelationID:  value.Draw(t, "correlation"),
			CausationID:    value.Draw(t, "causation"),
			IdempotencyKey: value.Draw(t, "idempotency"),
			Actor:          value.Draw(t, "actor"),
		}
		b := eventstore.EncodeMetadata(m)
		want, err := eventstore.DecodeMetadata(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMetadata(b)
		if err != nil || got != want {
			t.Fatalf("decodeMetadata(%s) = %+v, %v; DecodeMetadata gives %+v", b, got, err, want)
		}
	})
}

func TestDecodeMetadataOddInput(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `null`, `{"actor":"a","correlation_id":"c"}`, `{"actor":"a"} `, `{"actor":"a",}`,
		`{"actor":"a","actor":"b"}`, `{"other":"x","actor":"a"}`, `{"actor":"\u00e9"}`, `{"actor":1}`, `{"actor":"a"`,
	} {
		want, wantErr := eventstore.DecodeMetadata([]byte(in))
		got, err := decodeMetadata([]byte(in))
		if (err != nil) != (wantErr != nil) || got != want {
			t.Errorf("decodeMetadata(%q) = %+v, %v; DecodeMetadata gives %+v, %v", in, got, err, want, wantErr)
		}
	}
}

func TestDecodeMetadataTakesTheFastPath(t *testing.T) {
	m := eventstore.Metadata{CorrelationID: "0c6f1c1e", CausationID: "c", IdempotencyKey: "k-1", Actor: "José"}
	for _, m := range []eventstore.Metadata{m, {Actor: "bench"}, {}} {
		if got, ok := decodeCanonicalMetadata(eventstore.EncodeMetadata(m)); !ok || got != m {
			t.Errorf("fast path on %s: %+v, %v; want %+v, true", eventstore.EncodeMetadata(m), got, ok, m)
		}
	}
}
