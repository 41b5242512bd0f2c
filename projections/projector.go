package projections

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// projector builds one read model. It owns its tables and nothing else.
type projector interface {
	// name is how operators, the CLI and ?after= waits refer to it.
	name() string
	// tables lists what a rebuild clears.
	tables() []string
	// handles reports whether the projector needs events of a type; it never decodes others.
	handles(eventType string) bool
	// newBatch starts the in-memory work on one batch.
	newBatch(d dialect) batch
}

// batch applies a batch of events in three steps inside one transaction: load the rows the
// events touch, apply each event to them in memory, write back what changed.
type batch interface {
	// load reads the rows the events touch that are not in memory yet; a batch may load and
	// apply several times before it flushes.
	load(ctx context.Context, q queryer, events []envelope) error
	// apply must not do I/O. An error means this event cannot be projected (it contradicts
	// what the read model knows): the projector stops on it.
	apply(e envelope) error
	flush(ctx context.Context, tx execer) error
	// written is called once a flush has committed: the batch forgets what it wrote and
	// keeps the rows it holds for the next events, and says how many it holds.
	written() int
}

// envelope is an event a projector needs, decoded.
type envelope struct {
	meta eventstore.Event
	data domain.Event
}

// allProjectors lists every projector, in the order they are reported.
func allProjectors() []projector {
	return []projector{ordersProjector{}, customersProjector{}, inventoryProjector{}, salesProjector{}, ledgerProjector{}}
}

// Names lists the projectors, for the CLI and for WaitFor.
func Names() []string {
	ps := allProjectors()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name()
	}
	return names
}

