package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/cmd/orderledger/internal/bench"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
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
a run with --duration 10s took about four minutes before sustained_orders, a fifth of it
generating the log; sustained_orders adds 3 to 7 minutes (4 to 8 trials of 20 s and 1 to 3
holds of 60 s, the automation catching up between them). In run order (extras are reported
beside the figure that yields them):
  append_single       events/s: 32 writers (--clients) each appending one event at a time to
                      a stream of its own with the exact expected revision. Baseline: a
                      one-row INSERT per transaction from as many clients into raw_events,
                      a table of the same shape (columns, constraints, indexes) in the same
                      database, with no append function, revision check or hash chain.
  append_batch100     events/s: one writer appending 100 events at a time. Baseline: a
                      100-row INSERT per transaction into raw_events.
  order_intake        orders/s: POST /v1/orders (1-3 lines, no Idempotency-Key) from --clients
                      keep-alive clients to a server this process starts on the scratch
                      stores with every role (projectors and automation too), over 500
                      seeded customers and 100 SKUs with stock enough that no order waits.
                      Baseline: one-row INSERT transactions into raw_events (as for
                      append_single) from as many clients, on the database of the append
                      figures, where no server follows: the smallest write an order could
                      be. Extras: order_intake_p50 and order_intake_p99 (ms), each POST's
                      latency.
  projection_lag_p99  ms, no baseline (and projection_lag_p50), measured during order_intake:
                      one more client posts an order every 20 ms and reads it back with
                      GET /v1/orders/{id}?after=<its position>; a sample is the time from the
                      write's answer to the read's, how long a client waits to see its own
                      write while the others post as fast as the server takes them.
  order_to_cash       cycles/s, no baseline: the server's throughput of whole order-to-cash
                      cycles. A cycle is one order taken from placement through confirmation
                      and invoice (waited for), payment, shipment and delivery to completed
                      (waited for); 4 × --clients clients (128 by default) each run one
                      cycle after another, enough at once that the figure is what the server
                      completes per second rather than one client's wait for its own cycle.
                      Cycles completed within the duration after a ramp-up are counted.
                      Extras: order_to_cash_commits (appends per second, the clients'
                      commands and the automation's) and commits_per_cycle.
  sustained_orders    orders/s, no baseline: the highest fixed arrival rate that the server,
                      every role running, holds with placed→invoiced p99 ≤ 1 s. Orders of 5
                      lines over a catalogue of 1,000 SKUs chosen Zipf-skewed (s = 1.1: the
                      top SKU is in about 64% of the orders) are posted open loop, each at
                      its time whether or not the ones before it were answered. An order's
                      placed→invoiced is read from the log: the recorded times of its
                      OrderPlaced and its OrderInvoiced. The rate is searched with trials of
                      2 × --duration from 0.8 × order_intake (200/s when that is not
                      measured): up by half while they hold, down by half while none has
                      (up to 8 trials), then bisecting (4 trials in all); the best is then
                      held for 6 × --duration (60 s by default), a fifth lower each time
                      that fails, up to 3 holds (0 when none holds). A rate is not held when
                      its p99 is over 1 s, when fewer than 95% of its orders could be posted
                      on time, or when 1,024 are waiting for an answer. Extras, at that
                      rate: placed_to_invoiced_p50 and placed_to_invoiced_p99 (ms).
  read_customer       requests/s: GET /v1/customers/{id} from --clients clients. Baseline:
  read_inventory      GET /healthz on the same server, what the HTTP stack itself costs.
                      Both read what the figures before them left. Extras: read_customer_p99
                      and read_inventory_p99 (ms).
  stream_fanout       orders/s: POST /v1/orders from --clients clients while 200 clients read
                      GET /v1/stream (live). Baseline: the same with no listener, in
                      alternating turns; the ratio is what the listeners cost the intake
                      (target >= 0.9). Extra: stream_fanout_apart, the same with the
                      listeners in a process of their own (orderledger bench listen), as a
                      deployment's are, rather than in the process that serves: same cores,
                      not the same Go runtime.
  projection_rebuild  events/s over a generated order-to-cash history of --log-events events
  audit_verify        (log_events, default 1,000,000): every projection rebuilt, every hash
  export              chain verified, every event exported to nowhere, in whole passes.
                      Baselines: for the rebuild, which writes read models, 100-row INSERT
                      transactions into raw_events on the same database; for verify and
                      export, which read the log, the store's own ReadAll of every event.
  serve_rss           MB (MiB), no baseline: the peak resident memory (VmHWM) of an
                      orderledger serve process started over the generated log with empty
                      read models, while its projectors build them from the whole log and
                      then for --duration while the clients read customers and SKUs. Its
                      automation does not run (the generated history holds its work
                      already). Extras: serve_startup (ms from starting the process to its
                      first 200 from /readyz) and serve_catchup (the log's events per second
                      of building the read models).
  rss_after_orders    MB (MiB) and ms, after a generated history of each --history-orders
  cold_first_invoice_ms  size N (default 100k and 1m; the history is what the clients and the
                      automation would have appended, with the automation's checkpoint at its
                      end): an orderledger serve process with every role builds its read
                      models over it and takes orders through the automation for --duration;
                      rss_after_orders_<N> is its resident memory (VmRSS) then. It is stopped
                      and started again, and cold_first_invoice_ms_<N> is the time from
                      posting one order on the history's busiest SKU to reading it back
                      invoiced. The larger size's figures have the smaller's as baseline.
  failover_ms         ms, no baseline: two serve processes (write,read,project) on a stage of
                      their own; the one whose projectors are active is killed with SIGKILL
                      and a stock receipt is written to the other at once: from the kill to
                      the standby's read model answering it with ?after= (it took the lease
                      over and committed a batch). Median of 5. Extra: failover_restart_ms,
                      from starting a single serve again after a kill -9 to its read model
                      holding a write made as soon as it listens (median of 5).
