package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/commands"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// syncBuffer is a log destination the runner's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// metricValue reads one series from a registry; labels are name=value pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// runAlone runs one runner in a goroutine and returns a channel with Run's result.
func runAlone(ctx context.Context, r *Runner) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return done
}

func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitLong):
		t.Fatal("the runner did not stop")
		return nil
	}
}

// An event whose command the domain refuses is a bug: the runner stops, says which event
// loudly, shows it in Status and the metrics, and never moves past it.
func TestARefusedCommandStopsTheRunnerAtItsEvent(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("VASE", 1)
		// An order shipped that nothing was ever reserved for: the stock stream refuses to ship it.
		_, data, err := domain.EncodeEvent(domain.OrderShipped{OrderID: "ghost", Carrier: "DHL", TrackingNumber: "X", Lines: []domain.ShippedLine{{SKU: "VASE", Quantity: 1}}, ShippedAt: e.h.Now()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.store.Append(t.Context(), domain.OrderStream("ghost"), eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: "OrderShipped.v1", Data: data})
		if err != nil {
			t.Fatal(err)
		}

		for attempt := 1; attempt <= 2; attempt++ {
			var logs syncBuffer
			reg, withReg := withMetrics()
			r := e.newRunner(withReg, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			err := waitResult(t, runAlone(t.Context(), r))

			var f *Failure
			if !errors.As(err, &f) || !errors.Is(err, domain.ErrNotReserved) {
				t.Fatalf("run %d ended with %v; want a *Failure wrapping ErrNotReserved", attempt, err)
			}
			if f.Stream != "order-ghost" || f.Version != 0 || f.Type != "OrderShipped.v1" || f.Position != res.Position {
				t.Fatalf("failure %+v: want order-ghost version 0 OrderShipped.v1 at %s", f, res.Position)
			}
			st := r.Status()
			if st.State != StateFailed || st.Err() == nil || st.Failure.Stream != "order-ghost" {
				t.Fatalf("status %+v: want failed naming order-ghost", st)
			}
			if _, err := json.Marshal(st); err != nil {
				t.Fatalf("status does not marshal for /readyz: %v", err)
			}
			out := logs.String()
			for _, want := range []string{"level=ERROR", "position=" + res.Position.String(), "stream=order-ghost", "version=0", "type=OrderShipped.v1", "not_reserved"} {
				if !strings.Contains(out, want) && !strings.Contains(out, strings.ReplaceAll(want, "_", " ")) {
					t.Fatalf("the error log does not say %q:\n%s", want, out)
				}
			}
			if n := metricValue(t, reg, "orderledger_automation_errors_total", "kind", "fatal"); n != 1 {
				t.Fatalf("fatal errors counted: %v, want 1", n)
			}
			at, err := e.checkpoints.Position(t.Context(), Name)
			if err != nil {
				t.Fatal(err)
			}
			if at.Compare(res.Position) >= 0 {
				t.Fatalf("checkpoint %s moved past the failed event at %s", at, res.Position)
			}
		}
	})
}

// flakyStore fails every append while down is set, as a store that cannot be reached.
type flakyStore struct {
	eventstore.Store
	down     atomic.Bool
	refusals atomic.Int64
}

func (f *flakyStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if f.down.Load() {
		f.refusals.Add(1)
		return eventstore.AppendResult{}, fmt.Errorf("%w: injected by the test", eventstore.ErrUnavailable)
	}
	return f.Store.Append(ctx, stream, expected, events...)
}

func TestStoreFailuresAreRetriedWithoutAdvancing(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("MUG", 5)
		e.customer("fay")
		flaky := &flakyStore{Store: e.store}
		flaky.down.Store(true)
		reg, withReg := withMetrics()
		r := New(commands.NewHandler(flaky), e.checkpoints, withReg, WithLogger(testLogger(t)))
		r.minBackoff, r.maxBackoff = 5*time.Millisecond, 50*time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		done := runAlone(ctx, r)
		defer func() { cancel(); <-done }()

		if err := e.place("o1", "fay", 0, line("MUG", 1, 800)); err != nil {
			t.Fatal(err)
		}
		e.waitFor(waitLong, "the runner to retry", func() (bool, string) {
			st := r.Status()
			return st.State == StateRetrying && strings.Contains(st.LastError, "unavailable") && flaky.refusals.Load() >= 3, fmt.Sprintf("%+v", st)
		})
		at, err := e.checkpoints.Position(t.Context(), Name)
		if err != nil {
			t.Fatal(err)
		}
		if at.Compare(e.lastWrite) >= 0 {
			t.Fatalf("checkpoint %s moved past the order placed at %s while no command could be sent", at, e.lastWrite)
		}
		if n := metricValue(t, reg, "orderledger_automation_errors_total", "kind", "transient"); n < 3 {
			t.Fatalf("transient errors counted: %v, want at least 3", n)
		}

		flaky.down.Store(false)
		e.waitOrder("o1", waitLong, "invoiced once the store is back", func(o domain.Order) bool { return o.InvoiceNumber == "INV-1" })
		e.waitFor(waitLong, "the runner to run again", func() (bool, string) {
			st := r.Status()
			return st.State == StateActive && st.Position.Compare(e.lastWrite) >= 0, fmt.Sprintf("%+v", st)
		})
	})
}

