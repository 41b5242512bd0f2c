package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
)

// config is what every command that touches the stores shares.
type config struct {
	events   string
	read     string
	logLevel string
	logJSON  bool
	// masterKeyFile holds the master key that wraps the customers' data keys; empty means
	// the default beside a SQLite store.
	masterKeyFile string
}

// exitError carries an exit status other than 1 (e.g. verify's 1 is a finding, not a crash).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if privacy.IsMasterKeyError(err) && !errors.As(err, &ee) {
			// A missing or wrong master key is a configuration to fix, not a failure of the run.
			ee = &exitError{code: exitCantRun, err: err}
		}
		if ee != nil || errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(os.Stderr, "orderledger:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "orderledger:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	cfg := &config{}
	root := &cobra.Command{
		Use:           "orderledger",
		Short:         "An event-sourced order ledger for the whole order-to-cash cycle",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags := root.PersistentFlags()
	flags.StringVar(&cfg.events, "events", envOr("ORDERLEDGER_EVENTS", stores.DefaultEventsDSN),
		"event store DSN: sqlite:PATH, postgres://… or esdb://… (env ORDERLEDGER_EVENTS)")
	flags.StringVar(&cfg.read, "read", os.Getenv("ORDERLEDGER_READ"),
		"read store DSN: sqlite:PATH or postgres://… (env ORDERLEDGER_READ; default: the events DSN when that is SQLite or PostgreSQL)")
	flags.StringVar(&cfg.masterKeyFile, "master-key-file", os.Getenv("ORDERLEDGER_MASTER_KEY_FILE"),
		"file of the master key that wraps the customers' data keys (env ORDERLEDGER_MASTER_KEY_FILE; default: <sqlite file>.master-key beside a SQLite store, created on a new one; required with PostgreSQL)")
	flags.StringVar(&cfg.logLevel, "log-level", envOr("ORDERLEDGER_LOG_LEVEL", "info"), "debug, info, warn or error (env ORDERLEDGER_LOG_LEVEL)")
	flags.BoolVar(&cfg.logJSON, "log-json", os.Getenv("ORDERLEDGER_LOG_JSON") == "1", "log JSON lines instead of text (env ORDERLEDGER_LOG_JSON=1)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return cfg.setupLogging()
	}
	root.AddCommand(newServeCmd(cfg))
	root.AddCommand(newAuditCmd(cfg))
	root.AddCommand(newExportCmd(cfg))
	root.AddCommand(newImportCmd(cfg))
	root.AddCommand(newGenerateLogCmd(cfg))
	root.AddCommand(newDemoCmd(cfg))
	root.AddCommand(newBenchCmd(cfg))
	root.AddCommand(newProjectionsCmd(cfg))
	root.AddCommand(newReplayCmd(cfg))
	root.AddCommand(newLedgerCmd(cfg))
	root.AddCommand(newTokensCmd(cfg))
	root.AddCommand(newKeysCmd(cfg))
	return root
}

func (c *config) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.logJSON {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

func (c *config) readDSN() (string, error) { return stores.ReadDSN(c.events, c.read) }

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