`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			selected, err := bench.CheckOnly(only)
			if err != nil {
				return err
			}
			if kind, err := stores.KindOf(cfg.events); err == nil && kind == stores.KurrentDB {
				if len(selected) == 0 || slices.ContainsFunc(selected, isServerFigure) {
					return errors.New("bench: on KurrentDB the server figures (order_intake, order_to_cash, sustained_orders, projection_lag_p99, read_customer, read_inventory, stream_fanout, serve_rss, rss_after_orders, cold_first_invoice_ms, failover_ms) are not available yet; pick others with --only")
				}
			}
			opts.EventsDSN, opts.ReadDSN = cfg.events, cfg.read
			opts.Duration, opts.Only = duration, selected
			opts.Progress = cmd.ErrOrStderr()
			opts.StartServer = startBenchServer
			opts.PrivateEvents = benchPrivateEvents
			opts.ServeCommand = benchServeCommand
			opts.ServeAllCommand = benchServeAllCommand
			opts.ServeRolesCommand = benchServeRolesCommand
			opts.ListenCommand = benchListenCommand
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
	cmd.Flags().IntVar(&opts.LogEvents, "log-events", bench.DefaultLogEvents, "size of the log the rebuild, audit and serve_rss figures read")
	cmd.Flags().IntSliceVar(&opts.HistoryOrders, "history-orders", bench.DefaultHistoryOrders, "one or two history sizes, in orders, that rss_after_orders and cold_first_invoice_ms are measured after")
	cmd.AddCommand(newBenchListenCmd())
	return cmd
}

// benchTokenEnv carries the bench's token to the listeners' process: in its environment, not
// on its command line, where any user of the machine could read it.
const benchTokenEnv = "ORDERLEDGER_BENCH_TOKEN"

// newBenchListenCmd is `orderledger bench listen`, which stream_fanout runs as a process of
// its own for its extra stream_fanout_apart.
func newBenchListenCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:    "listen",
		Short:  "connect the stream_fanout listeners to a server, for the bench (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.RunListeners(cmd.Context(), url, os.Getenv(benchTokenEnv), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the server's base URL")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// benchListenCommand runs this very binary's `bench listen` against the server at url.
func benchListenCommand(ctx context.Context, url, token string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, self, "bench", "listen", "--url", url)
	cmd.Env = append(os.Environ(), benchTokenEnv+"="+token)
	return cmd
}

func isServerFigure(name string) bool {
	return slices.Contains([]string{bench.OrderIntake, bench.OrderToCash, bench.SustainedOrders, bench.ProjectionLagP99,
		bench.ReadCustomer, bench.ReadInventory, bench.StreamFanout, bench.ServeRSS, bench.RSSAfterOrders, bench.ColdFirstInvoice, bench.Failover}, name)
}

// benchServeCommand runs this very binary's serve on a stage's stores, with every role but
// automation (see bench's serve_rss), its log kept to warnings.
func benchServeCommand(ctx context.Context, st bench.Stores, addr string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, self, append([]string{"serve", "--addr", addr, "--events", st.EventsDSN, "--read", st.ReadDSN,
		"--roles", strings.Join([]string{roleWrite, roleRead, roleProject}, ","), "--log-level", "warn"}, benchKeyArgs(st)...)...)
	return cmd
}

// benchServeAllCommand is benchServeCommand with every role, the automation's too.
func benchServeAllCommand(ctx context.Context, st bench.Stores, addr string) *exec.Cmd {
	cmd := benchServeCommand(ctx, st, addr)
	for i, arg := range cmd.Args {
		if arg == "--roles" {
			cmd.Args[i+1] = strings.Join(allRoles, ",")
		}
	}
	return cmd
}

// benchServeRolesCommand runs this very binary's serve on a stage's stores with roles, its
// log kept to warnings (see bench's failover_ms).
func benchServeRolesCommand(ctx context.Context, st bench.Stores, addr, roles string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.CommandContext(ctx, self, append([]string{"serve", "--addr", addr, "--events", st.EventsDSN, "--read", st.ReadDSN,
		"--roles", roles, "--log-level", "warn"}, benchKeyArgs(st)...)...)
}

// appendsCommitted counts the appends the handler has made (orderledger_append_duration_seconds
// with result="ok"), from the server's own metrics.
func appendsCommitted(reg *prometheus.Registry) (uint64, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != "orderledger_append_duration_seconds" {
			continue
		}
		var n uint64
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
		return n, nil
	}
	return 0, errors.New("the server has no orderledger_append_duration_seconds metric")
}

// startBenchServer serves every role on a stage's scratch stores at a free loopback port,
// wired as serve wires it. Its log is kept to warnings, so that the bench's progress stays
// readable.
func startBenchServer(ctx context.Context, st bench.Stores) (*bench.Server, error) {
	log := slog.New(levelAtLeast{slog.LevelWarn, slog.Default().Handler()}).With("component", "bench server")
	s, err := openService(ctx, benchConfig(st), allRoles, log)
	if err != nil {
		return nil, err
	}
	// Its clients authenticate, as a deployment's do, so the figures include checking a token.
	token, err := s.tokens.Create(ctx, "bench", access.Admin, "orderledger bench", time.Now())
	if err != nil {
		s.close()
		return nil, fmt.Errorf("create the bench's token: %w", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	background, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := s.runBackground(background)
	srv := &http.Server{Handler: s.httpHandler(log), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(s.broadcaster.Stop)
	go func() { _ = srv.Serve(listener) }()
	return &bench.Server{
		URL:     "http://" + listener.Addr().String(),
		Token:   token,
		Events:  s.events,
		Commits: func() (uint64, error) { return appendsCommitted(s.reg) },
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

// benchConfig is the configuration of a process on a bench stage's scratch stores. Their
// master key is scratch too, named explicitly (so that ORDERLEDGER_MASTER_KEY_FILE in the
// environment of a serve subprocess does not name another): beside a SQLite store, else a file
// in the temporary directory named after the database (not its connection parameters), so
// that every process and every connection of the stage shares it.
func benchConfig(st bench.Stores) *config {
	c := &config{events: st.EventsDSN, read: st.ReadDSN}
	if kind, _ := stores.KindOf(st.EventsDSN); kind == stores.SQLite {
		c.masterKeyFile = privacy.DefaultMasterKeyFile(stores.SQLitePath(st.EventsDSN))
	} else {
		identity := st.EventsDSN
		if u, err := url.Parse(st.EventsDSN); err == nil {
			u.RawQuery, u.User = "", nil
			identity = u.String()
		}
		sum := sha256.Sum256([]byte(identity + " " + st.StreamPrefix))
		c.masterKeyFile = filepath.Join(os.TempDir(), "orderledger-bench-"+hex.EncodeToString(sum[:8])+".master-key")
	}
	return c
}

// benchKeyArgs are the serve arguments that give a bench stage's process its master key.
func benchKeyArgs(st bench.Stores) []string {
	if f := benchConfig(st).masterKeyFile; f != "" {
		return []string{"--master-key-file", f}
	}
	return nil
}

// benchPrivateEvents wraps a stage's event store as serve wraps its own, so that appends and
// rebuilds measured outside a server pay for sealing and opening personal data as a server's do.
func benchPrivateEvents(ctx context.Context, st bench.Stores, store eventstore.Store) (eventstore.Store, error) {
	return benchConfig(st).private(ctx, store)
}
