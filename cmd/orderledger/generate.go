package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/internal/stores"
)

// newGenerateLogCmd fills a store with a log for measurements (verify, export, rebuilds on a
// million events): a synthetic one by default, or with --history an order-to-cash history the
// write side could have written, which the projectors can rebuild. It is hidden because it
// writes events no command decided.
func newGenerateLogCmd(cfg *config) *cobra.Command {
	opts := historygen.SyntheticDefaults
	var history bool
	cmd := &cobra.Command{
		Use:    "generate-log",
		Short:  "Append a synthetic order log (about 300-byte events) or, with --history, an order-to-cash history, for benchmarks",
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
			defer bar.finish()
			if history {
				if opts.Events <= 0 || opts.Writers <= 0 {
					return fmt.Errorf("--count and --writers must be positive")
				}
				customers, skus := historygen.Sized(int64(opts.Events))
				gen := historygen.Config{Seed: 1, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Customers: customers, SKUs: skus}
				return historygen.Append(ctx, store, int64(opts.Events), gen, opts.Writers, func(n int64) { bar.update(uint64(n)) })
			}
			opts.Progress = bar.update
			_, err = historygen.Synthetic(ctx, store, opts)
			return err
		},
	}
	cmd.Flags().BoolVar(&history, "history", false, "append an order-to-cash history (customers, stock, orders through to delivery and returns) that the projectors can rebuild, instead of synthetic events; --streams and --batch do not apply")
	cmd.Flags().IntVar(&opts.Events, "count", opts.Events, "events to append")
	cmd.Flags().IntVar(&opts.Streams, "streams", opts.Streams, "streams to spread them over")
	cmd.Flags().IntVar(&opts.Batch, "batch", opts.Batch, "events per append")
	cmd.Flags().IntVar(&opts.Writers, "writers", opts.Writers, "concurrent appends (PostgreSQL groups concurrent appends into shared commits, so the pool size need not match)")
	return cmd
}
