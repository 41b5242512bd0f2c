package postgres

import (
	"bytes"
	"unicode/utf8"

	"github.com/orderledger/orderledger/eventstore"
)

// metadataKeys open the fields of eventstore.Metadata, in the order EncodeMetadata writes them,
// up to the value's opening quote.
var metadataKeys = [...][]byte{
	[]byte(`"correlation_id":"`),
	[]byte(`"causation_id":"`),
	[]byte(`"idempotency_key":"`),
	[]byte(`"actor":"`),
}

// decodeMetadata reads stored metadata. It parses the canonical form EncodeMetadata writes
// directly when no value needs an escape, which is nearly always: json.Unmarshal was close to
// half of ReadAll's CPU. Anything else goes to eventstore.DecodeMetadata, so the result is the
// same either way.
func decodeMetadata(b []byte) (eventstore.Metadata, error) {
	if m, ok := decodeCanonicalMetadata(b); ok {
		return m, nil
	}
	return eventstore.DecodeMetadata(b)
}

func decodeCanonicalMetadata(b []byte) (eventstore.Metadata, bool) {
	var values [len(metadataKeys)]string
	rest, ok := bytes.CutPrefix(b, []byte("{"))
	if !ok {
		return eventstore.Metadata{}, false
	}
	for field := 0; !bytes.Equal(rest, []byte("}")); field++ {
		if field > 0 {
			if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
				return eventstore.Metadata{}, false
			}
		}
		// Keys come in declaration order, each at most once; empty values are left out.
		for field < len(metadataKeys) && !bytes.HasPrefix(rest, metadataKeys[field]) {
			field++
		}
		if field == len(metadataKeys) {
			return eventstore.Metadata{}, false
		}
		rest = rest[len(metadataKeys[field]):]
		end := bytes.IndexByte(rest, '"')
		if end <= 0 || !plainJSONString(rest[:end]) {
			return eventstore.Metadata{}, false
		}
		values[field] = string(rest[:end])
		rest = rest[end+1:]
	}
	return eventstore.Metadata{CorrelationID: values[0], CausationID: values[1], IdempotencyKey: values[2], Actor: values[3]}, true
}

// plainJSONString reports whether s is the body of a JSON string without escapes, whose bytes
// are therefore its value.
func plainJSONString(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(s)
}
