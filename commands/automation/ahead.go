package automation

import (
	"context"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// handleAhead handles at once the events that commands sent in answer to an event about the
// subject about have just appended about the same subject, instead of when the subscription
// delivers them: each step of an order's way to its invoice (stock reserved, allocation
// recorded and order confirmed, number taken, invoice recorded) follows the one before
// without waiting for the log to come round. They are handled as delivered events are, with
// the same command IDs, by the goroutine of their subject, which is where the subscription
// sends them too: it skips them when they come (see pipeline.aheadOfLog).
//
// The events of one subject handled ahead come after its events still waiting to be handled,
// and the reactions do not depend on that order: each step of the way to an invoice decides
// on the order's state as it is, and a cancellation, whenever it is handled, reverses what was
// done before it. An event whose handling fails is left to the log, and so is every one
// after it.
func (r *Runner) handleAhead(ctx context.Context, p *pipeline, about string, sent []sentCommand) {
	var ahead []delivered
	for _, s := range sent {
		if s.res.AlreadyApplied || len(s.res.Events) == 0 {
			continue
		}
		first := s.res.Version + 1 - uint64(len(s.res.Events))
		for i, de := range s.res.Events {
			typ := de.EventType()
			if !handledTypes[typ] || subject(de) != about {
				continue
			}
			ahead = append(ahead, delivered{eventstore.Event{
				ID: commands.EventID(s.meta.CommandID, i), Stream: s.stream, Version: first + uint64(i), Type: typ,
				Metadata: eventstore.Metadata{CorrelationID: s.meta.CorrelationID, CausationID: s.meta.CausationID, Actor: s.meta.Actor},
				Position: s.res.Position,
			}, de})
		}
	}
	if len(ahead) > 0 && allAllocationNews(ahead) {
		// The reservations of an order's lines, back together: recorded on the order in one
		// append rather than one after another.
		if r.recordAllocations(ctx, p, about, ahead) == nil {
			for _, d := range ahead {
				p.handledAhead(d.stored.ID)
			}
		}
		return
	}
	for _, d := range ahead {
		if r.react(ctx, d.stored, d.event, p) != nil {
			return
		}
		p.handledAhead(d.stored.ID)
	}
}

// delivered is an event as the subscription delivers it, with its domain value.
type delivered struct {
	stored eventstore.Event
	event  domain.Event
}

func allAllocationNews(events []delivered) bool {
	for _, d := range events {
		if _, ok := allocationNews(d.event); !ok {
			return false
		}
	}
	return true
}

// recordAllocations answers allocation news about one order, each event as reactions would
// with its record-allocation command, all in one append to the order's stream; then it
// handles ahead what that append records about the order (its confirmation).
func (r *Runner) recordAllocations(ctx context.Context, p *pipeline, about string, news []delivered) error {
	records := make([]domain.RecordLineAllocation, len(news))
	metas := make([]commands.Meta, len(news))
	at := r.h.Now()
	for i, d := range news {
		records[i], _ = allocationNews(d.event)
		records[i].At = at
		metas[i] = commandMeta(d.stored, recordAllocation(records[i].OrderID))
	}
	orderID := records[0].OrderID
	number := r.numberEarly(ctx, p, news[len(news)-1].stored, orderID, records)
	// Filled by the last decision, the one appended.
	var applied []bool
	var recorded [][]domain.Event
	res, err := commands.ExecuteBatch(ctx, r.h, domain.OrderStream(orderID), domain.EvolveOrder, func(o domain.Order, appliedBefore func(commands.Meta) bool) ([]commands.Caused, error) {
		applied = make([]bool, len(news))
		var todo []domain.RecordLineAllocation
		for i := range news {
			if applied[i] = appliedBefore(metas[i]); !applied[i] {
				todo = append(todo, records[i])
			}
		}
		decided, err := domain.DecideRecordLineAllocations(o, domain.RecordLineAllocations{Lines: todo})
		if err != nil {
			return nil, err
		}
		recorded = make([][]domain.Event, len(news))
		var caused []commands.Caused
		for i := range news {
			if applied[i] {
				continue
			}
			recorded[i], decided = decided[0], decided[1:]
			if len(recorded[i]) > 0 {
				caused = append(caused, commands.Caused{Meta: metas[i], Events: recorded[i]})
			}
		}
		return caused, nil
	})
	if err != nil {
		return err // a number taken early is recorded when the log brings it round
	}
	if number != nil {
		// The order is confirmed (or was cancelled meanwhile, whose invoice is then
		// reversed): its number is recorded on it now.
		if taken := <-number; taken.err == nil {
			r.handleAhead(ctx, p, about, []sentCommand{taken.sent})
		}
	}
	// Each command's result, as Execute would have answered it alone.
	sent := make([]sentCommand, len(news))
	version := res.Version + 1 - uint64(len(res.Events))
	for i, d := range news {
		one := commands.Result{Position: res.Position, Version: res.Version}
		switch {
		case applied[i]:
			one.AlreadyApplied = true
		case len(recorded[i]) == 0:
			one.Unchanged = true
		default:
			version += uint64(len(recorded[i]))
			one.Version, one.Events = version-1, recorded[i]
		}
		r.sent(d.stored, recordAllocation(orderID), one)
		sent[i] = sentCommand{metas[i], domain.OrderStream(orderID), one}
	}
	r.handleAhead(ctx, p, about, sent)
	return nil
}

// earlyNumber is an invoice number taken while the allocations that confirm its order are
// being recorded.
type earlyNumber struct {
	sent sentCommand
	err  error
}

// numberEarly takes the invoice number of an order that recording records will confirm, at
// the same time as they are recorded rather than after: one round trip less between an
// order's reservations and its invoice. What confirms is decided on the order as the handler
// has it cached, the state the recording decides on unless another process appended
// meanwhile; the only thing another process can append to an order being confirmed is its
// cancellation, and a number taken for a cancelled order is recorded all the same and the
// invoice reversed (see reactions, OrderInvoiced). It returns nil when the order is not to be
// confirmed now, or not cached.
//
// The number's command has an ID derived from the last allocation news, so a replay takes
// the same one; the series numbers an order once, so the confirmation's own request for a
// number, when its event is handled, finds it taken.
func (r *Runner) numberEarly(ctx context.Context, p *pipeline, last eventstore.Event, orderID string, records []domain.RecordLineAllocation) <-chan earlyNumber {
	confirms := false
	err := commands.ReadAtLeast(ctx, r.h, domain.OrderStream(orderID), domain.EvolveOrder, 0, func(o domain.Order, exists bool) error {
		if !exists || o.Status != domain.StatusPending && o.Status != domain.StatusBackordered {
			return nil
		}
		decided, err := domain.DecideRecordLineAllocations(o, domain.RecordLineAllocations{Lines: records})
		if err != nil {
			return nil
		}
		for _, events := range decided {
			for _, e := range events {
				if _, ok := e.(domain.OrderConfirmed); ok {
					confirms = true
				}
			}
		}
		return nil
	})
	if err != nil || !confirms {
		return nil
	}
	meta := numberMeta(last, orderID)
	out := make(chan earlyNumber, 1)
	p.wg.Go(func() {
		res, err := p.numbers.assign(ctx, domain.AssignInvoiceNumber{OrderID: orderID, At: r.h.Now()}, meta)
		if err == nil {
			r.sent(last, numberPurpose+orderID, res)
		}
		out <- earlyNumber{sentCommand{meta, domain.InvoiceSeriesStream, res}, err}
	})
	return out
}
