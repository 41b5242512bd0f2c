package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

func newExportCmd(cfg *config) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every event, in global order, to stdout as JSON lines (position and hash included)",
		Long: `Write every event after --from, up to the head of the log when the command starts, to stdout
in global order, one JSON object a line: id, stream, version, type, data (the stored JSON, byte
for byte), metadata, recorded_at (RFC 3339, microseconds), position and hash. Data that a line
cannot hold byte for byte (it has line breaks, or white space around it) is written as
data_base64 instead. Progress and the position covered go to stderr; to continue an export
later, pass that position as --from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var opts audit.ExportOptions
			if from != "" {
				p, err := eventstore.ParsePosition(from)
				if err != nil {
					return fmt.Errorf("--from: %w", err)
				}
				opts.From = p
			}
			store, err := openEventsToRead(ctx, cfg.events)
			if err != nil {
				return err
			}
			defer store.Close()
			bar := newProgress(cmd.ErrOrStderr(), "exported")
			opts.Progress = bar.update
			res, err := audit.Export(ctx, store, cmd.OutOrStdout(), opts)
			bar.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "the export covers the log up to position %s\n", res.Position)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "export only the events after this position (<commit>-<prepare>)")
	return cmd
}

func newImportCmd(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "import",
		Short: "Append an export (JSON lines on stdin) to an empty event store, keeping every hash",
		Long: `Read "orderledger export" lines from stdin and append them to the event store named by
--events, which must be empty. Every event keeps its id, version and recorded_at, so the store
recomputes the same hash chain; the command reads each event back and fails unless its stored
hash equals the exported one. After a failure, start again with an empty store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := stores.OpenEvents(ctx, cfg.events)
			if err != nil {
				return fmt.Errorf("open event store %s: %w", stores.Redact(cfg.events), err)
			}
			defer store.Close()
			bar := newProgress(cmd.ErrOrStderr(), "imported")
			res, err := audit.Import(ctx, store, cmd.InOrStdin(), audit.ImportOptions{Progress: bar.update})
			bar.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "every stored hash equals the exported one; the log's head is at position %s\n", res.Position)
			return nil
		},
	}
}
