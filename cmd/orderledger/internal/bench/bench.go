package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// The figures, named as docs/api.md names them (orderledger bench --json).
const (
	AppendSingle      = "append_single"
	AppendBatch100    = "append_batch100"
	OrderIntake       = "order_intake"
	ProjectionLagP99  = "projection_lag_p99"
	OrderToCash       = "order_to_cash"
	SustainedOrders   = "sustained_orders"
	ReadCustomer      = "read_customer"
	ReadInventory     = "read_inventory"
	ProjectionRebuild = "projection_rebuild"
	AuditVerify       = "audit_verify"
	Export            = "export"
	ServeRSS          = "serve_rss"
	// RSSAfterOrders and ColdFirstInvoice are reported per history size, as
	// rss_after_orders_100k, cold_first_invoice_ms_1m and so on (see historyStage).
	RSSAfterOrders   = "rss_after_orders"
	ColdFirstInvoice = "cold_first_invoice_ms"
	Failover         = "failover_ms"
	StreamFanout     = "stream_fanout"

	// Extras, reported beside the figure whose measurement yields them.
	OrderIntakeP50      = "order_intake_p50"
	OrderIntakeP99      = "order_intake_p99"
	ProjectionLagP50    = "projection_lag_p50"
	OrderToCashCommits  = "order_to_cash_commits"
	CommitsPerCycle     = "commits_per_cycle"
	PlacedToInvoicedP50 = "placed_to_invoiced_p50"
	PlacedToInvoicedP99 = "placed_to_invoiced_p99"
	ReadCustomerP99     = "read_customer_p99"
	ReadInventoryP99    = "read_inventory_p99"
	LogEvents           = "log_events"
	ServeStartup        = "serve_startup"
	ServeCatchUp        = "serve_catchup"
	FailoverRestart     = "failover_restart_ms"
	StreamFanoutApart   = "stream_fanout_apart"
)

// Names lists the figures --only accepts, in the order a run measures them.
var Names = []string{
	AppendSingle, AppendBatch100,
	OrderIntake, ProjectionLagP99, OrderToCash, SustainedOrders, ReadCustomer, ReadInventory, StreamFanout,
	ProjectionRebuild, AuditVerify, Export, ServeRSS,
	RSSAfterOrders, ColdFirstInvoice, Failover,
}

// The stages of a run; each has stores of its own in the scratch space, so that the append
// figures' synthetic events never reach a projector and the generated log holds nothing but
// the history it is generated from. The order intake baseline inserts into the append stage's
// database, where no server follows the log; the serve process started over the generated log
// keeps its read models in a store of its own (stageFresh), so that it builds them from the
// whole log as a new server would.
const (
	stageAppend = "append"
	stageServe  = "serve"
	stageLog    = "log"
	stageFresh  = "fresh"
	// The histories of rss_after_orders and cold_first_invoice_ms, one per size.
	stageHistory1 = "history1"
	stageHistory2 = "history2"
	// stageFailover holds the log the failover figures' processes write and project.
	stageFailover = "failover"
)

var (
	appendFigures  = []string{AppendSingle, AppendBatch100}
	serveFigures   = []string{OrderIntake, ProjectionLagP99, OrderToCash, SustainedOrders, ReadCustomer, ReadInventory, StreamFanout}
	logFigures     = []string{ProjectionRebuild, AuditVerify, Export, ServeRSS}
	historyFigures = []string{RSSAfterOrders, ColdFirstInvoice}
)

