package eventstore

import (
	"context"

	"github.com/google/uuid"
)

// Snapshot is the folded state of a stream as of one of its events, kept beside the log so
// that a stream that lives for years (a SKU's stock, a numbering series) is loaded from it and
// the events after it, not folded from its first event. It is a cache: never part of the log,
// of its hash chains or of an export, and always rebuildable by folding the stream.
type Snapshot struct {
	Stream string
	// Version and EventID name the last event folded into State. A snapshot whose event is
	// not at that version of the stream (a store restored from an older backup, a log
	// imported anew) is not used.
	Version uint64
	EventID uuid.UUID
	// Schema names the shape of State; a snapshot of another shape than the reader's is not
	// used, and is replaced by the next one saved.
	Schema string
	State  []byte
}

// Snapshots is implemented by stores that keep snapshots (SQLite and PostgreSQL, each in a
// table of its own). Callers find it with a type assertion and fold whole streams without it.
type Snapshots interface {
	// LoadSnapshot returns the snapshot saved last for stream; false when there is none.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, bool, error)
	// SaveSnapshot keeps s as stream's snapshot, in place of an older one; a snapshot older
	// than the one kept is ignored.
	SaveSnapshot(ctx context.Context, s Snapshot) error
}

// EventFinder is implemented by stores that find an event of a stream by its ID, however far
// back (SQLite and PostgreSQL, by the index that keeps an ID once per stream). A command
// handler asks it whether a command was applied long ago, so that its folded state need not
// remember every command ever applied.
type EventFinder interface {
	// FindEvent returns the event with id in stream; false when there is none.
	FindEvent(ctx context.Context, stream string, id uuid.UUID) (Event, bool, error)
}
