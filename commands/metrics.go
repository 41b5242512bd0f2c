package commands

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the write side.
type Metrics struct {
	appendSeconds   *prometheus.HistogramVec
	conflictRetries prometheus.Counter
}

// NewMetrics registers the write-side metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderledger_append_duration_seconds",
			Help:    "Time to append one command's events to the event store.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}, []string{"result"}),
		conflictRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orderledger_append_conflicts_retried_total",
			Help: "Appends retried because another writer changed the stream first.",
		}),
	}
	reg.MustRegister(m.appendSeconds, m.conflictRetries)
	return m
}

func (m *Metrics) observeAppend(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.appendSeconds.WithLabelValues(result).Observe(d.Seconds())
}

func (m *Metrics) conflictRetried() {
	if m != nil {
		m.conflictRetries.Inc()
	}
}
