package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/cmd/orderledger/internal/demo"
)

func newDemoCmd(cfg *config) *cobra.Command {
	var (
		url         string
		orders      int
		concurrency int
		seed        uint64
		token       string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Seed a catalogue and customers and drive orders through the whole order-to-cash cycle",
		Long: `Seed a catalogue and customers, then drive orders (mixed channels, some over-ordered, some
cancelled or returned) through the whole cycle over HTTP, receiving the purchase orders the
server raises, and print a summary: orders by status, stock, invoices and the trial balance.

With --url it drives a running server; a server with tokens on takes an admin token
(--token, or ORDERLEDGER_TOKEN). Without --url it starts one in this process on the
--events/--read stores (by default the SQLite file under ./data) and stops it afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if url == "" {
				stop, addr, err := startLocalServer(ctx, cfg)
				if err != nil {
					return err
				}
				defer stop()
				url = "http://" + addr
				fmt.Fprintf(os.Stderr, "started a server at %s on %s\n", url, cfg.events)
			}
			if token == "" {
				token = os.Getenv("ORDERLEDGER_TOKEN") // not the flag's default: --help would show it
			}
			_, err := demo.Run(ctx, demo.Config{
				BaseURL: url, Token: token, Orders: orders, Concurrency: concurrency, Seed: seed,
				Out: cmd.OutOrStdout(), Progress: os.Stderr,
			})
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "base URL of a running server (default: start one in this process)")
	cmd.Flags().IntVar(&orders, "orders", 50, "how many orders to drive through the cycle")
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "how many orders are driven at once")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "makes the run repeatable (0: from the clock)")
	cmd.Flags().StringVar(&token, "token", "", "bearer token for a server with tokens on, of the admin role (env ORDERLEDGER_TOKEN)")
	return cmd
}

// startLocalServer serves every role on the configured stores at a free loopback port.
func startLocalServer(ctx context.Context, cfg *config) (stop func(), addr string, err error) {
	s, err := openService(ctx, cfg, allRoles, slog.Default())
	if err != nil {
		return nil, "", err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, "", err
	}
	s.openAllowed = true // a loopback address
	background, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := s.runBackground(background)
	srv := &http.Server{Handler: s.httpHandler(slog.Default()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(listener) }()
	return func() {
		shutdown, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer done()
		_ = srv.Shutdown(shutdown)
		cancel()
		wait()
		s.close()
	}, listener.Addr().String(), nil
}
