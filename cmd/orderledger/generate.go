package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/internal/benchlog"
	"github.com/orderledger/orderledger/internal/stores"
)

// newGenerateLogCmd fills a store with a synthetic log for measurements (verify, export,
// rebuilds on a million events); it is hidden because it writes events no command decided.
func newGenerateLogCmd(cfg *config) *cobra.Command {
	opts := benchlog.Defaults
	cmd := &cobra.Command{
		Use:    "generate-log",
		Short:  "Append a synthetic order log (about 300-byte events) for benchmarks",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := stores.OpenEvents(ctx, cfg.events)
			if err != nil {
				return fmt.Errorf("open event store %s: %w", stores.Redact(cfg.events), err)
			}
			defer store.Close()
			bar := newProgress(cmd.ErrOrStderr(), "appended")
			opts.Progress = bar.update
			_, err = benchlog.Generate(ctx, store, opts)
			bar.finish()
			return err
		},
	}
	cmd.Flags().IntVar(&opts.Events, "count", opts.Events, "events to append")
	cmd.Flags().IntVar(&opts.Streams, "streams", opts.Streams, "streams to spread them over")
	cmd.Flags().IntVar(&opts.Batch, "batch", opts.Batch, "events per append")
	cmd.Flags().IntVar(&opts.Writers, "writers", opts.Writers, "concurrent appends (PostgreSQL groups concurrent appends into shared commits, so the pool size need not match)")
	return cmd
}
