// Package workermetrics is the worker's Prometheus metrics, served with
// /healthz at METRICS_ADDR: handler attempts and times, global
// concurrency, deliveries, the failure store and asynq's queues. Part of
// pkg/stripeq's engine: internal, no compatibility promise.
package workermetrics

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/metrics"
)

// Metrics are the worker's Prometheus metrics, served with /healthz at
// METRICS_ADDR when it is set.
type Metrics struct {
	registry *prometheus.Registry
	// Handled counts finished attempts by event type and outcome: success,
	// retry, archived, waiting (a Stripe 429 or no global slot: retried
	// without counting).
	Handled  *prometheus.CounterVec
	Duration *prometheus.HistogramVec // handler time by event type
	SlotWait prometheus.Histogram     // time spent waiting for a global slot
	NoSlot   prometheus.Counter       // tasks that gave up waiting for one
	// Delivered counts delivery attempts by destination and outcome:
	// delivered, retry, archived, waiting (DESTINATION_ORDER).
	Delivered *prometheus.CounterVec
	// DeliverySeconds is a POST's time to its response, by destination.
	DeliverySeconds *prometheus.HistogramVec
}

// New returns the metrics, with asynq's queue metrics from insp and the
// stores' from stores, when not nil.
func New(insp *asynq.Inspector, stores prometheus.Collector) *Metrics {
	reg := metrics.NewRegistry()
	m := &Metrics{
		registry: reg,
		Handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripeq_worker_handled_total",
			Help: "Finished handler attempts by Stripe event type and outcome (success, retry, archived, waiting).",
		}, []string{"type", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stripeq_worker_handler_seconds",
			Help:    "Handler time by Stripe event type, after the global concurrency slot is taken.",
			Buckets: prometheus.ExponentialBuckets(5e-4, 2, 16), // 0.5 ms … 16 s
		}, []string{"type"}),
		SlotWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stripeq_worker_global_slot_wait_seconds",
			Help:    "Time a task waited for a global concurrency slot (GLOBAL_CONCURRENCY).",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
		NoSlot: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stripeq_worker_global_slot_denied_total",
			Help: "Tasks that found no global concurrency slot in time and were retried without counting.",
		}),
	}
	m.Delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripeq_worker_deliveries_total",
		Help: "Finished delivery attempts to destinations by destination and outcome (delivered, retry, archived, waiting).",
	}, []string{"destination", "outcome"})
	m.DeliverySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripeq_worker_delivery_seconds",
		Help:    "Time from a delivery's POST to its destination's response (or error), by destination.",
		Buckets: prometheus.ExponentialBuckets(1e-3, 2, 16), // 1 ms … 33 s
	}, []string{"destination"})
	reg.MustRegister(m.Handled, m.Duration, m.SlotWait, m.NoSlot, m.Delivered, m.DeliverySeconds)
	if stores != nil {
		reg.MustRegister(stores)
	}
	if insp != nil {
		// Queue sizes, latency and memory from asynq (asynq_* metrics).
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp))
	}
	return m
}

// Serve serves /metrics and /healthz on l until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	return metrics.Serve(ctx, m.registry, l)
}

// Seconds is the time since start, in seconds, for a histogram.
func Seconds(start time.Time) float64 { return time.Since(start).Seconds() }

// asynqArchiveLimit is the size asynq v0.26 trims each queue's archive
// to (maxArchiveSize in its internal/rdb). The failure store keeps what
// it trims; the gauge shows how close the archive is.
const asynqArchiveLimit = 10_000

// storeCollector reads, at each scrape, how many failures the failure
// store keeps and how full each store with a limit is.
type storeCollector struct {
	rdb    redis.UniversalClient
	queues []string
	kept   *prometheus.Desc
	usage  *prometheus.Desc
}

// NewStoreCollector returns the collector of the failure store and of the
// stores with a limit, for the queues (every shard queue).
func NewStoreCollector(rdb redis.UniversalClient, queues []string) prometheus.Collector {
	return &storeCollector{
		rdb:    rdb,
		queues: queues,
		kept: prometheus.NewDesc("stripeq_failures_kept",
			"Failed events kept in the failure store and not yet resolved (re-run or discarded), by queue.", []string{"queue"}, nil),
		usage: prometheus.NewDesc("stripeq_store_usage_ratio",
			"How full each store with a limit is, 0 to 1: redis_memory (used_memory / maxmemory; 0 without maxmemory) and asynq_archive (per queue, of asynq's 10,000 before it trims silently; the failure store keeps what it trims). Alert above 0.8.",
			[]string{"store", "queue"}, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.kept
	ch <- c.usage
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	kept := make([]*redis.IntCmd, len(c.queues))
	archived := make([]*redis.IntCmd, len(c.queues))
	for i, q := range c.queues {
		// One queue's keys share a slot; a pipeline per queue suits Cluster.
		kept[i] = c.rdb.ZCard(ctx, keyspace.FailAll(q))
		archived[i] = c.rdb.ZCard(ctx, keyspace.Archived(q))
	}
	for i, q := range c.queues {
		if kept[i].Err() == nil {
			ch <- prometheus.MustNewConstMetric(c.kept, prometheus.GaugeValue, float64(kept[i].Val()), q)
		}
		if archived[i].Err() == nil {
			ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, float64(archived[i].Val())/asynqArchiveLimit, "asynq_archive", q)
		}
	}
	if r, ok := c.memoryRatio(ctx); ok {
		ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, r, "redis_memory", "")
	}
}

// memoryRatio is the fullest Redis (each master of a Cluster): used_memory
// over maxmemory, 0 when no maxmemory is set.
func (c *storeCollector) memoryRatio(ctx context.Context) (float64, bool) {
	worst, ok := 0.0, false
	read := func(info string) {
		used, limit := infoField(info, "used_memory"), infoField(info, "maxmemory")
		ok = true
		if limit > 0 {
			worst = max(worst, used/limit)
		}
	}
	if cc, isCluster := c.rdb.(*redis.ClusterClient); isCluster {
		results := make(chan string, 64)
		cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			if s, err := m.Info(ctx, "memory").Result(); err == nil {
				results <- s
			}
			return nil
		})
		close(results)
		for s := range results {
			read(s)
		}
		return worst, ok
	}
	if s, err := c.rdb.Info(ctx, "memory").Result(); err == nil {
		read(s)
	}
	return worst, ok
}

func infoField(info, name string) float64 {
	for line := range strings.SplitSeq(info, "\n") {
		if v, found := strings.CutPrefix(strings.TrimSpace(line), name+":"); found {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
