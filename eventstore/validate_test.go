package eventstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// eventOfSize returns an event whose AppendSize is exactly size.
func eventOfSize(t *testing.T, size int) eventstore.EventData {
	t.Helper()
	e := eventstore.EventData{ID: uuid.New(), Type: "Sized.v1", Data: []byte(`""`)}
	pad := size - eventstore.AppendSize(e)
	if pad < 0 {
		t.Fatalf("no event is as small as %d bytes", size)
	}
	e.Data = []byte(`"` + strings.Repeat("x", pad) + `"`)
	if got := eventstore.AppendSize(e); got != size {
		t.Fatalf("built an event of %d bytes, want %d", got, size)
	}
	return e
}

func TestAppendSizeCountsDataMetadataTypeTwiceAndOverhead(t *testing.T) {
	e := eventstore.EventData{ID: uuid.New(), Type: "Größe.v1", Data: []byte(`{"a":1}`), Metadata: eventstore.Metadata{Actor: "zoë"}}
	want := len(`{"a":1}`) + len(`{"actor":"zoë"}`) + 2*len("Größe.v1") + eventstore.EventOverhead
	if got := eventstore.AppendSize(e); got != want {
		t.Errorf("AppendSize %d, want %d", got, want)
	}
}

func TestValidateAppendSizeLimitAtItsEdge(t *testing.T) {
	half := eventstore.MaxAppendSize / 2
	cases := []struct {
		name   string
		events func(t *testing.T) []eventstore.EventData
		ok     bool
	}{
		{"OneEventAtTheLimit", func(t *testing.T) []eventstore.EventData {
			return []eventstore.EventData{eventOfSize(t, eventstore.MaxAppendSize)}
		}, true},
		{"OneEventOneByteOver", func(t *testing.T) []eventstore.EventData {
			return []eventstore.EventData{eventOfSize(t, eventstore.MaxAppendSize+1)}
		}, false},
		{"TwoEventsAtTheLimit", func(t *testing.T) []eventstore.EventData {
			return []eventstore.EventData{eventOfSize(t, half), eventOfSize(t, eventstore.MaxAppendSize-half)}
		}, true},
		{"TwoEventsOneByteOver", func(t *testing.T) []eventstore.EventData {
			return []eventstore.EventData{eventOfSize(t, half), eventOfSize(t, eventstore.MaxAppendSize-half+1)}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := eventstore.ValidateAppend("sized-1", c.events(t))
			if c.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Errorf("err %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestValidateAppendRefusesSystemEventTypes(t *testing.T) {
	for _, typ := range []string{"$", "$metadata", "$>"} {
		e := eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`)}
		if err := eventstore.ValidateAppend("order-1", []eventstore.EventData{e}); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("type %q: err %v, want ErrInvalidEvent", typ, err)
		}
	}
	e := eventstore.EventData{ID: uuid.New(), Type: "Paid$.v1", Data: []byte(`{}`)}
	if err := eventstore.ValidateAppend("order-1", []eventstore.EventData{e}); err != nil {
		t.Errorf("a $ after the first byte is an ordinary character: %v", err)
	}
}
