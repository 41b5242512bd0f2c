package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/bench"
	"github.com/orderledger/orderledger/internal/httpx"
	"github.com/orderledger/orderledger/internal/stores"
)

func newBenchCmd(cfg *config) *cobra.Command {
	var (
		opts     bench.Config
		only     []string
		asJSON   bool
		duration time.Duration
		cpuProf  string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure appends, the HTTP API, rebuilds and the audit tools, each beside a baseline, in scratch space",
		Long: `Measure orderledger on the servers --events and --read name, each figure beside a
baseline measured in the same run, in turns with it, so that load from elsewhere on the
machine falls on both alike; ratio = value / baseline.

It never touches your data. It works in scratch space it creates and removes at the end, also
when interrupted (Ctrl-C, SIGTERM):
  PostgreSQL  a database orderledger_bench_<random> on the same server (the role needs
              CREATEDB), with a schema per stage; dropped WITH (FORCE) at the end.
  SQLite      a directory orderledger_bench_<random> beside the file (in the system's
              temporary directory if the file's directory does not exist); removed.
  KurrentDB   streams under the prefix orderledger-bench-<random>-<stage>/, which stay:
              KurrentDB keeps what was appended. --read must name a SQLite or PostgreSQL
              store for the read models, and the server figures are not available yet.
A run killed with SIGKILL cannot clean up; what it created is named on stderr at the start.

Each figure takes about --duration (its baseline's turns included), after a short warm-up;
a whole run takes about a dozen durations plus seeding and generating the log. In run order:
  append_single       events/s: 32 writers (--clients) each appending one event at a time to
                      a stream of its own with the exact expected revision. Baseline: a
                      one-row INSERT per transaction from as many clients into raw_events,
                      a table of the same shape (columns, constraints, indexes) in the same
                      database, with no append function, revision check or hash chain.
  append_batch100     events/s: one writer appending 100 events at a time. Baseline: a
                      100-row INSERT per transaction into raw_events.
  order_intake        orders/s: POST /v1/orders (no Idempotency-Key) from --clients
                      keep-alive clients to a server this process starts on the scratch
                      stores with every role (projectors and automation too), over 500
                      seeded customers and 100 SKUs with stock enough that no order waits.
                      Baseline: the same orders decided by the domain and appended straight
                      to an event store opened as the server's is (same DSN), from as many
                      clients, with no server following it (else its orders would bury the
                      automation for minutes): the write an order ends in. Not
                      append_single: a synthetic event is no order, and the API also reads
                      the customer and SKUs and speaks HTTP; the ratio is the share of the
                      store's rate for the same writes that the API delivers. The server's
                      projectors and automation keep working through both sides' turns.
  order_to_cash       cycles/s, no baseline: orders taken from placement through confirmation
                      and invoice (waited for), payment, shipment and delivery to completed
                      (waited for), one at a time by each of --clients clients, counted over
                      the duration after a ramp-up. Nothing below does the same work.
  projection_lag_p99  ms, no baseline (and projection_lag_p50): orders posted at a steady
                      rate, that of order_to_cash (what the server, automation included,
                      sustains; measured briefly if not selected); each sample is the time
                      from a write's answer to the answer of GET /v1/orders/{id}?after=<its
                      position>: how long a client waits to read its own write.
  read_customer       requests/s: GET /v1/customers/{id} from --clients clients. Baseline:
  read_inventory      GET /healthz on the same server, what the HTTP stack itself costs.
                      Both read what the figures before them left (the seed without them).
  serve_rss           MB (MiB), no baseline: this process's VmRSS after the server figures;
                      the server with the bench's clients, which hold little.
  projection_rebuild  events/s over a generated order-to-cash history (log_events: 5000 per
  audit_verify        second of --duration, at least 2000; --log-events): every projection
  export              rebuilt, every hash chain verified, every event exported to nowhere.
                      Baseline: a plain SELECT of the same rows in the same order, in pages
                      of 8192, on the same database. No baseline on KurrentDB.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			selected, err := bench.CheckOnly(only)
			if err != nil {
				return err
			}
			if kind, err := stores.KindOf(cfg.events); err == nil && kind == stores.KurrentDB {
				if len(selected) == 0 || slices.ContainsFunc(selected, isServerFigure) {
					return errors.New("bench: on KurrentDB the server figures (order_intake, order_to_cash, projection_lag_p99, read_customer, read_inventory, serve_rss) are not available yet; pick others with --only")
				}
			}
			opts.EventsDSN, opts.ReadDSN = cfg.events, cfg.read
			opts.Duration, opts.Only = duration, selected
			opts.Progress = cmd.ErrOrStderr()
			opts.StartServer = startBenchServer
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return fmt.Errorf("bench: --cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("bench: --cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			report, err := bench.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return report.WriteJSON(cmd.OutOrStdout())
			}
			return report.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long each figure is measured, its baseline included")
	cmd.Flags().StringSliceVar(&only, "only", nil, "measure only these figures (comma-separated): "+strings.Join(bench.Names, ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object {"results": [{"name", "value", "unit", "baseline", "ratio"}]} instead of a table`)
	cmd.Flags().IntVar(&opts.Clients, "clients", bench.DefaultClients, "concurrent writers for append_single and HTTP clients for the server figures")
	cmd.Flags().StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the whole run (the in-process server included) to this file, for go tool pprof")
	cmd.Flags().IntVar(&opts.LogEvents, "log-events", 0, "size of the log the rebuild and audit figures read (default: 5000 per second of --duration, at least 2000)")
	return cmd
}

func isServerFigure(name string) bool {
	return slices.Contains([]string{bench.OrderIntake, bench.OrderToCash, bench.ProjectionLagP99,
		bench.ReadCustomer, bench.ReadInventory, bench.ServeRSS}, name)
}

// startBenchServer serves every role on a stage's scratch stores at a free loopback port,
// wired as serve wires it. Its log is kept to warnings, so that the bench's progress stays
// readable.
func startBenchServer(ctx context.Context, st bench.Stores) (*bench.Server, error) {
	log := slog.New(levelAtLeast{slog.LevelWarn, slog.Default().Handler()}).With("component", "bench server")
	s, err := openService(ctx, &config{events: st.EventsDSN, read: st.ReadDSN}, allRoles, log)
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	background, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := s.runBackground(background)
	srv := &http.Server{Handler: httpx.Instrument(s.reg, s.router(), log), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(listener) }()
	return &bench.Server{
		URL:    "http://" + listener.Addr().String(),
		Events: s.events,
		CaughtUp: func(ctx context.Context, pos eventstore.Position) (bool, error) {
			if err := s.automation.Status().Err(); err != nil {
				return false, err
			}
			if s.automation.Status().Position.Compare(pos) < 0 {
				return false, nil
			}
			// WaitFor returns at once when the projectors are there, and fails when one has
			// stopped; a short wait that runs out only means not yet.
			wait, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			err := s.projectors.WaitFor(wait, pos)
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return false, nil
			}
			return err == nil, err
		},
		Stop: func() {
			shutdown, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer done()
			_ = srv.Shutdown(shutdown)
			cancel()
			wait()
			s.close()
		},
	}, nil
}

// levelAtLeast drops records below a level, whatever the handler it wraps would keep.
type levelAtLeast struct {
	min slog.Level
	slog.Handler
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelAtLeast) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelAtLeast{h.min, h.Handler.WithAttrs(attrs)}
}

func (h levelAtLeast) WithGroup(name string) slog.Handler {
	return levelAtLeast{h.min, h.Handler.WithGroup(name)}
}
