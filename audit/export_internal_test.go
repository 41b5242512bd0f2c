package audit

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// appendMetadata must write exactly the canonical bytes, whatever the strings hold.
func TestAppendMetadataIsEncodeMetadata(t *testing.T) {
	values := []string{"", "plain", "corr-42", `"quoted"`, `back\slash`, "<b>&amp;</b>", "tab\there", "nul\x00",
		"café", "\u2028line\u2029", "emoji 🧾", "bad utf-8 \xff\xfe", "\x7f"}
	for _, a := range values {
		for _, b := range values {
			for _, m := range []eventstore.Metadata{
				{CorrelationID: a, Actor: b},
				{CausationID: a, IdempotencyKey: b},
				{CorrelationID: a, CausationID: b, IdempotencyKey: a, Actor: b},
			} {
				if got, want := appendMetadata(nil, m), eventstore.EncodeMetadata(m); !bytes.Equal(got, want) {
					t.Fatalf("appendMetadata(%+v) = %s, EncodeMetadata gives %s", m, got, want)
				}
			}
		}
	}
}

func TestAppendRecordedAtIsTheLayout(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0),
		time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		times = append(times, time.UnixMicro(r.Int64N(1<<52)-1<<51))
	}
	for _, tm := range times {
		if got, want := string(appendRecordedAt(nil, tm)), tm.UTC().Format(RecordedAtLayout); got != want {
			t.Fatalf("appendRecordedAt(%v) = %s, want %s", tm, got, want)
		}
	}
}