// Result is one figure. Baseline and Ratio (Value/Baseline) are nil where no baseline applies.
type Result struct {
	Name     string   `json:"name"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	Baseline *float64 `json:"baseline"`
	Ratio    *float64 `json:"ratio"`
}

// Report is what a run measured, in the order it measured it.
type Report struct {
	Results []Result `json:"results"`
}

// Stores names one stage's stores, all in scratch space.
type Stores struct {
	// EventsDSN is the event store's DSN. StreamPrefix, for KurrentDB, is the prefix the
	// stage's streams are written under (see kurrentdb.WithStreamPrefix).
	EventsDSN    string
	StreamPrefix string
	// ReadDSN is the read store's DSN; "" when the events DSN is KurrentDB and no read DSN
	// was given.
	ReadDSN string
}

// Server is an orderledger server taking every role, running in this process on a stage's
// stores. The command supplies it, built as serve builds one, so that the figures are those
// of the real service.
type Server struct {
	// URL is its base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Token is the bearer token every request to it carries (none: it serves in open mode), so
	// that the figures include authenticating each request, as a deployment's do.
	Token string
	// Events is its event store, which the order intake baseline appends to.
	Events eventstore.Store
	// CaughtUp reports whether its projectors and its automation have handled the log up to
	// pos, and fails when one of them has stopped.
	CaughtUp func(ctx context.Context, pos eventstore.Position) (bool, error)
	// Commits counts the appends of a command's events it has made since it started, the
	// clients' commands and its automation's alike.
	Commits func() (uint64, error)
	// Stop stops it and closes its stores.
	Stop func()
}

// Config says what to measure where.
type Config struct {
	// EventsDSN and ReadDSN name the user's stores, as --events and --read do; the run only
	// creates scratch space on the servers they name. ReadDSN "" means the events DSN.
	EventsDSN string
	ReadDSN   string
	// Duration is how long each figure is measured, its baseline's turns included.
	Duration time.Duration
	// Only, when not empty, names the figures to measure (see Names).
	Only []string
	// Clients is how many writers append at once for append_single, and how many HTTP
	// clients the server figures use (default 32).
	Clients int
	// LogEvents is the size of the log the rebuild, audit and serve_rss figures read
	// (default DefaultLogEvents).
	LogEvents int
	// StartServer starts a server on a stage's stores; needed by the server figures.
	StartServer func(ctx context.Context, stores Stores) (*Server, error)
	// PrivateEvents wraps a stage's event store as serve wraps its own (personal data sealed on
	// append, opened on read), for the figures that use the store without a server:
	// append_single, append_batch100, the generated log and projection_rebuild. Nil leaves
	// the store as it is.
	PrivateEvents func(ctx context.Context, stores Stores, store eventstore.Store) (eventstore.Store, error)
	// ServeCommand returns the command that runs `orderledger serve` on stores at addr, with
	// every role but automation; needed by serve_rss, which measures that process.
	ServeCommand func(ctx context.Context, stores Stores, addr string) *exec.Cmd
	// ServeAllCommand is ServeCommand with every role, automation included; needed by
	// rss_after_orders and cold_first_invoice_ms.
	ServeAllCommand func(ctx context.Context, stores Stores, addr string) *exec.Cmd
	// HistoryOrders are the history sizes rss_after_orders and cold_first_invoice_ms are
	// measured after, one or two (default DefaultHistoryOrders).
	HistoryOrders []int
	// ServeRolesCommand returns the command that runs `orderledger serve` on stores at addr
	// with the roles given (comma-separated); needed by failover_ms.
	ServeRolesCommand func(ctx context.Context, stores Stores, addr, roles string) *exec.Cmd
	// ListenCommand returns the command that runs `orderledger bench listen`: StreamListeners
	// stream listeners on the server at url, in a process of their own (see RunListeners); the
	// token reaches it in its environment. Without it stream_fanout's extra
	// stream_fanout_apart is not measured.
	ListenCommand func(ctx context.Context, url, token string) *exec.Cmd
	// Progress receives what the run is doing, line by line; nil discards it.
	Progress io.Writer
}

// DefaultLogEvents is the size of the generated log: a million events, the size the targets
// for rebuild, audit and a server's memory and start-up are set for.
const DefaultLogEvents = 1_000_000

// DefaultClients is how many concurrent writers and HTTP clients a run uses by default.
const DefaultClients = 32

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = DefaultClients
	}
	if c.LogEvents <= 0 {
		c.LogEvents = DefaultLogEvents
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if len(c.HistoryOrders) == 0 {
		c.HistoryOrders = DefaultHistoryOrders
	}
	return c
}

// CheckOnly returns the figures named in only, and an error naming one that is not a figure.
func CheckOnly(only []string) ([]string, error) {
	var out []string
	for _, name := range only {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(Names, name) {
			return nil, fmt.Errorf("--only: %q is not a figure; want some of %s", name, strings.Join(Names, ", "))
		}
		out = append(out, name)
	}
	return out, nil
}

// Run measures the figures cfg selects in scratch space and removes it, also when ctx ends
// (Ctrl-C) or a measurement fails. The error says whether the scratch space could not be
// removed, and then what to remove by hand.
func Run(ctx context.Context, cfg Config) (report Report, err error) {
	cfg = cfg.withDefaults()
	if cfg.Duration <= 0 {
		return Report{}, errors.New("bench: --duration must be positive")
	}
	only, err := CheckOnly(cfg.Only)
	if err != nil {
		return Report{}, err
	}
	r := &run{cfg: cfg, selected: map[string]bool{}}
	for _, name := range Names {
		r.selected[name] = len(only) == 0 || slices.Contains(only, name)
	}
	if r.any(serveFigures...) && cfg.StartServer == nil {
		return Report{}, errors.New("bench: the server figures need Config.StartServer")
	}
	if r.selected[Failover] && cfg.ServeRolesCommand == nil {
		return Report{}, errors.New("bench: failover_ms needs Config.ServeRolesCommand")
	}
	if r.selected[ServeRSS] && cfg.ServeCommand == nil {
		return Report{}, errors.New("bench: serve_rss needs Config.ServeCommand")
	}
	if r.any(historyFigures...) {
		if cfg.ServeAllCommand == nil {
			return Report{}, errors.New("bench: rss_after_orders and cold_first_invoice_ms need Config.ServeAllCommand")
		}
		if len(cfg.HistoryOrders) > len(historyStages) || slices.ContainsFunc(cfg.HistoryOrders, func(n int) bool { return n <= 0 }) {
			return Report{}, fmt.Errorf("bench: --history-orders: one or two positive sizes, got %v", cfg.HistoryOrders)
		}
	}

	space, err := newSpace(ctx, cfg.EventsDSN, cfg.ReadDSN, r.logf)
	if err != nil {
		return Report{}, err
	}
	defer func() {
		// The scratch space goes also when ctx has ended: that is what Ctrl-C asks for.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		if rmErr := space.remove(cleanup); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}()
	if r.any(serveFigures...) || r.selected[ProjectionRebuild] || r.selected[ServeRSS] || r.any(historyFigures...) || r.selected[Failover] {
		if err := space.needRead(); err != nil {
			return Report{}, err
		}
	}

	if r.any(appendFigures...) {
		if err := r.appendStage(ctx, space.stores(stageAppend)); err != nil {
			return Report{}, err
		}
	}
	if r.any(serveFigures...) {
		if err := r.serveStage(ctx, space.stores(stageServe), space.stores(stageAppend)); err != nil {
			return Report{}, err
		}
	}
	if r.any(logFigures...) {
		if err := r.logStage(ctx, space.stores(stageLog), space.stores(stageFresh)); err != nil {
			return Report{}, err
		}
	}
	if r.any(historyFigures...) {
		if err := r.historyStage(ctx, space); err != nil {
			return Report{}, err
		}
	}
	if r.selected[Failover] {
		if err := r.failover(ctx, space.stores(stageFailover)); err != nil {
			return Report{}, err
		}
	}
	return Report{Results: r.results}, nil
}

// run is one run's state: what it measures and what it has measured.
type run struct {
	cfg      Config
	selected map[string]bool
	results  []Result
}

func (r *run) any(names ...string) bool {
	for _, n := range names {
		if r.selected[n] {
			return true
		}
	}
	return false
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
}

// add records a figure; baseline <= 0 means none applies. Figures are rounded to what a noisy
// shared machine can tell apart.
func (r *run) add(name string, value float64, unit string, baseline float64) error {
	if math.IsNaN(value) || math.IsInf(value, 0) || math.IsNaN(baseline) || math.IsInf(baseline, 0) {
		return fmt.Errorf("bench: %s: no finite figure (value %v, baseline %v)", name, value, baseline)
	}
	res := Result{Name: name, Value: round(value, 2), Unit: unit}
	line := fmt.Sprintf("%s: %s %s", name, formatFloat(res.Value), unit)
	if baseline > 0 {
		b, ratio := round(baseline, 2), round(value/baseline, 3)
		res.Baseline, res.Ratio = &b, &ratio
		line += fmt.Sprintf(" (baseline %s, ratio %s)", formatFloat(b), formatFloat(ratio))
	}
	r.results = append(r.results, res)
	r.logf("%s", line)
	return nil
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}