// selectProjectors returns the named projectors, all of them when names is empty.
func selectProjectors(names []string) ([]projector, error) {
	all := allProjectors()
	if len(names) == 0 {
		return all, nil
	}
	var out []projector
	seen := map[string]bool{}
	for _, n := range names {
		found := false
		for _, p := range all {
			if p.name() == n {
				found = true
				if !seen[n] {
					out = append(out, p)
					seen[n] = true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("projections: no projector %q (there are %v)", n, Names())
		}
	}
	return out, nil
}

// typeSet is the set of event types a projector handles.
type typeSet map[string]bool

func typesOf(events ...domain.Event) typeSet {
	s := typeSet{}
	for _, e := range events {
		s[e.EventType()] = true
	}
	return s
}

// EventError is a broken event: one a projector cannot decode, of a type no one knows, or that
// contradicts its read model. The projector stops on it, before it, and says which it is.
type EventError struct {
	Projector string
	Position  eventstore.Position
	Stream    string
	Version   uint64
	Type      string
	EventID   uuid.UUID
	Err       error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("projector %s stopped at event %s (stream %s, version %d, type %s, id %s): %v",
		e.Projector, e.Position, e.Stream, e.Version, e.Type, e.EventID, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

func brokenEvent(projectorName string, ev eventstore.Event, err error) *EventError {
	return &EventError{
		Projector: projectorName, Position: ev.Position, Stream: ev.Stream, Version: ev.Version,
		Type: ev.Type, EventID: ev.ID, Err: err,
	}
}

// pick is decode for a batch the feed decoded already.
func pick(projectorName string, batch []eventstore.Event, decoded []decodedEvent, wants func(string) bool) ([]envelope, int, *EventError) {
	envs := make([]envelope, 0, len(batch))
	for i, ev := range batch {
		d := decoded[i]
		if errors.Is(d.err, errUnknownType) {
			return envs, i, brokenEvent(projectorName, ev, d.err)
		}
		if !wants(ev.Type) {
			continue
		}
		if d.err != nil {
			return envs, i, brokenEvent(projectorName, ev, d.err)
		}
		envs = append(envs, envelope{meta: ev, data: d.data})
	}
	return envs, len(batch), nil
}

// decode returns the events of batch that wants selects, decoded, up to the first broken one.
// It returns the index of that broken event (len(batch) when there is none) and its error.
// Unknown types are broken for every projector; types it does not want are skipped
// without being decoded.
func decode(projectorName string, batch []eventstore.Event, wants func(string) bool) ([]envelope, int, *EventError) {
	envs := make([]envelope, 0, len(batch))
	for i, ev := range batch {
		if !domain.KnownEventType(ev.Type) {
			return envs, i, brokenEvent(projectorName, ev, errUnknownType)
		}
		if !wants(ev.Type) {
			continue
		}
		data, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return envs, i, brokenEvent(projectorName, ev, err)
		}
		envs = append(envs, envelope{meta: ev, data: data})
	}
	return envs, len(batch), nil
}

// progress is how far a projector has read the log.
type progress struct {
	pos            eventstore.Position
	events         int64 // events from the start of the log up to and including pos
	lastRecordedAt int64 // microseconds; when the event at pos was recorded
}

// after returns the progress once batch is read too.
func (p progress) after(batch []eventstore.Event) progress {
	if len(batch) == 0 {
		return p
	}
	last := batch[len(batch)-1]
	return progress{pos: last.Position, events: p.events + int64(len(batch)), lastRecordedAt: last.RecordedAt.UnixMicro()}
}

// errFenced: another process took the projector over (a rebuild, or a runner after this one's
// lease expired). The transaction was rolled back.
var errFenced = errors.New("projections: the projector's lease was taken over")

// writer is who writes a projector: the lease owner and the generation it holds.
type writer struct {
	owner      string
	generation int64
	leaseTTL   time.Duration
	now        func() time.Time
}

// commitBatch projects envs onto the rows b holds and moves the projector's checkpoint from
// `from` to `to` in one transaction. An event that cannot be applied comes back as
// *EventError. After an error, b may hold changes that were not committed.
func (s *ReadStore) commitBatch(ctx context.Context, p projector, w writer, from, to progress, b batch, envs []envelope) error {
	var changed []string
	err := s.inCheckpointTx(ctx, p.name(), w, from, to, func(q queryer, tx execer) error {
		if err := b.load(ctx, q, envs); err != nil {
			return fmt.Errorf("projector %s: load: %w", p.name(), err)
		}
		if err := applyAll(p, b, envs); err != nil {
			return err
		}
		changed = changedDocuments(b)
		return b.flush(ctx, tx)
	})
	// Before the caller publishes `to`; whether the commit took or not, the cached documents
	// the batch touched may no longer be what the tables hold.
	s.forgetDocuments(p.name(), changed)
	return err
}

// flushBatch writes what a batch applied in memory and moves the checkpoint from `from` to
// `to` in one transaction.
func (s *ReadStore) flushBatch(ctx context.Context, p projector, w writer, from, to progress, b batch) error {
	changed := changedDocuments(b)
	err := s.inCheckpointTx(ctx, p.name(), w, from, to, func(_ queryer, tx execer) error { return b.flush(ctx, tx) })
	s.forgetDocuments(p.name(), changed)
	return err
}

// inCheckpointTx runs write in a transaction that first moves the projector's checkpoint from
// `from` to `to`, on the condition that the row is still at `from` under w's lease and
// generation. That also locks the row, so two writers of one projector can never interleave,
// and the rows and the checkpoint commit together or not at all. write reads what it needs
// through q and writes through tx.
//
// On SQLite the transaction may hold other projectors' batches too (see sqliteCommits). On
// PostgreSQL it is one round trip (see pipelineCheckpointTx), and q reads
// outside it. That is sound because only the projector's writer writes its tables, and every
// write moves its checkpoint: rows read after the checkpoint was at `from` are what they were
// at `from`, unless the transaction finds the checkpoint moved and fails.
func (s *ReadStore) inCheckpointTx(ctx context.Context, name string, w writer, from, to progress, write func(q queryer, tx execer) error) error {
	if s.dialect.postgres {
		return s.pipelineCheckpointTx(ctx, name, w, from, to, write)
	}
	return s.groupCheckpointTx(ctx, name, w, from, to, write)
}

// writeErr says which projector failed to write, and leaves a broken event as it is.
func writeErr(name string, err error) error {
	var broken *EventError
	if errors.As(err, &broken) {
		return err
	}
	return fmt.Errorf("projector %s: write: %w", name, err)
}

// applyAll applies events to a batch in memory; the first that fails is a broken event.
func applyAll(p projector, b batch, envs []envelope) error {
	for _, e := range envs {
		if err := safeApply(b, e); err != nil {
			return brokenEvent(p.name(), e.meta, err)
		}
	}
	return nil
}

// safeApply turns a panic in a projector's apply, a bug, into an error about the event.
func safeApply(b batch, e envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return b.apply(e)
}