// Two servers start: one runner acts, the other waits; when the first stops, the second
// takes over from the first's checkpoint.
func TestOneRunnerActsAtATime(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("PEN", 10)
		e.customer("gus")
		regA, withRegA := withMetrics()
		regB, withRegB := withMetrics()
		a := e.newRunnerAs("server-a", withRegA)
		b := e.newRunnerAs("server-b", withRegB)
		ctxA, stopA := context.WithCancel(t.Context())
		doneA := runAlone(ctxA, a)
		e.waitFor(waitLong, "server-a to run", func() (bool, string) { return a.Status().State == StateActive, a.Status().State })
		ctxB, stopB := context.WithCancel(t.Context())
		doneB := runAlone(ctxB, b)
		defer func() { stopB(); <-doneB }()
		e.waitFor(waitLong, "server-b to wait", func() (bool, string) {
			st := b.Status()
			return st.State == StateStandby && strings.HasPrefix(st.LeaseHolder, "server-a#"), fmt.Sprintf("%+v", st)
		})

		if err := e.place("o1", "gus", 0, line("PEN", 1, 100)); err != nil {
			t.Fatal(err)
		}
		e.waitOrder("o1", waitLong, "invoiced", func(o domain.Order) bool { return o.InvoiceNumber == "INV-1" })
		if a.Status().EventsHandled == 0 || b.Status().EventsHandled != 0 {
			t.Fatalf("server-a handled %d events, server-b %d; want only server-a", a.Status().EventsHandled, b.Status().EventsHandled)
		}
		if metricValue(t, regA, "orderledger_automation_lease_held") != 1 || metricValue(t, regB, "orderledger_automation_lease_held") != 0 {
			t.Fatal("lease_held: want 1 on server-a, 0 on server-b")
		}

		e.waitFor(waitLong, "server-a to checkpoint o1's consequences", func() (bool, string) {
			st := a.Status()
			return st.Position.Compare(a.sentUpTo()) >= 0, fmt.Sprintf("%+v", st)
		})
		stopA()
		if err := waitResult(t, doneA); !errors.Is(err, context.Canceled) {
			t.Fatalf("server-a ended with %v", err)
		}
		handoff := a.Status().Position
		e.waitFor(waitLong, "server-b to take over", func() (bool, string) { return b.Status().State == StateActive, b.Status().State })
		if err := e.place("o2", "gus", 0, line("PEN", 1, 100)); err != nil {
			t.Fatal(err)
		}
		e.waitOrder("o2", waitLong, "invoiced by server-b", func(o domain.Order) bool { return o.InvoiceNumber == "INV-2" })
		e.waitFor(waitLong, "server-b to checkpoint", func() (bool, string) {
			return b.Status().Position.Compare(b.sentUpTo()) >= 0, fmt.Sprintf("%+v", b.Status())
		})
		// server-b started from server-a's checkpoint: it handled only what came after.
		all := readAll(t, e.store)
		after := 0
		for _, ev := range all {
			if ev.Position.Compare(handoff) > 0 {
				after++
			}
		}
		if got := b.Status().EventsHandled; got != uint64(after) {
			t.Fatalf("server-b handled %d events; %d came after server-a's checkpoint %s", got, after, handoff)
		}
		if metricValue(t, regB, "orderledger_automation_lease_held") != 1 {
			t.Fatal("lease_held on server-b: want 1")
		}
	})
}

func TestMetricsAndStatusWhenCaughtUp(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.receive("INK", 3)
		e.customer("hal")
		reg, withReg := withMetrics()
		sup := e.run(withReg)
		if err := e.place("o1", "hal", 0, line("INK", 1, 500)); err != nil {
			t.Fatal(err)
		}
		e.waitOrder("o1", waitLong, "invoiced", func(o domain.Order) bool { return o.Invoiced() })
		e.waitQuiet(sup, waitLong)
		log := readAll(t, e.store)
		if got := metricValue(t, reg, "orderledger_automation_events_handled_total"); got != float64(len(log)) {
			t.Fatalf("events handled %v, log has %d", got, len(log))
		}
		// ReserveStock, RecordLineAllocation, AssignInvoiceNumber, RecordInvoice.
		if got := metricValue(t, reg, "orderledger_automation_commands_total", "outcome", "appended"); got != 4 {
			t.Fatalf("commands appended %v, want 4", got)
		}
		if got := metricValue(t, reg, "orderledger_automation_lag_seconds"); got != 0 {
			t.Fatalf("lag %v when caught up, want 0", got)
		}
		last := log[len(log)-1].RecordedAt
		if got := metricValue(t, reg, "orderledger_automation_last_handled_event_timestamp_seconds"); time.Duration((got-float64(last.UnixNano())/1e9)*1e9).Abs() > time.Millisecond {
			t.Fatalf("last handled timestamp %v, want %v", got, float64(last.UnixNano())/1e9)
		}
	})
}
