package projections

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
)

// TestPipelinedBatchAfterATakeover: on PostgreSQL a batch reads the rows it needs before its
// transaction. After a rebuild took the projector over and emptied its tables, the batch's
// events contradict the empty tables; the writer must learn it was fenced off, not stop on a
// broken event.
func TestPipelinedBatchAfterATakeover(t *testing.T) {
	ctx := t.Context()
	s, err := OpenReadStore(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := ordersProjector{}
	if err := s.ensureStateRows(ctx, []string{p.name()}); err != nil {
		t.Fatal(err)
	}
	cp, holds, err := s.acquire(ctx, p.name(), "runner", time.Minute, time.Now())
	if err != nil || !holds {
		t.Fatalf("lease: holds %v, err %v", holds, err)
	}
	w := writer{owner: "runner", generation: cp.generation, leaseTTL: time.Minute, now: time.Now}
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	env := func(pos uint64, e domain.Event) envelope {
		return envelope{meta: eventstore.Event{ID: uuid.New(), Stream: domain.OrderStream("o1"), Type: e.EventType(),
			Position: eventstore.Position{Commit: pos, Prepare: pos}, RecordedAt: at}, data: e}
	}
	placed := env(1, domain.OrderPlaced{OrderID: "o1", CustomerID: "c1", Channel: "web", Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: "S", Quantity: 1, UnitPrice: 100}}, Subtotal: 100, Total: 100, PlacedAt: at})
	first := progress{pos: placed.meta.Position, events: 1}
	if err := s.commitBatch(ctx, p, w, progress{}, first, p.newBatch(s.dialect), []envelope{placed}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.takeOver(ctx, []projector{p}, "rebuild", time.Minute, time.Now); err != nil {
		t.Fatal(err)
	}
	confirmed := env(2, domain.OrderConfirmed{OrderID: "o1", ConfirmedAt: at})
	err = s.commitBatch(ctx, p, w, first, progress{pos: confirmed.meta.Position, events: 2}, p.newBatch(s.dialect), []envelope{confirmed})
	if !errors.Is(err, errFenced) {
		t.Fatalf("a batch after the takeover: %v, want errFenced", err)
	}
}
