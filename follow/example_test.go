package follow_test

import (
	"context"
	"log/slog"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
)

// A follower that handles each batch of the log and then records how far it got — the shape
// of the webhook deliverer. Any number of processes may run it; one is active at a time, and
// a standby takes over the moment the active one dies.
func Example() {
	ctx := context.Background()
	var events eventstore.Store                                     // opened from --events
	leases, err := follow.Open(ctx, "sqlite:./data/orderledger.db") // the read store's DSN
	if err != nil {
		slog.Error("open the followers' leases", "err", err)
		return
	}
	defer leases.Close()
	deliverer := follow.New(leases, events, "webhooks", func(ctx context.Context, batch []eventstore.Event) error {
		for range batch {
			// POST the event; an error has the batch handled again from the last
			// checkpoint after a backoff, and follow.Fail(err) stops the follower on it.
		}
		return nil
	}, follow.WithLogger(slog.Default()))
	go func() { _ = deliverer.Run(ctx) }()
	_ = deliverer.Status() // State ("active", "standby", …), LeaseHolder, Position, LastError: for /readyz
}
