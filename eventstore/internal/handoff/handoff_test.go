package handoff

import (
	"context"
	"errors"
	"testing"

	"github.com/orderledger/orderledger/eventstore"
)

var errClosed = errors.New("closed")

func TestWithdrawnWhileQueuedIsNeverTaken(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tk := NewTicket()
	if _, err := tk.Await(ctx, nil, errClosed); !errors.Is(err, context.Canceled) {
		t.Fatalf("await on a cancelled context: %v, want context.Canceled", err)
	}
	if tk.Take() {
		t.Fatal("a committer took a ticket its caller had withdrawn")
	}
}

func TestStoppedWhileQueuedAnswersClosed(t *testing.T) {
	stopped := make(chan struct{})
	close(stopped)
	tk := NewTicket()
	if _, err := tk.Await(t.Context(), stopped, errClosed); !errors.Is(err, errClosed) {
		t.Fatalf("await after the committers stopped: %v, want the closed error", err)
	}
}

func TestTakenTicketGetsTheRealOutcomeAfterCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	tk := NewTicket()
	if !tk.Take() {
		t.Fatal("a queued ticket could not be taken")
	}
	cancel()
	want := eventstore.AppendResult{Version: 7}
	go tk.Answer(Outcome{Result: want})
	got, err := tk.Await(ctx, nil, errClosed)
	if err != nil || got != want {
		t.Fatalf("await of a taken ticket: %+v, %v; want %+v and no error", got, err, want)
	}
}
