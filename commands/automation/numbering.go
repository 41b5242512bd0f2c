package automation

import (
	"context"
	"fmt"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
)

// maxNumbersPerAppend bounds how many invoice numbers one append takes, so that one
// transaction stays short.
const maxNumbersPerAppend = 256

// invoiceNumbering takes invoice numbers for the lanes. Every number is an append to the one
// series stream, and appends to one stream go one after another: numbered one at a time, the
// whole automation would invoice no faster than one series append after another allows. So
// the lanes' requests queue here and one goroutine takes, in each append, the numbers of
// every request that queued while the last append was under way. The series decides them
// together (domain.DecideAssignInvoiceNumbers), gapless and once per order, and each number is
// stored with the ID it would have had taken alone, derived from its order (see assign): a
// replay after a crash, batched with other orders or not, finds the number it took.
type invoiceNumbering struct {
	h        *commands.Handler
	requests chan *numberRequest
}

type numberRequest struct {
	cmd    domain.AssignInvoiceNumber
	meta   commands.Meta
	answer chan numberAnswer // buffered: the numbering never waits for a lane
}

type numberAnswer struct {
	res commands.Result
	err error
}

func newInvoiceNumbering(h *commands.Handler) *invoiceNumbering {
	return &invoiceNumbering{h: h, requests: make(chan *numberRequest, maxNumbersPerAppend)}
}

// assign asks for cmd's number and waits for it. The answer is the number's event appended
// now, or AlreadyApplied for an order numbered before; its Version is the number's.
// Its command's ID is derived from the order alone (see commandMeta).
func (n *invoiceNumbering) assign(ctx context.Context, cmd domain.AssignInvoiceNumber, meta commands.Meta) (commands.Result, error) {
	req := &numberRequest{cmd: cmd, meta: meta, answer: make(chan numberAnswer, 1)}
	select {
	case n.requests <- req:
	case <-ctx.Done():
		return commands.Result{}, ctx.Err()
	}
	select {
	case a := <-req.answer:
		return a.res, a.err
	case <-ctx.Done():
		return commands.Result{}, ctx.Err()
	}
}

// run numbers the requests until ctx is done; requests then left unanswered see ctx done too.
func (n *invoiceNumbering) run(ctx context.Context) {
	batch := make([]*numberRequest, 0, maxNumbersPerAppend)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case req := <-n.requests:
			batch = append(batch, req)
		}
	gather:
		for len(batch) < maxNumbersPerAppend {
			select {
			case req := <-n.requests:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		n.number(ctx, batch)
	}
}

// number takes the numbers of a batch in one append and answers each request.
func (n *invoiceNumbering) number(ctx context.Context, batch []*numberRequest) {
	// Filled by the last decision, the one appended: for each request, the number its order
	// had already, or the event that numbers it now if the request is the first for its order.
	// The series remembers the orders of its last numbers only; a request applied before those
	// (a lane replaying an old event) is recognised by its event, which the handler finds, and
	// its number is read from there.
	var (
		had  []int64
		mine []*domain.InvoiceNumberAssigned
		old  []bool
	)
	res, err := commands.ExecuteBatch(ctx, n.h, domain.InvoiceSeriesStream, domain.EvolveSeries, func(s domain.Series, applied func(commands.Meta) bool) ([]commands.Caused, error) {
		old = make([]bool, len(batch))
		cmd := domain.AssignInvoiceNumbers{Orders: make([]domain.AssignInvoiceNumber, 0, len(batch))}
		for i, req := range batch {
			if _, ok := s.NumberFor(domain.InvoiceKey(req.cmd.OrderID)); !ok && applied(req.meta) {
				old[i] = true
				continue
			}
			cmd.Orders = append(cmd.Orders, req.cmd)
		}
		events, err := domain.DecideAssignInvoiceNumbers(s, cmd)
		if err != nil {
			return nil, err
		}
		taken := make(map[string]domain.InvoiceNumberAssigned, len(events))
		for _, e := range events {
			a := e.(domain.InvoiceNumberAssigned)
			taken[a.OrderID] = a
		}
		had, mine = make([]int64, len(batch)), make([]*domain.InvoiceNumberAssigned, len(batch))
		claimed := make(map[string]bool, len(events))
		caused := make([]commands.Caused, 0, len(events))
		for i, req := range batch {
			if old[i] {
				continue
			}
			if number, ok := s.NumberFor(domain.InvoiceKey(req.cmd.OrderID)); ok {
				had[i] = number
				continue
			}
			a := taken[req.cmd.OrderID]
			if claimed[req.cmd.OrderID] {
				had[i] = a.Number // asked twice in this batch: the first request takes it
				continue
			}
			claimed[req.cmd.OrderID] = true
			mine[i] = &a
			caused = append(caused, commands.Caused{Meta: req.meta, Events: []domain.Event{a}})
		}
		return caused, nil
	})
	if _, _, refused := domain.KindOf(err); refused {
		// One request the series refuses would refuse them all: each alone, so that the
		// refusal goes to its own event and the others get their numbers.
		for _, req := range batch {
			res, err := n.h.AssignInvoiceNumber(ctx, req.cmd, req.meta)
			req.answer <- numberAnswer{res, err}
		}
		return
	}
	if err != nil {
		for _, req := range batch {
			req.answer <- numberAnswer{err: err}
		}
		return
	}
	for i, req := range batch {
		if old[i] {
			res, found, err := commands.Applied(ctx, n.h, domain.InvoiceSeriesStream, req.meta)
			if err == nil && !found {
				err = fmt.Errorf("automation: invoice number of order %s: its event is no longer found", req.cmd.OrderID)
			}
			req.answer <- numberAnswer{res, err}
			continue
		}
		if a := mine[i]; a != nil {
			req.answer <- numberAnswer{res: commands.Result{Position: res.Position, Version: uint64(a.Number - 1), Events: []domain.Event{*a}}}
		} else {
			req.answer <- numberAnswer{res: commands.Result{Position: res.Position, Version: uint64(had[i] - 1), AlreadyApplied: true}}
		}
	}
}
