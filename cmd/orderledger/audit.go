package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
)

// Exit statuses of audit verify and audit digest: 1 is a finding about the log, 2 means the
// check could not run, so a script can tell "tampered" from "try again".
const (
	exitFinding = 1
	exitCantRun = 2
)

func newAuditCmd(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the event log's hash chains and take or check digests of it",
	}
	cmd.AddCommand(newAuditVerifyCmd(cfg), newAuditDigestCmd(cfg))
	return cmd
}

type verifyOptions struct {
	stream string
	digest string
	heads  string
	json   bool
}

func newAuditVerifyCmd(cfg *config) *cobra.Command {
	opts := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute every stream's hash chain (exit 0 if all hold, 1 naming the first broken event, 2 if it cannot run)",
		Long: `Recompute every stream's hash chain from the stored events, in global order, up to the head
of the log when the command starts. Exit 0 when every chain holds; 1 naming the first broken
event (stream, version, position, what differs); 2 when the check cannot run.

With --digest D (from "orderledger audit digest"), also recompute the digest of the log up to
D's position and exit 1 unless it equals D: that shows events removed from, or re-forged at,
the end of a stream, which the chains alone cannot. With --heads FILE (written by "audit digest
--heads FILE" and proved by the digest's root, so it may be kept anywhere), name the streams
whose heads changed.`,
		Args: exitCodeArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditVerify(cmd, cfg, opts)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitCantRun, err: err} })
	cmd.Flags().StringVar(&opts.stream, "stream", "", "verify this stream only")
	cmd.Flags().StringVar(&opts.digest, "digest", "", "also check the log up to this digest's position against it")
	cmd.Flags().StringVar(&opts.heads, "heads", "", "with --digest: the digest's heads file, to name the streams that changed")
	cmd.Flags().BoolVar(&opts.json, "json", false, `print the report as JSON on stdout, as GET /v1/audit/verify answers it`)
	return cmd
}

// exitCodeArgs makes an argument error exit with exitCantRun, like every other failure to run.
func exitCodeArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &exitError{code: exitCantRun, err: err}
		}
		return nil
	}
}

func auditVerify(cmd *cobra.Command, cfg *config, opts *verifyOptions) error {
	ctx := cmd.Context()
	cantRun := func(err error) error { return &exitError{code: exitCantRun, err: err} }
	var (
		want      audit.Digest
		wantHeads []audit.Head
	)
	if opts.digest != "" {
		if opts.stream != "" {
			return cantRun(errors.New("--digest covers the whole log; it cannot go with --stream"))
		}
		var err error
		if want, err = audit.ParseDigest(opts.digest); err != nil {
			return cantRun(err)
		}
	}
	if opts.heads != "" {
		if opts.digest == "" {
			return cantRun(errors.New("--heads needs the --digest it belongs to"))
		}
		var err error
		if wantHeads, err = readHeadsFile(opts.heads, want); err != nil {
			return cantRun(err)
		}
	}
	store, err := openEventsToRead(ctx, cfg.events)
	if err != nil {
		return cantRun(err)
	}
	defer store.Close()

	bar := newProgress(cmd.ErrOrStderr(), "verified")
	verifyOpts := audit.Options{Stream: opts.stream, Progress: bar.update}
	var (
		report   audit.Report
		got      audit.Digest
		gotHeads []audit.Head
	)
	if opts.digest != "" {
		got, gotHeads, report, err = audit.HeadsAt(ctx, store, want.Position, verifyOpts)
	} else {
		report, err = audit.Verify(ctx, store, verifyOpts)
	}
	bar.finish()
	if err != nil {
		return cantRun(err)
	}

	out := cmd.OutOrStdout()
	if opts.json {
		b, err := json.Marshal(report)
		if err != nil {
			return cantRun(err)
		}
		fmt.Fprintln(out, string(b))
	}
	if f := report.FirstFailure; f != nil {
		return &exitError{code: exitFinding, err: fmt.Errorf("hash chain broken at stream %q version %d, position %s (%s): %s; %d events in %d streams before it hold",
			f.Stream, f.Version, f.Position, f.Kind, f.Reason, report.Events, report.Streams)}
	}
	if opts.digest != "" {
		if diffs := want.Diff(got); len(diffs) > 0 {
			if wantHeads != nil {
				diffs = append(diffs, summarize(audit.DiffHeads(wantHeads, gotHeads), maxHeadDiffs)...)
			}
			return &exitError{code: exitFinding, err: fmt.Errorf("the log up to position %s does not match the digest (every chain in it holds, so events were added, removed or re-forged): %s",
				want.Position, strings.Join(diffs, "; "))}
		}
		if !opts.json {
			fmt.Fprintf(out, "ok: the log up to position %s matches the digest: %d events in %d streams\n", want.Position, got.Events, got.Streams)
		}
		return nil
	}
	if !opts.json {
		fmt.Fprintf(out, "ok: %d events in %d streams up to position %s: every hash chain holds\n", report.Events, report.Streams, report.Position)
	}
	return nil
}

