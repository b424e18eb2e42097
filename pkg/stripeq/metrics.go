package stripeq

import (
	"context"
	"net"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeq/stripeq/pkg/metrics"
)

// workerMetrics are the worker's Prometheus metrics, served with /healthz at
// METRICS_ADDR when it is set.
type workerMetrics struct {
	registry *prometheus.Registry
	// handled counts finished attempts by event type and outcome: success,
	// retry, archived, waiting (a Stripe 429 or no global slot: retried
	// without counting).
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec // handler time by event type
	slotWait prometheus.Histogram     // time spent waiting for a global slot
	noSlot   prometheus.Counter       // tasks that gave up waiting for one
	// delivered counts delivery attempts by destination and outcome:
	// delivered, retry, archived, waiting (DESTINATION_ORDER).
	delivered *prometheus.CounterVec
	// deliverySeconds is a POST's time to its response, by destination.
	deliverySeconds *prometheus.HistogramVec
}

func newMetrics(insp *asynq.Inspector, stores prometheus.Collector) *workerMetrics {
	reg := metrics.NewRegistry()
	m := &workerMetrics{
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
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripeq_worker_deliveries_total",
		Help: "Finished delivery attempts to destinations by destination and outcome (delivered, retry, archived, waiting).",
	}, []string{"destination", "outcome"})
	m.deliverySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripeq_worker_delivery_seconds",
		Help:    "Time from a delivery's POST to its destination's response (or error), by destination.",
		Buckets: prometheus.ExponentialBuckets(1e-3, 2, 16), // 1 ms … 33 s
	}, []string{"destination"})
	reg.MustRegister(m.handled, m.duration, m.slotWait, m.noSlot, m.delivered, m.deliverySeconds)
	if stores != nil {
		reg.MustRegister(stores)
	}
	if insp != nil {
		// Queue sizes, latency and memory from asynq (asynq_* metrics).
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp))
	}
	return m
}

// serve serves /metrics and /healthz on l until ctx ends.
func (m *workerMetrics) serve(ctx context.Context, l net.Listener) error {
	return metrics.Serve(ctx, m.registry, l)
}

func seconds(start time.Time) float64 { return time.Since(start).Seconds() }
