package projections

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Status is what a Runner reports, for /readyz and operators.
type Status struct {
	// Log is how far the runner has counted the log, the head lag is measured against.
	Log        LogStatus         `json:"log"`
	Projectors []ProjectorStatus `json:"projectors"`
}

// LogStatus is the runner's count of the log.
type LogStatus struct {
	Position string `json:"position"`
	Events   int64  `json:"events"`
	State    string `json:"state"`
}

// ProjectorStatus is one projector's state and lag.
type ProjectorStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Position is the checkpoint: the last event the read model includes.
	Position string `json:"position"`
	// Events counts the log's events up to Position.
	Events int64 `json:"events"`
	// LagEvents is how many events of the log (as far as counted) the projector has yet to
	// read; LagSeconds how much older, by the time they were recorded, its last event is than
	// the last event counted. Both are 0 when it is caught up.
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	// LeaseHolder is the process running the projector while this one stands by.
	LeaseHolder string `json:"lease_holder,omitempty"`
	// Error is the last failure while retrying, or what stopped the projector.
	Error       string       `json:"error,omitempty"`
	BrokenEvent *BrokenEvent `json:"broken_event,omitempty"`
}

// BrokenEvent names the event a projector stopped on.
type BrokenEvent struct {
	Position string `json:"position"`
	Stream   string `json:"stream"`
	Version  uint64 `json:"version"`
	Type     string `json:"type"`
	EventID  string `json:"event_id"`
	Error    string `json:"error"`
}

// Healthy reports whether no projector has stopped on a broken event.
func (s Status) Healthy() bool {
	for _, p := range s.Projectors {
		if p.State == StateFailed {
			return false
		}
	}
	return true
}

// Status reports every projector's state and lag.
func (r *Runner) Status() Status {
	head := r.counter.progress()
	r.counter.mu.Lock()
	st := Status{Log: LogStatus{Position: head.pos.String(), Events: head.events, State: r.counter.state}}
	r.counter.mu.Unlock()
	for _, w := range r.workers {
		w.mu.Lock()
		ps := ProjectorStatus{
			Name: w.name, State: w.state, Position: w.current.pos.String(), Events: w.current.events,
			LeaseHolder: w.holder,
		}
		if w.lastErr != nil {
			ps.Error = w.lastErr.Error()
		}
		if b := w.broken; b != nil {
			ps.BrokenEvent = &BrokenEvent{
				Position: b.Position.String(), Stream: b.Stream, Version: b.Version, Type: b.Type,
				EventID: b.EventID.String(), Error: b.Err.Error(),
			}
		}
		cur := w.current
		w.mu.Unlock()
		if behind := head.events - cur.events; behind > 0 {
			ps.LagEvents = behind
			ps.LagSeconds = max(0, float64(head.lastRecordedAt-cur.lastRecordedAt)/1e6)
		}
		st.Projectors = append(st.Projectors, ps)
	}
	return st
}

// runnerCollector exports the runner's status as Prometheus metrics, computed at each scrape.
type runnerCollector struct{ r *Runner }

var (
	lagEventsDesc = prometheus.NewDesc("orderledger_projection_lag_events",
		"Events of the log the projector has yet to read.", []string{"projector"}, nil)
	lagSecondsDesc = prometheus.NewDesc("orderledger_projection_lag_seconds",
		"How much older the projector's last event is than the log's last counted event, by recording time.", []string{"projector"}, nil)
	eventsDesc = prometheus.NewDesc("orderledger_projection_events",
		"Events of the log up to the projector's checkpoint.", []string{"projector"}, nil)
	runningDesc = prometheus.NewDesc("orderledger_projection_running",
		"1 while this process runs the projector (holds its lease and follows the log).", []string{"projector"}, nil)
	stoppedDesc = prometheus.NewDesc("orderledger_projection_stopped",
		"1 when the projector stopped on a broken event.", []string{"projector"}, nil)
	logEventsDesc = prometheus.NewDesc("orderledger_projection_log_events",
		"Events in the log, as far as the runner has counted.", nil, nil)
)

func (c runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lagEventsDesc, lagSecondsDesc, eventsDesc, runningDesc, stoppedDesc, logEventsDesc} {
		ch <- d
	}
}

func (c runnerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	ch <- prometheus.MustNewConstMetric(logEventsDesc, prometheus.GaugeValue, float64(st.Log.Events))
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range st.Projectors {
		ch <- prometheus.MustNewConstMetric(lagEventsDesc, prometheus.GaugeValue, float64(p.LagEvents), p.Name)
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, p.LagSeconds, p.Name)
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.GaugeValue, float64(p.Events), p.Name)
		ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, flag(p.State == StateActive), p.Name)
		ch <- prometheus.MustNewConstMetric(stoppedDesc, prometheus.GaugeValue, flag(p.State == StateFailed), p.Name)
	}
}