// maxHeadDiffs bounds how many changed streams verify names; a log rewritten wholesale would
// otherwise print one line per stream.
const maxHeadDiffs = 20

func summarize(diffs []string, max int) []string {
	if len(diffs) <= max {
		return diffs
	}
	return append(diffs[:max:max], fmt.Sprintf("and %d more streams", len(diffs)-max))
}

// readHeadsFile reads a heads file and checks that it is the one the digest commits to.
func readHeadsFile(path string, d audit.Digest) ([]audit.Head, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	heads, err := audit.ReadHeads(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if uint64(len(heads)) != d.Streams || audit.RootOf(heads) != d.Root {
		return nil, fmt.Errorf("%s is not the heads file of this digest: its %d heads do not give the digest's root", path, len(heads))
	}
	return heads, nil
}

func newAuditDigestCmd(cfg *config) *cobra.Command {
	var headsPath string
	cmd := &cobra.Command{
		Use:   "digest",
		Short: "Print a digest of the log up to now as the last line on stdout, to check later with audit verify --digest",
		Long: `Verify the log up to its head and print, as the last line on stdout, a digest of it:

  oldigest1:<position>:<streams>:<events>:<Merkle root over the stream heads>

Keep it somewhere the database's administrators cannot write. "orderledger audit verify
--digest D" later exits 0 only if the log up to that position is unchanged; events appended
after it do not matter. --heads FILE also writes every stream's head (the digest's leaves) to
FILE, which verify --heads uses to name the streams that changed. docs/audit.md gives the
construction, to recompute it with other tools. Exit 1 when a chain is broken (no digest is
printed), 2 when it cannot run.`,
		Args: exitCodeArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := openEventsToRead(ctx, cfg.events)
			if err != nil {
				return &exitError{code: exitCantRun, err: err}
			}
			defer store.Close()
			head, err := store.Head(ctx)
			if err != nil {
				return &exitError{code: exitCantRun, err: err}
			}
			bar := newProgress(cmd.ErrOrStderr(), "verified")
			d, heads, report, err := audit.HeadsAt(ctx, store, head, audit.Options{Progress: bar.update})
			bar.finish()
			if err != nil {
				return &exitError{code: exitCantRun, err: err}
			}
			if f := report.FirstFailure; f != nil {
				return &exitError{code: exitFinding, err: fmt.Errorf("no digest: hash chain broken at stream %q version %d, position %s (%s): %s",
					f.Stream, f.Version, f.Position, f.Kind, f.Reason)}
			}
			if headsPath != "" {
				if err := writeHeadsFile(headsPath, heads); err != nil {
					return &exitError{code: exitCantRun, err: err}
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVar(&headsPath, "heads", "", "also write every stream's head to this file, for verify --heads")
	return cmd
}

func writeHeadsFile(path string, heads []audit.Head) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := audit.WriteHeads(f, heads); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// openEventsToRead opens the event store of a command that only reads it. Opening a SQLite
// DSN creates the file, which would make a mistyped path look like an empty, intact log, so a
// missing file is an error here.
func openEventsToRead(ctx context.Context, dsn string) (eventstore.Store, error) {
	kind, err := stores.KindOf(dsn)
	if err != nil {
		return nil, err
	}
	if kind == stores.SQLite {
		if _, err := os.Stat(stores.SQLitePath(dsn)); err != nil {
			return nil, fmt.Errorf("no event store at %s: %w", stores.SQLitePath(dsn), err)
		}
	}
	store, err := stores.OpenEvents(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", stores.Redact(dsn), err)
	}
	return store, nil
}
