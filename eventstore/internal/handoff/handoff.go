package handoff

import (
	"context"
	"sync/atomic"

	"github.com/orderledger/orderledger/eventstore"
)

// Outcome is what a committer answers.
type Outcome struct {
	Result eventstore.AppendResult
	Err    error
}

// Ticket is one append's place in the queue. Adapters embed *Ticket in their request type.
type Ticket struct {
	state atomic.Int32
	done  chan Outcome // buffered: the committer answers once, after taking the ticket
}

const (
	queued int32 = iota
	taken
	withdrawn
)

// NewTicket returns a ticket waiting in the queue.
func NewTicket() *Ticket { return &Ticket{done: make(chan Outcome, 1)} }

// Take claims the ticket for a committer; false means its caller has gone and the append must
// not be applied.
func (t *Ticket) Take() bool { return t.state.CompareAndSwap(queued, taken) }

// Answer sends the outcome of a taken ticket.
func (t *Ticket) Answer(o Outcome) { t.done <- o }

// Done delivers the outcome (for tests that drive a committer directly).
func (t *Ticket) Done() <-chan Outcome { return t.done }

// Await waits for the outcome. If ctx ends or the committers stop (stopped closes) while the
// ticket is still queued, the ticket is withdrawn and Await returns ctx's error or closed;
// once a committer has taken it, Await waits for its answer whatever happens to ctx.
func (t *Ticket) Await(ctx context.Context, stopped <-chan struct{}, closed error) (eventstore.AppendResult, error) {
	select {
	case out := <-t.done:
		return out.Result, out.Err
	case <-ctx.Done():
		if t.state.CompareAndSwap(queued, withdrawn) {
			return eventstore.AppendResult{}, ctx.Err()
		}
	case <-stopped:
		if t.state.CompareAndSwap(queued, withdrawn) {
			return eventstore.AppendResult{}, closed
		}
	}
	out := <-t.done
	return out.Result, out.Err
}
