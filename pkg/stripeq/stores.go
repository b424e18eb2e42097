package stripeq

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

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

func newStoreCollector(rdb redis.UniversalClient, cfg Config) *storeCollector {
	return &storeCollector{
		rdb:    rdb,
		queues: stripetask.Queues(stripetask.Options{Queue: cfg.Queue, Shards: cfg.Shards}),
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
		kept[i] = c.rdb.ZCard(ctx, failures.AllKey(q))
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
