package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stripeq/stripeq/pkg/metrics"
)

// apiMetrics are the api's Prometheus metrics, served at GET /metrics on
// METRICS_ADDR, apart from the webhook's listener.
type apiMetrics struct {
	registry *prometheus.Registry
	// requests counts webhook deliveries by outcome: received, duplicate,
	// ignored, bad_signature, bad_request, too_large, unavailable.
	requests *prometheus.CounterVec
	verify   prometheus.Histogram // signature check
	enqueue  prometheus.Histogram // a delivery's Redis work, from duplicate check to marker
	// versions counts verified deliveries by the API version their event
	// is rendered at (label api_version; see countVersion).
	versions *prometheus.CounterVec

	mu        sync.Mutex
	byVersion sync.Map // api_version → its prometheus.Counter, at most maxVersionLabels
	labels    int      // entries of byVersion, under mu
}

// maxVersionLabels bounds the api_version label's values: Stripe has a
// few versions a year, so more than this is not Stripe; the rest count
// as "other".
const maxVersionLabels = 32

func newMetrics() *apiMetrics {
	reg := metrics.NewRegistry()
	m := &apiMetrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripeq_api_webhook_requests_total",
			Help: "Stripe webhook deliveries by outcome.",
		}, []string{"outcome"}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stripeq_api_verify_seconds",
			Help:    "Time to verify a delivery's Stripe-Signature.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 14), // 5 µs … 41 ms
		}),
		enqueue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stripeq_api_enqueue_seconds",
			Help:    "Time a permitted delivery spends in Redis: the duplicate check, the enqueue, the marker and the Console index.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16), // 0.1 ms … 3.3 s
		}),
		versions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripeq_api_events_by_api_version_total",
			Help: "Verified Stripe webhook deliveries by the API version their event is rendered at (\"none\" for an event without one).",
		}, []string{"api_version"}),
	}
	reg.MustRegister(m.requests, m.verify, m.enqueue, m.versions)
	for _, o := range []string{"received", "duplicate", "ignored", "bad_signature", "bad_request", "too_large", "unavailable"} {
		m.requests.WithLabelValues(o) // export every outcome from the start, at 0
	}
	return m
}

// countOutcome counts each webhook delivery by the outcome its handler
// recorded.
func (m *apiMetrics) countOutcome() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if o := c.GetString(ctxOutcome); o != "" {
			m.requests.WithLabelValues(o).Inc()
		}
	}
}

// countVersion counts a verified delivery of an event at API version v,
// under the label v, "none" when empty, or "other" once maxVersionLabels
// values are in use. A version seen before costs one map read.
func (m *apiMetrics) countVersion(v string) {
	if c, ok := m.byVersion.Load(v); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	m.mu.Lock()
	c, ok := m.byVersion.Load(v)
	switch {
	case ok:
	case m.labels >= maxVersionLabels:
		c = m.versions.WithLabelValues("other")
	default:
		label := v
		if v == "" {
			label = "none"
		}
		c = m.versions.WithLabelValues(label)
		m.byVersion.Store(v, c)
		m.labels++
	}
	m.mu.Unlock()
	c.(prometheus.Counter).Inc()
}

func (m *apiMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// serve serves GET /metrics (and /healthz) on l until ctx ends.
func (m *apiMetrics) serve(ctx context.Context, l net.Listener) error {
	return metrics.Serve(ctx, m.registry, l)
}

// since observes the time from start on h.
func since(h prometheus.Histogram, start time.Time) { h.Observe(time.Since(start).Seconds()) }
