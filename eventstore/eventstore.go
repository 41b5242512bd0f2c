package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors shared by every adapter. Adapters wrap them with detail; match with errors.Is.
var (
	// ErrWrongExpectedRevision: the stream is not at the revision the append expected.
	ErrWrongExpectedRevision = errors.New("eventstore: wrong expected revision")
	// ErrInvalidEvent: an event or stream name the store refuses (empty type, bad JSON, …).
	ErrInvalidEvent = errors.New("eventstore: invalid event")
	// ErrDuplicateEventID: a batch repeats only part of an earlier batch, or an event ID twice.
	ErrDuplicateEventID = errors.New("eventstore: duplicate event id")
	// ErrUnavailable: the store cannot be reached.
	ErrUnavailable = errors.New("eventstore: store unavailable")
	// ErrStreamDeleted: the stream was deleted in the store by other means than this port
	// (KurrentDB's soft delete or tombstone), so nothing can be appended to it again.
	ErrStreamDeleted = errors.New("eventstore: stream deleted")
)

// MaxAppendSize bounds one append: the sum of AppendSize over its events. It is the default
// MaxAppendSize of a KurrentDB server (1 MiB, "the total size of all events in the append
// request": ClusterVNodeOptions.cs in kurrent-io/KurrentDB), which refuses a larger append
// whole; every adapter refuses the same appends, so that a log moves between stores. Append is
// atomic, so a caller with more to write splits it into several appends (import does).
const MaxAppendSize = 1 << 20

// EventOverhead is what AppendSize counts for each event beyond its data, metadata and type:
// room for what an adapter stores beside them (KurrentDB: recorded_at and the hash, in the
// event's metadata).
const EventOverhead = 256

// AppendSize is what e counts toward MaxAppendSize: its data, its canonical metadata, its type
// twice (KurrentDB counts a type in UTF-16 code units of two bytes, and a UTF-8 string has no
// more code units than bytes) and EventOverhead.
func AppendSize(e EventData) int {
	return len(e.Data) + len(EncodeMetadata(e.Metadata)) + 2*len(e.Type) + EventOverhead
}

// Metadata travels with every event: who asked for it, why, and under which idempotency key.
type Metadata struct {
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Actor          string `json:"actor,omitempty"`
}

// EventData is an event to append.
type EventData struct {
	ID       uuid.UUID
	Type     string // versioned name, e.g. "OrderPlaced.v1"
	Data     []byte // JSON, stored and hashed byte for byte
	Metadata Metadata
	// RecordedAt, when set, is kept (truncated to microseconds) instead of the store's clock;
	// import uses it to rebuild a log with identical hashes.
	RecordedAt time.Time
}

// Event is a stored event.
type Event struct {
	ID         uuid.UUID
	Stream     string
	Version    uint64
	Type       string
	Data       []byte
	Metadata   Metadata
	RecordedAt time.Time // UTC, microsecond precision
	Position   Position
	Hash       Hash
}

// AppendResult says where the last event of an append landed (or already was, for a retry).
type AppendResult struct {
	// Version is the stream version of the batch's last event.
	Version uint64
	// Position is the global position of the batch's last event.
	Position Position
	// Retried: the batch was already stored (its first event ID was in the stream), so
	// nothing was appended and Version and Position are where it was stored before.
	Retried bool
}

// Store is the port. Implementations are safe for concurrent use.
type Store interface {
	// Append writes events to the end of stream atomically, if the stream is at expected.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...EventData) (AppendResult, error)
	// ReadStream returns up to limit events of stream with version >= from, oldest first.
	// A stream that does not exist reads as empty.
	ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]Event, error)
	// ReadAll returns up to limit events after position from (exclusive), in global order.
	// The zero Position reads from the start. It returns only events that can no longer be
	// preceded by a late commit, so a caller that continues from the last event returned never
	// skips one.
	ReadAll(ctx context.Context, from Position, limit int) ([]Event, error)
	// Subscribe calls handle with every event after from (exclusive), in global order, in
	// batches: first catching up, then following live. It returns when ctx is done (with
	// ctx.Err()) or when handle returns an error (that error). Each event is delivered once.
	Subscribe(ctx context.Context, from Position, handle func(ctx context.Context, batch []Event) error) error
	// Head is the position of the last event that ReadAll can return now (zero when empty).
	Head(ctx context.Context) (Position, error)
	// Close releases connections.
	Close() error
}

// ExpectedRevision is the state a stream must be in for an append to proceed.
type ExpectedRevision struct {
	kind     expectKind
	revision uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

// Any appends whatever the stream's state.
func Any() ExpectedRevision { return ExpectedRevision{kind: expectAny} }

// NoStream appends only if the stream has no event.
func NoStream() ExpectedRevision { return ExpectedRevision{kind: expectNoStream} }

// StreamExists appends only if the stream has at least one event.
func StreamExists() ExpectedRevision { return ExpectedRevision{kind: expectStreamExists} }

// Exact appends only if the stream's last event has version v.
func Exact(v uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, revision: v} }

// IsAny, IsNoStream, IsStreamExists report the kind; Revision reports an exact revision.
func (e ExpectedRevision) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedRevision) IsStreamExists() bool { return e.kind == expectStreamExists }

// Revision returns the exact revision expected and true, or false for the other kinds.
func (e ExpectedRevision) Revision() (uint64, bool) { return e.revision, e.kind == expectExact }

// Check reports whether a stream whose last version is last (exists=false for an empty stream)
// satisfies e, as a wrapped ErrWrongExpectedRevision when it does not.
func (e ExpectedRevision) Check(stream string, last uint64, exists bool) error {
	ok := true
	switch e.kind {
	case expectNoStream:
		ok = !exists
	case expectStreamExists:
		ok = exists
	case expectExact:
		ok = exists && last == e.revision
	}
	if ok {
		return nil
	}
	actual := "no stream"
	if exists {
		actual = "version " + strconv.FormatUint(last, 10)
	}
	return fmt.Errorf("%w: stream %q expected %s, is at %s", ErrWrongExpectedRevision, stream, e, actual)
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectExact:
		return "version " + strconv.FormatUint(e.revision, 10)
	}
	return "any"
}

// Position is a place in the global order. Adapters fill it as they need: PostgreSQL uses
// (transaction id, sequence), SQLite (rowid, rowid), KurrentDB (commit, prepare). Positions
// from one store compare with Compare; the zero Position is before every event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// String is the opaque consistency token handed to clients: "<commit>-<prepare>".
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "-" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the form String produces.
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "-")
	if !ok {
		return Position{}, fmt.Errorf("position %q: want <commit>-<prepare>", s)
	}
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil || (len(c) > 1 && c[0] == '0') {
		return Position{}, fmt.Errorf("position %q: bad commit part", s)
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil || (len(pr) > 1 && pr[0] == '0') {
		return Position{}, fmt.Errorf("position %q: bad prepare part", s)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// MarshalText and UnmarshalText make a Position a JSON string.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
