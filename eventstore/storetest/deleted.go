package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

// testDeletedStreams deletes streams behind the store's back, softly and for good: each reads
// as empty and refuses every kind of append with ErrStreamDeleted, storing nothing, while a
// stream beside them goes on as before and $all shows no system event.
func testDeletedStreams(t *testing.T, h Harness) {
	d, ok := h.(Deleting)
	if !ok {
		t.Skip("the harness does not implement storetest.Deleting: its store has no way to delete a stream")
	}
	store := h.NewStore(t)
	for _, stream := range []string{"deleted-soft", "deleted-hard", "deleted-not"} {
		mustAppend(t, store, stream, eventstore.NoStream(), NewEvents(3, "Deleted.v1")...)
	}
	d.SoftDelete(t, store, "deleted-soft")
	d.Tombstone(t, store, "deleted-hard")

	for _, stream := range []string{"deleted-soft", "deleted-hard"} {
		if got := readStream(t, store, stream); len(got) != 0 {
			t.Errorf("deleted stream %q reads %d events, want none", stream, len(got))
		}
		for _, expected := range []eventstore.ExpectedRevision{eventstore.NoStream(), eventstore.Any(), eventstore.StreamExists(), eventstore.Exact(2), eventstore.Exact(0)} {
			_, err := store.Append(t.Context(), stream, expected, NewEvents(2, "AfterDelete.v1")...)
			if !errors.Is(err, eventstore.ErrStreamDeleted) {
				t.Errorf("append to deleted stream %q expecting %v: err %v, want ErrStreamDeleted", stream, expected, err)
			}
		}
		if got := readStream(t, store, stream); len(got) != 0 {
			t.Errorf("refused appends left %d events in deleted stream %q", len(got), stream)
		}
	}

	mustAppend(t, store, "deleted-not", eventstore.Exact(2), NewEvent("Deleted.v1", `{}`))
	if got := readStream(t, store, "deleted-not"); len(got) != 4 {
		t.Errorf("the stream beside the deleted ones holds %d events, want 4", len(got))
	}
	for _, e := range readAll(t, store, 0) {
		if strings.HasPrefix(e.Type, "$") || strings.HasPrefix(e.Stream, "$") {
			t.Errorf("ReadAll returns the system event %s of type %s", describe(e), e.Type)
		}
		if strings.HasPrefix(e.Type, "AfterDelete") {
			t.Errorf("ReadAll returns %s, appended to a deleted stream", describe(e))
		}
	}
	if h := head(t, store); h.IsZero() {
		t.Errorf("Head is zero with events in the log")
	}
}
