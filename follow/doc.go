// Package follow is how orderledger follows its event log under a lease: the projectors, the
// order-to-cash automation and the webhook deliverer are each one follower, and at most one
// process of a deployment is the active follower of a name at any time; the others stand by.
//
// The lease is not a row with an expiry. It is a lock the operating system or the database
// drops the moment its holder dies, so a standby or a restarted process takes over at once:
//
//   - on PostgreSQL, a session-level advisory lock held on a connection of its own (the lease
//     session). A process that loses that session — killed, cut off, or its backend
//     terminated — loses every lease on it, and its terms end (Term.Lost) within the health
//     check interval;
//   - on SQLite, an OS file lock (flock) on a file beside the database file, which the kernel
//     frees when the process exits, however it exits.
//
// A lease alone cannot stop a holder that has not noticed yet from committing one last write.
// So every term carries a fence token, unique to that term; taking a lease stamps the token on
// the follower's checkpoint row, and every checkpoint write is conditional on the row still
// carrying it, in the same transaction as whatever the follower writes with it. A holder cut
// off while committing either commits before the next holder stamps the row (which then reads
// what it committed) or is refused (ErrLeaseLost) and rolls back. One clock rules it all: the
// database's; nothing here compares two hosts' clocks, and nothing waits for an expiry.
//
// States a follower reports (Status.State): StateStarting, StateActive, StateStandby,
// StateRetrying, StateFailed (it met something it must not skip: a bug) and StateStopped.
//
// The simplest use, a follower that handles each batch of events and then records how far it
// got (the webhook deliverer's shape):
//
//	leases, err := follow.Open(ctx, readDSN) // sqlite:PATH or postgres://…, beside the read models
//	if err != nil { … }
//	defer leases.Close()
//	f := follow.New(leases, events, "webhooks", func(ctx context.Context, batch []eventstore.Event) error {
//		// Deliver batch; return an error to have it retried (with backoff) from the last
//		// checkpoint, or follow.Fail(err) to stop on it and report StateFailed.
//		return nil
//	}, follow.WithLogger(log))
//	go f.Run(ctx)  // waits in standby while another process is active; returns when ctx ends
//	st := f.Status() // for /readyz: State, Holder, Position, LastError
//
// A follower that must write its checkpoint in its own transaction (the projectors commit
// rows and checkpoint together) takes the lease with Store.Acquire, stamps Term.Token on its
// own row, and conditions its writes on that token; Lead runs such a follower's loop of
// standing by, acting and retrying.
package follow
