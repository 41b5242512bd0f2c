package commands

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the write side.
type Metrics struct {
	appendSeconds   *prometheus.HistogramVec
	conflictRetries prometheus.Counter
	cache           cacheWatch
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
	reg.MustRegister(m.appendSeconds, m.conflictRetries,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orderledger_command_cache_bytes",
			Help: "Bytes the command handler's cache of folded streams holds, as it measures them (bounded by serve --command-cache-bytes).",
		}, func() float64 { _, b := m.cache.usage(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orderledger_command_cache_streams",
			Help: "Folded streams the command handler's cache holds.",
		}, func() float64 { n, _ := m.cache.usage(); return float64(n) }),
	)
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

// cacheWatch lets the metrics read the handler's cache, which exists only once the handler
// does.
type cacheWatch struct {
	mu    sync.Mutex
	cache *stateCache
}

func (w *cacheWatch) usage() (entries, bytes int) {
	w.mu.Lock()
	c := w.cache
	w.mu.Unlock()
	if c == nil {
		return 0, 0
	}
	return c.usage()
}

func (m *Metrics) watchCache(c *stateCache) {
	if m == nil {
		return
	}
	m.cache.mu.Lock()
	m.cache.cache = c
	m.cache.mu.Unlock()
}
