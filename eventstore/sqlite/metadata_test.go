package sqlite

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/orderledger/orderledger/eventstore"
)

// decodeMetadata must agree with eventstore.DecodeMetadata on what EncodeMetadata writes and on
// any other input.
func TestDecodeMetadataAgreesWithJSON(t *testing.T) {
	field := rapid.OneOf(rapid.Just(""), rapid.String(), rapid.StringMatching(`[a-z0-9-]{1,40}`))
	rapid.Check(t, func(t *rapid.T) {
		m := eventstore.Metadata{
			CorrelationID:  field.Draw(t, "correlation"),
			CausationID:    field.Draw(t, "causation"),
			IdempotencyKey: field.Draw(t, "idempotency"),
			Actor:          field.Draw(t, "actor"),
		}
		encoded := eventstore.EncodeMetadata(m)
		got, err := decodeMetadata(encoded)
		want, _ := eventstore.DecodeMetadata(encoded)
		if err != nil || got != want {
			t.Fatalf("decodeMetadata(%s) = %+v, %v; encoding/json reads %+v", encoded, got, err, want)
		}
	})
	for _, raw := range []string{
		``, `{}`, `{"actor":"a"}`, `{"actor":"a""causation_id":"b"}`, `{,"actor":"a"}`, `{"actor":"a",}`,
		`{"actor":"a"} `, `{"actor":"\u00e9"}`, `{"actor":"x\ty"}`, `{"other":"x"}`, `{"actor":1}`,
		"{\"actor\":\"\xff\"}", `{"actor":"a","actor":"b"}`, `{"actor":"a"`, `{"actor":"ü🐙"}`,
	} {
		got, err := decodeMetadata([]byte(raw))
		want, wantErr := eventstore.DecodeMetadata([]byte(raw))
		if got != want || (err == nil) != (wantErr == nil) {
			t.Errorf("decodeMetadata(%q) = %+v, %v; encoding/json: %+v, %v", raw, got, err, want, wantErr)
		}
	}
}
