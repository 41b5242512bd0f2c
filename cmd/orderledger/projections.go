package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/projections"
)

// rebuildGCPercent is the garbage collector's target while the log is replayed. A replay
// allocates a lot that dies young (decoded events, rows), and with 4× the default headroom
// the collector runs a quarter as often: on a million events it halved the Go CPU time.
const rebuildGCPercent = 400

func newProjectionsCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Rebuild the read models from the log, or verify them against a rebuild",
	}
	cmd.AddCommand(newProjectionsRebuildCmd(cfg), newProjectionsVerifyCmd(cfg))
	return cmd
}

func newProjectionsRebuildCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rebuild [name…]",
		Short: "Empty read models (all, or the named ones) and replay the log into them",
		Long: `Empty the named read models (all by default: ` + strings.Join(projections.Names(), ", ") + `) and replay
the log into them up to its head when the command starts, with a progress bar on stderr. A
server running meanwhile stands by for those projectors and carries on from where the rebuild
ends; the routes they feed show partial data until then. Exit 0 when done, 1 when the rebuild
failed (a broken event, a store that went away), 2 when it could not start (an unknown name, a
store that cannot be opened).`,
		Args: exitCodeArgs(knownProjectors),
		RunE: func(cmd *cobra.Command, names []string) error {
			defer debug.SetGCPercent(debug.SetGCPercent(rebuildGCPercent))
			ctx := cmd.Context()
			events, read, err := openProjectionStores(ctx, cfg)
			if err != nil {
				return &exitError{code: exitCantRun, err: err}
			}
			defer events.Close()
			defer read.Close()
			if len(names) == 0 {
				names = projections.Names()
			}
			bar := newProgress(cmd.ErrOrStderr(), "rebuilt")
			err = projections.Rebuild(ctx, events, read, names, bar.updateOf)
			bar.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebuilt %s from %d events\n", strings.Join(names, ", "), bar.done)
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitCantRun, err: err} })
	return cmd
}

// knownProjectors refuses a name that is not a projector's, listing the names there are.
func knownProjectors(_ *cobra.Command, args []string) error {
	for _, name := range args {
		if !slices.Contains(projections.Names(), name) {
			return fmt.Errorf("no projector %q; the projectors are %s", name, strings.Join(projections.Names(), ", "))
		}
	}
	return nil
}

func newProjectionsVerifyCmd(cfg *config) *cobra.Command {
	var (
		maxDiffs int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Rebuild the read models into scratch space and compare them with the live ones (exit 0 identical, 1 differing, 2 cannot run)",
		Long: `Rebuild every read model from the log into scratch space and compare it, row by row, with
the live one. The scratch space is a SQLite file in the temporary directory ($TMPDIR) when the
read store is SQLite, a schema of its own in the same database when it is PostgreSQL (the user
needs CREATE on the database); it is dropped at the end.

A server may keep projecting while verify runs: verify reads the live read models in one
snapshot, with each projector's checkpoint, and replays the log into the scratch copy up to
exactly those checkpoints.

Exit 0 when every row is equal; 1 when some differ, printing each (table, key, the columns
that differ, live and rebuilt values; at most --max-differences of them, all counted);
2 when the check could not run.`,
		Args: exitCodeArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer debug.SetGCPercent(debug.SetGCPercent(rebuildGCPercent))
			ctx := cmd.Context()
			cantRun := func(err error) error { return &exitError{code: exitCantRun, err: err} }
			events, read, err := openProjectionStores(ctx, cfg)
			if err != nil {
				return cantRun(err)
			}
			defer events.Close()
			defer read.Close()
			bar := newProgress(cmd.ErrOrStderr(), "rebuilt")
			report, err := projections.Verify(ctx, events, read, projections.VerifyOptions{MaxDifferences: maxDiffs, Progress: bar.updateOf})
			bar.finish()
			if err != nil {
				return cantRun(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.Marshal(report)
				if err != nil {
					return cantRun(err)
				}
				fmt.Fprintln(out, string(b))
			} else {
				printVerifyReport(out, report)
			}
			if !report.OK() {
				var tables []string
				for _, t := range report.Tables {
					if t.Differing > 0 {
						tables = append(tables, fmt.Sprintf("%s %d", t.Table, t.Differing))
					}
				}
				return &exitError{code: exitFinding, err: fmt.Errorf("the live read models differ from a rebuild of the log in %d rows (%s)",
					report.Differing, strings.Join(tables, ", "))}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitCantRun, err: err} })
	cmd.Flags().IntVar(&maxDiffs, "max-differences", 20, "print at most this many differing rows (all are counted)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	return cmd
}

func printVerifyReport(w io.Writer, r projections.VerifyReport) {
	for _, p := range r.Projectors {
		fmt.Fprintf(w, "%-10s compared at its checkpoint, position %s (%d events)\n", p.Name, p.Position, p.Events)
	}
	for _, t := range r.Tables {
		fmt.Fprintf(w, "%-24s live %d rows, rebuilt %d, differing %d\n", t.Table, t.Live, t.Rebuilt, t.Differing)
	}
	for _, d := range r.Differences {
		fmt.Fprintln(w, d)
	}
	if more := r.Differing - len(r.Differences); more > 0 {
		fmt.Fprintf(w, "and %d more differing rows\n", more)
	}
	if r.OK() {
		fmt.Fprintln(w, "ok: every live read model equals a rebuild of the log up to its checkpoint")
	}
}

// openProjectionStores opens the event store, which must exist, and the read store.
func openProjectionStores(ctx context.Context, cfg *config) (eventstore.Store, *projections.ReadStore, error) {
	readDSN, err := cfg.readDSN()
	if err != nil {
		return nil, nil, err
	}
	events, err := openEventsToRead(ctx, cfg.events)
	if err != nil {
		return nil, nil, err
	}
	if events, err = cfg.private(ctx, events); err != nil {
		return nil, nil, err
	}
	read, err := projections.OpenReadStore(ctx, readDSN)
	if err != nil {
		events.Close()
		return nil, nil, fmt.Errorf("open read store %s: %w", stores.Redact(readDSN), err)
	}
	return events, read, nil
}
