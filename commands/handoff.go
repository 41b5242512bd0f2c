package commands

import (
	"sync/atomic"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// PlacedListener hears of an order placed through the handler as soon as it is appended:
// placed is the event as stored, but for its data and its recorded time, which the append does
// not answer.
type PlacedListener func(placed eventstore.Event, order domain.OrderPlaced)

// handoff holds the listeners of placed orders.
type handoff struct {
	listeners atomic.Pointer[[]PlacedListener]
}

// OnOrderPlaced registers listen to hear of every order this handler places from now on. It is
// the write path's hand-off to the automation, which then reserves the order's stock without
// waiting for the log subscription to wake up and deliver the placement. listen is called on
// the placing request's goroutine, before it is answered: it must not block.
func (h *Handler) OnOrderPlaced(listen PlacedListener) {
	for {
		old := h.handoff.listeners.Load()
		var next []PlacedListener
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, listen)
		if h.handoff.listeners.CompareAndSwap(old, &next) {
			return
		}
	}
}

// placed tells the listeners of an order placed now (not one answered from the stream).
func (h *Handler) placed(res Result, meta Meta) {
	listeners := h.handoff.listeners.Load()
	if listeners == nil || res.AlreadyApplied || len(res.Events) != 1 {
		return
	}
	order, ok := res.Events[0].(domain.OrderPlaced)
	if !ok {
		return
	}
	stored := eventstore.Event{
		ID:       EventID(meta.CommandID, 0),
		Stream:   domain.OrderStream(order.OrderID),
		Version:  res.Version,
		Type:     order.EventType(),
		Metadata: storedMetadata(meta),
		Position: res.Position,
	}
	for _, listen := range *listeners {
		listen(stored, order)
	}
}
