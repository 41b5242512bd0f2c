package automation

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/commands"
)

// Metrics are the automation's Prometheus series. Register them once per process with
// NewMetrics and hand them to each Runner with WithMetrics; a nil *Metrics records nothing.
type Metrics struct {
	events      prometheus.Counter
	commands    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	lastHandled prometheus.Gauge
	lease       prometheus.Gauge
	runner      atomic.Pointer[Runner] // the latest runner given these metrics: the lag's source
}

// NewMetrics registers the automation's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderledger_automation_events_handled_total",
			Help: "Events of the log the order-to-cash automation has handled and checkpointed.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderledger_automation_commands_total",
			Help: "Commands the automation sent, by outcome: appended, already_applied (a replay), unchanged (nothing to record).",
		}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderledger_automation_errors_total",
			Help: "Errors met by the automation: transient (retried) or fatal (the runner stopped).",
		}, []string{"kind"}),
		lastHandled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderledger_automation_last_handled_event_timestamp_seconds",
			Help: "When the last event the automation handled was recorded, in Unix seconds.",
		}),
		lease: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orderledger_automation_lease_held",
			Help: "1 while this process holds the automation lease and acts on the log, 0 in standby.",
		}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orderledger_automation_lag_seconds",
		Help: "Age of the oldest event delivered to the automation and not yet handled; 0 when caught up.",
	}, func() float64 {
		if r := m.runner.Load(); r != nil {
			return r.lagSeconds()
		}
		return 0
	})
	reg.MustRegister(m.events, m.commands, m.errors, m.lastHandled, m.lease, lag)
	return m
}

func (m *Metrics) handled(n int, recordedAt time.Time) {
	if m == nil {
		return
	}
	m.events.Add(float64(n))
	m.lastHandled.Set(float64(recordedAt.UnixNano()) / 1e9)
}

func (m *Metrics) commandSent(res commands.Result) {
	if m == nil {
		return
	}
	outcome := "appended"
	switch {
	case res.AlreadyApplied:
		outcome = "already_applied"
	case res.Unchanged:
		outcome = "unchanged"
	}
	m.commands.WithLabelValues(outcome).Inc()
}

func (m *Metrics) errorSeen(kind string) {
	if m != nil {
		m.errors.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) leaseHeld(held bool) {
	if m == nil {
		return
	}
	if held {
		m.lease.Set(1)
	} else {
		m.lease.Set(0)
	}
}
