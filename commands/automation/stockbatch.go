package automation

import (
	"context"
	"fmt"
	"sync"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
)

// maxStockPerAppend bounds how many commands on one SKU one append takes, so that one
// transaction stays short.
const maxStockPerAppend = 256

// stockBatching sends the lanes' commands on SKUs — reservations, releases, shipments,
// restocks — to each SKU's stream in batches. Appends to one stream go one after another, so
// one append per command would have every order with a line of a popular SKU wait for all the
// orders before it on that SKU, one round trip each: the lag grows with the SKU's share of the
// orders. Here the commands on a SKU queue while its last append is under way, and the next
// append takes them all, decided together on the stock as one after another would
// (domain.DecideStockCommands: first come, first served, never oversold). Different SKUs are
// appended to at once, each by a goroutine of its own that lives while the SKU has commands
// waiting. Every event keeps the ID it would have had sent alone, derived from its command's
// ID, so a replay after a crash, batched with other commands or not, appends nothing twice.
type stockBatching struct {
	h     *commands.Handler
	ctx   context.Context
	spawn func(func()) // starts a SKU's goroutine, tracked by the pipeline

	mu sync.Mutex
	// waiting holds, for each SKU being appended to, its commands waiting: a SKU has an
	// entry, empty or not, exactly while a goroutine works on it.
	waiting map[string][]*stockRequest
}

type stockRequest struct {
	cmd    domain.StockCommand
	meta   commands.Meta
	answer chan sendAnswer // buffered: a SKU's goroutine never waits for a lane
}

type sendAnswer struct {
	res commands.Result
	err error
}

func newStockBatching(ctx context.Context, h *commands.Handler, spawn func(func())) *stockBatching {
	return &stockBatching{h: h, ctx: ctx, spawn: spawn, waiting: make(map[string][]*stockRequest)}
}

// send queues cmd on sku's stream and waits for its result: as Execute would have answered it
// alone.
func (b *stockBatching) send(ctx context.Context, sku string, cmd domain.StockCommand, meta commands.Meta) (commands.Result, error) {
	req := &stockRequest{cmd: cmd, meta: meta, answer: make(chan sendAnswer, 1)}
	b.mu.Lock()
	queue, busy := b.waiting[sku]
	b.waiting[sku] = append(queue, req)
	b.mu.Unlock()
	if !busy {
		b.spawn(func() { b.work(sku) })
	}
	select {
	case a := <-req.answer:
		return a.res, a.err
	case <-ctx.Done():
		return commands.Result{}, ctx.Err()
	}
}

// work appends the commands waiting on sku, a batch at a time, until none is left.
func (b *stockBatching) work(sku string) {
	for {
		b.mu.Lock()
		queue := b.waiting[sku]
		if len(queue) == 0 {
			delete(b.waiting, sku)
			b.mu.Unlock()
			return
		}
		n := min(len(queue), maxStockPerAppend)
		batch := queue[:n:n]
		b.waiting[sku] = queue[n:]
		b.mu.Unlock()
		b.append(sku, batch)
	}
}

// append decides a batch on sku's stream in one append and answers each request.
func (b *stockBatching) append(sku string, batch []*stockRequest) {
	// Filled by the last decision, the one appended.
	var (
		applied []bool
		decided [][]domain.Event
	)
	res, err := commands.ExecuteBatch(b.ctx, b.h, domain.StockStream(sku), domain.EvolveStock, func(s domain.Stock, appliedBefore func(commands.Meta) bool) ([]commands.Caused, error) {
		applied = make([]bool, len(batch))
		todo := make([]domain.StockCommand, 0, len(batch))
		for i, req := range batch {
			if applied[i] = appliedBefore(req.meta); !applied[i] {
				todo = append(todo, req.cmd)
			}
		}
		out, err := domain.DecideStockCommands(s, todo)
		if err != nil {
			return nil, err
		}
		decided = make([][]domain.Event, len(batch))
		caused := make([]commands.Caused, 0, len(todo))
		for i, req := range batch {
			if applied[i] {
				continue
			}
			decided[i], out = out[0], out[1:]
			if len(decided[i]) > 0 {
				caused = append(caused, commands.Caused{Meta: req.meta, Events: decided[i]})
			}
		}
		return caused, nil
	})
	if _, _, refused := domain.KindOf(err); refused {
		// One command the stock refuses would refuse them all: each alone, so that the
		// refusal goes to its own event and the others are decided.
		for _, req := range batch {
			res, err := sendStockAlone(b.ctx, b.h, req.cmd, req.meta)
			req.answer <- sendAnswer{res, err}
		}
		return
	}
	if err != nil {
		for _, req := range batch {
			req.answer <- sendAnswer{err: err}
		}
		return
	}
	version := res.Version + 1 - uint64(len(res.Events))
	for i, req := range batch {
		one := commands.Result{Position: res.Position, Version: res.Version}
		switch {
		case applied[i]:
			one.AlreadyApplied = true
		case len(decided[i]) == 0:
			one.Unchanged = true
		default:
			version += uint64(len(decided[i]))
			one.Version, one.Events = version-1, decided[i]
		}
		req.answer <- sendAnswer{res: one}
	}
}

// sendStockAlone sends one stock command through the handler, as its own append.
func sendStockAlone(ctx context.Context, h *commands.Handler, cmd domain.StockCommand, meta commands.Meta) (commands.Result, error) {
	switch c := cmd.(type) {
	case domain.ReserveStock:
		return h.ReserveStock(ctx, c, meta)
	case domain.ReleaseStock:
		return h.ReleaseStock(ctx, c, meta)
	case domain.ShipStock:
		return h.ShipStock(ctx, c, meta)
	case domain.RestockReturn:
		return h.RestockReturn(ctx, c, meta)
	}
	return commands.Result{}, fmt.Errorf("automation: %T is not a stock command", cmd)
}
