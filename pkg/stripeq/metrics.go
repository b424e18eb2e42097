package stripeq

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stripeq/stripeq/pkg/httpserver"
)

// metrics are the worker's Prometheus metrics, served with /healthz at
// METRICS_ADDR when it is set.
type metrics struct {
	registry *prometheus.Registry
	// handled counts finished attempts by event type and outcome: success,
	// retry, archived, waiting (a Stripe 429 or no global slot: retried
	// without counting).
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec // handler time by event type
	slotWait prometheus.Histogram     // time spent waiting for a global slot
	noSlot   prometheus.Counter       // tasks that gave up waiting for one
}

func newMetrics(insp *asynq.Inspector) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		registry: reg,
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripeq_worker_handled_total",
			Help: "Finished handler attempts by Stripe event type and outcome (success, retry, archived, waiting).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stripeq_worker_handler_seconds",
			Help:    "Handler time by Stripe event type, after the global concurrency slot is taken.",
			Buckets: prometheus.ExponentialBuckets(5e-4, 2, 16), // 0.5 ms … 16 s
		}, []string{"type"}),
		slotWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stripeq_worker_global_slot_wait_seconds",
			Help:    "Time a task waited for a global concurrency slot (GLOBAL_CONCURRENCY).",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
		noSlot: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stripeq_worker_global_slot_denied_total",
			Help: "Tasks that found no global concurrency slot in time and were retried without counting.",
		}),
	}
	reg.MustRegister(m.handled, m.duration, m.slotWait, m.noSlot)
	if insp != nil {
		// Queue sizes, latency and memory from asynq (asynq_* metrics).
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp))
	}
	return m
}

// serve serves /metrics and /healthz on addr until ctx ends.
func (m *metrics) serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	return httpserver.Serve(ctx, httpserver.New(mux), l)
}

func seconds(start time.Time) float64 { return time.Since(start).Seconds() }
