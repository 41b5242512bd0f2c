package audit

import (
	"context"
	"fmt"

	"github.com/orderledger/orderledger/eventstore"
)

// DefaultBatchSize is how many events one read asks for when Options.BatchSize is 0: large
// enough that the round trips cost little next to the hashing, small enough to keep memory flat.
const DefaultBatchSize = 8192

// Options tune Verify and the digest functions.
type Options struct {
	// Stream, when set, limits Verify to that one stream, read with ReadStream. The digest
	// functions always cover the whole log and refuse it.
	Stream string
	// BatchSize is how many events one read asks for; 0 means DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after every batch with the number of events checked so far.
	// The total is not known in advance: the port has no count, only positions.
	Progress func(done uint64)
}

func (o Options) batchSize() int { return batchSizeOr(o.BatchSize) }

// Report is the outcome of a verification.
type Report struct {
	// OK is true when every event checked holds; FirstFailure is nil then.
	OK bool `json:"ok"`
	// Streams and Events count what was checked, up to and excluding the first failure.
	Streams uint64 `json:"streams"`
	Events  uint64 `json:"events"`
	// Position is that of the last event checked that holds: when all hold, the head of the
	// log as the verification started (of the stream, with Options.Stream), or the zero
	// position ("0-0") for an empty log.
	Position     eventstore.Position `json:"position"`
	FirstFailure *Failure            `json:"first_failure"`
}

// Kind classifies a failure.
type Kind string

const (
	// KindHashMismatch: the stored hash is not the one the event's fields and the previous
	// event's hash give (the event, or one before it, was altered).
	KindHashMismatch Kind = "hash_mismatch"
	// KindMissingVersion: the stream skips one or more versions (events were removed).
	KindMissingVersion Kind = "missing_version"
	// KindNotFromZero: the first event of the stream has a version above 0.
	KindNotFromZero Kind = "not_from_zero"
	// KindOutOfOrder: a version at or below one already seen in the stream, or a global
	// position at or before the previous event's.
	KindOutOfOrder Kind = "out_of_order"
)

// Failure names the first event at which the log stops being what its hashes promise.
type Failure struct {
	Stream   string              `json:"stream"`
	Version  uint64              `json:"version"`
	Position eventstore.Position `json:"position"`
	Kind     Kind                `json:"kind"`
	// Reason says what differs, in a sentence: the stored and recomputed hashes, or the
	// versions that are missing or out of place.
	Reason string `json:"reason"`
}

func (f *Failure) String() string {
	return fmt.Sprintf("stream %q version %d at position %s: %s", f.Stream, f.Version, f.Position, f.Reason)
}

// streamHead is the one entry kept per stream: its last version checked and that event's
// stored hash, which the next version must chain to.
type streamHead struct {
	version uint64
	hash    eventstore.Hash
}

// chainChecker follows events in global order and checks each against its stream's head.
type chainChecker struct {
	heads  map[string]*streamHead
	last   eventstore.Position
	report Report
}

func newChainChecker() *chainChecker {
	return &chainChecker{heads: make(map[string]*streamHead)}
}

// check checks events in order and returns the first failure, or nil. It counts every event
// that holds, so the report stops just before a failure.
func (c *chainChecker) check(events []eventstore.Event) *Failure {
	for i := range events {
		if f := c.checkOne(&events[i]); f != nil {
			c.report.FirstFailure = f
			return f
		}
	}
	return nil
}

func (c *chainChecker) checkOne(e *eventstore.Event) *Failure {
	fail := func(kind Kind, format string, args ...any) *Failure {
		return &Failure{Stream: e.Stream, Version: e.Version, Position: e.Position, Kind: kind, Reason: fmt.Sprintf(format, args...)}
	}
	if c.report.Events > 0 && e.Position.Compare(c.last) <= 0 {
		return fail(KindOutOfOrder, "position %s does not come after position %s, the event read before it", e.Position, c.last)
	}
	head, seen := c.heads[e.Stream]
	var prev eventstore.Hash
	switch {
	case !seen && e.Version != 0:
		return fail(KindNotFromZero, "the stream starts at version %d: %s missing", e.Version, versionRange(0, e.Version-1))
	case seen && e.Version <= head.version:
		return fail(KindOutOfOrder, "version %d comes after version %d of the same stream", e.Version, head.version)
	case seen && e.Version != head.version+1:
		return fail(KindMissingVersion, "version %d follows version %d: %s missing", e.Version, head.version, versionRange(head.version+1, e.Version-1))
	case seen:
		prev = head.hash
	}
	if got := e.Recompute(prev); got != e.Hash {
		return fail(KindHashMismatch, "stored hash %s, recomputed %s from the event's fields and the previous event's hash", e.Hash, got)
	}
	if seen {
		head.version, head.hash = e.Version, e.Hash
	} else {
		c.heads[e.Stream] = &streamHead{version: e.Version, hash: e.Hash}
		c.report.Streams++
	}
	c.report.Events++
	c.last = e.Position
	c.report.Position = e.Position
	return nil
}

func versionRange(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("version %d is", from)
	}
	return fmt.Sprintf("versions %d to %d are", from, to)
}

// Verify recomputes the hash chain of every stream over the log as it stands when Verify
// starts (up to Head), or over one stream when opts.Stream is set. A broken chain is not an
// error: it is reported in Report.FirstFailure. The error is for a store that cannot be read.
//
// Memory stays flat apart from one small entry per stream: the log is read in batches, and
// each event is checked against the hash and version of the previous event of its stream.
func Verify(ctx context.Context, store eventstore.Store, opts Options) (Report, error) {
	if opts.Stream != "" {
		return verifyStream(ctx, store, opts)
	}
	head, err := store.Head(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	c, err := scan(ctx, store, head, opts)
	if err != nil {
		return Report{}, err
	}
	return c.finish(), nil
}

func (c *chainChecker) finish() Report {
	c.report.OK = c.report.FirstFailure == nil
	return c.report
}

// scan checks the chains of every event at or before upTo and stops at the first failure.
func scan(ctx context.Context, store eventstore.Store, upTo eventstore.Position, opts Options) (*chainChecker, error) {
	c := newChainChecker()
	err := readAll(ctx, store, eventstore.Position{}, upTo, opts.batchSize(), func(events []eventstore.Event) error {
		if c.check(events) != nil {
			return errStop
		}
		if opts.Progress != nil {
			opts.Progress(c.report.Events)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	return c, nil
}

func verifyStream(ctx context.Context, store eventstore.Store, opts Options) (Report, error) {
	if err := eventstore.ValidateStreamName(opts.Stream); err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	c := newChainChecker()
	limit := opts.batchSize()
	for from := uint64(0); ; {
		events, err := store.ReadStream(ctx, opts.Stream, from, limit)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify stream %q: %w", opts.Stream, err)
		}
		if c.check(events) != nil {
			break
		}
		if opts.Progress != nil {
			opts.Progress(c.report.Events)
		}
		if len(events) < limit {
			break
		}
		from = events[len(events)-1].Version + 1
	}
	return c.finish(), nil
}
