package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/projections"
)

func newReplayCmd(cfg *config) *cobra.Command {
	var (
		asOf  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "replay --as-of T --read DSN",
		Short: "Build every read model as it was at T into another read store, to query it as of a closing date",
		Long: `Replay the log into the read store --read names, up to T: every read model (orders,
customers, inventory, sales, ledger) as it was then, to be queried as of a closing date by a
read-only server:

  orderledger serve --roles read --events <the log> --read <that store> --addr 127.0.0.1:8081

The log is replayed in its global order up to, and not including, the first event recorded
after T; no event after that one is applied either, even one stamped earlier by a process whose
clock was behind, so the result is always a state the read models really passed through.

--read must name an empty read store (a new SQLite file, or an empty PostgreSQL database) other
than the live one: replay refuses the event store's database (where the live read models are
by default), the ORDERLEDGER_READ store, and any store a server is projecting into; --force
replaces what a store that is none of these holds (an earlier replay). The projectors of the
replay stay leased to it, so a server pointed at it never carries it on to the head of the
log, and serve refuses roles other than read on it.

Exit 0 when done, 1 when the replay failed, 2 when it could not start.`,
		Args: exitCodeArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer debug.SetGCPercent(debug.SetGCPercent(rebuildGCPercent))
			ctx := cmd.Context()
			cantRun := func(err error) error { return &exitError{code: exitCantRun, err: err} }
			at, err := time.Parse(time.RFC3339Nano, asOf)
			if err != nil {
				return cantRun(fmt.Errorf("--as-of %q: want an RFC 3339 time, e.g. 2025-04-01T00:00:00Z for the close of 31 March (UTC)", asOf))
			}
			if err := checkReplayTarget(cfg); err != nil {
				return cantRun(err)
			}
			events, err := openEventsToRead(ctx, cfg.events)
			if err != nil {
				return cantRun(err)
			}
			if events, err = cfg.private(ctx, events); err != nil {
				return cantRun(err)
			}
			defer events.Close()
			target, err := projections.OpenReadStore(ctx, cfg.read)
			if err != nil {
				return cantRun(fmt.Errorf("open read store %s: %w", stores.Redact(cfg.read), err))
			}
			defer target.Close()
			switch err := target.CheckReplayTarget(ctx, force); {
			case errors.Is(err, projections.ErrTargetNotEmpty):
				return cantRun(fmt.Errorf("--read %s: %w; pass --force to replace it", stores.Redact(cfg.read), err))
			case err != nil:
				return cantRun(fmt.Errorf("--read %s: %w", stores.Redact(cfg.read), err))
			}

			bar := newProgress(cmd.ErrOrStderr(), "replayed")
			res, err := projections.Replay(ctx, events, target, at, projections.ReplayOptions{Force: force, Progress: bar.updateOf})
			bar.finish()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "replayed %d events recorded up to %s into %s; the read models are at position %s\n",
				res.Events, res.AsOf.Format(time.RFC3339Nano), stores.Redact(cfg.read), res.Position)
			if e := res.LeftOut; e != nil {
				fmt.Fprintf(out, "the log goes on with stream %q version %d at position %s, recorded at %s\n",
					e.Stream, e.Version, e.Position, e.RecordedAt.Format(time.RFC3339Nano))
			} else {
				fmt.Fprintln(out, "that is the whole log: nothing in it was recorded later")
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitCantRun, err: err} })
	cmd.Flags().StringVar(&asOf, "as-of", "", "RFC 3339 time to replay the log up to (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace what the target read store holds (never a live one)")
	_ = cmd.MarkFlagRequired("as-of")
	return cmd
}

// checkReplayTarget refuses a --read that is, or may be, the live read store: the events
// DSN's database (the read store by default) or ORDERLEDGER_READ (what serve reads).
func checkReplayTarget(cfg *config) error {
	if cfg.read == "" {
		return errors.New("--read must name the read store to build the replay in, e.g. --read sqlite:./asof.db")
	}
	kind, err := stores.KindOf(cfg.read)
	if err != nil {
		return err
	}
	if kind == stores.KurrentDB {
		return fmt.Errorf("--read %s: read models live in SQLite or PostgreSQL", stores.Redact(cfg.read))
	}
	if sameDatabase(cfg.read, cfg.events) {
		return fmt.Errorf("--read %s is the event store's database, where the live read models are by default; name another store", stores.Redact(cfg.read))
	}
	if live := os.Getenv("ORDERLEDGER_READ"); live != "" && sameDatabase(cfg.read, live) {
		return fmt.Errorf("--read %s is ORDERLEDGER_READ, the live read store; name another store", stores.Redact(cfg.read))
	}
	return nil
}

// sameDatabase reports whether two DSNs name the same SQLite file or PostgreSQL database.
func sameDatabase(a, b string) bool {
	ka, errA := stores.KindOf(a)
	kb, errB := stores.KindOf(b)
	if errA != nil || errB != nil || ka != kb {
		return false
	}
	switch ka {
	case stores.SQLite:
		pa, errA := filepath.Abs(stores.SQLitePath(a))
		pb, errB := filepath.Abs(stores.SQLitePath(b))
		if errA != nil || errB != nil {
			return false
		}
		if pa == pb {
			return true
		}
		fa, errA := os.Stat(pa)
		fb, errB := os.Stat(pb)
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	case stores.Postgres:
		ca, errA := pgx.ParseConfig(a)
		cb, errB := pgx.ParseConfig(b)
		return errA == nil && errB == nil && ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
	}
	return false
}
