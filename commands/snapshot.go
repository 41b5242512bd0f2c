package commands

import (
	"context"
	"log/slog"

	"github.com/orderledger/orderledger/eventstore"
)

// defaultSnapshotEvery is how many events a stream grows by before its snapshot is saved
// again: loading it then reads at most that many events after the snapshot.
const defaultSnapshotEvery = 500

// snapshotting is a state that can be kept as a snapshot (domain.Stock, domain.Series): the
// streams that live for years. *S must implement snapshotted.
type snapshotting interface {
	SnapshotSchema() string
	MarshalSnapshot() ([]byte, error)
}

type snapshotted interface {
	snapshotting
	UnmarshalSnapshot([]byte) error
}

// loadSnapshot starts entry, an empty fold of stream, from the stream's snapshot when the store
// keeps one of the state's shape whose last event is still in the stream as it was: it checks
// that event's ID, so a snapshot left by another log (a restored backup, a log imported anew)
// is not used. Without a usable snapshot the entry stays empty and the stream is folded from
// its first event, after which the next snapshot is saved. Only a failing read is an error.
func loadSnapshot[S any](ctx context.Context, h *Handler, stream string, entry *cacheEntry) error {
	var state S
	target, ok := any(&state).(snapshotted)
	if !ok || h.snapshots == nil {
		return nil
	}
	snap, found, err := h.snapshots.LoadSnapshot(ctx, stream)
	if err != nil || !found || snap.Schema != target.SnapshotSchema() {
		return err
	}
	at, err := h.store.ReadStream(ctx, stream, snap.Version, 1)
	if err != nil {
		return err
	}
	if len(at) == 0 || at[0].ID != snap.EventID {
		slog.WarnContext(ctx, "commands: a snapshot does not match its stream; folding the stream from its start",
			"stream", stream, "version", snap.Version)
		return nil
	}
	if err := target.UnmarshalSnapshot(snap.State); err != nil {
		slog.WarnContext(ctx, "commands: a snapshot cannot be read; folding the stream from its start",
			"stream", stream, "version", snap.Version, "error", err)
		return nil
	}
	entry.state = state
	entry.version = int64(snap.Version)
	entry.position = at[0].Position
	entry.snapshot = int64(snap.Version)
	entry.recent.add(at[0].ID, eventRef{version: at[0].Version, position: at[0].Position})
	return nil
}

// saveSnapshot saves entry's state as stream's snapshot once the stream has grown by
// snapshotEvery events since the last one. A snapshot is a cache: failing to save one is
// logged, and the stream is folded from the previous one meanwhile.
func saveSnapshot(ctx context.Context, h *Handler, stream string, entry *cacheEntry) {
	if h.snapshots == nil || entry.version < 0 || entry.version-entry.snapshot < h.snapshotEvery {
		return
	}
	state, ok := entry.state.(snapshotting)
	if !ok {
		return
	}
	id, ok := entry.recent.idAt(uint64(entry.version))
	if !ok {
		return // the last event's ID is not at hand; the next event will have it
	}
	data, err := state.MarshalSnapshot()
	if err == nil {
		err = h.snapshots.SaveSnapshot(ctx, eventstore.Snapshot{
			Stream: stream, Version: uint64(entry.version), EventID: id, Schema: state.SnapshotSchema(), State: data,
		})
	}
	if err != nil {
		slog.WarnContext(ctx, "commands: saving a snapshot failed", "stream", stream, "version", entry.version, "error", err)
		return
	}
	entry.snapshot = entry.version
}
