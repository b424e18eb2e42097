package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// BenchmarkShardedEnqueue measures what QUEUE_SHARDS buys on Redis
// Cluster: raw asynq enqueue of the api's task (a 3.4 KB
// invoice.payment_failed with its task ID, headers, MaxRetry and
// Retention) from 32 goroutines, into QUEUE_SHARDS=3 (queues stripeq-0,
// -1, -2, each on its own master of the 3-master cluster) on
//
//	A: a 1-master Cluster (every shard on that master)
//	B: a 3-master Cluster
//	C: one plain redis-server and one queue, as without sharding
//
// interleaved A B C A B C … for 5 rounds of 20,000 tasks, every node
// flushed between rounds. It reports the median rate of each and the ratio
// B/A; and, since on a small machine the client's CPU rather than Redis
// sets the rate, each topology's Redis ceiling: tasks per CPU second of
// its busiest master, the rate it would reach with a core per master and
// a client that is not the bottleneck. It also logs the share of the
// Redis CPU time each master of B spent.
//
// Run it alone; the client, and every redis-server, share this machine's
// cores:
//
//	go test -run '^$' -bench ShardedEnqueue -benchtime 1x ./deploy/e2e/
func BenchmarkShardedEnqueue(b *testing.B) {
	const (
		rounds     = 5
		perRound   = 20000
		goroutines = 32
	)
	one := singleMasterCluster(b)
	three := redistest.StartCluster(b, 3)
	plain := redistest.Start(b)
	plainClient := redis.NewClient(&redis.Options{Addr: plain.Addr, PoolSize: 2 * goroutines})
	b.Cleanup(func() { plainClient.Close() })

	sharded := stripetask.Options{Queue: "stripeq", Shards: 3}
	targets := []struct {
		name  string
		rdb   redis.UniversalClient
		nodes []string
		opts  stripetask.Options
	}{
		{"1-master", clusterClient(b, one, goroutines), addrs(one), sharded},
		{"3-masters", clusterClient(b, three, goroutines), addrs(three), sharded},
		{"plain-1-queue", plainClient, []string{plain.Addr}, stripetask.Options{Queue: "stripeq"}},
	}
	body := stripetest.Fixture(events.InvoicePaymentFailed)
	rates := make([][]float64, len(targets))
	ceilings := make([][]float64, len(targets))
	cpu := map[string]float64{} // Redis CPU seconds of each master of B
	for b.Loop() {
		for r := range rounds {
			line := fmt.Sprintf("round %d:", r+1)
			for i, tg := range targets {
				flush(b, tg.nodes)
				before := redisCPU(b, tg.nodes)
				rate := enqueueRate(b, tg.rdb, body, tg.opts, fmt.Sprintf("r%d", r), perRound, goroutines)
				after := redisCPU(b, tg.nodes)
				busiest := 0.0
				for n, s := range after {
					busiest = max(busiest, s-before[n])
					if tg.name == "3-masters" {
						cpu[n] += s - before[n]
					}
				}
				rates[i] = append(rates[i], rate)
				ceilings[i] = append(ceilings[i], perRound/busiest)
				line += fmt.Sprintf("  %s %.0f/s (busiest master %.2f s CPU)", tg.name, rate, busiest)
			}
			b.Log(line)
		}
	}
	med := make([]float64, len(targets))
	ceil := make([]float64, len(targets))
	for i, tg := range targets {
		med[i] = median(rates[i])
		ceil[i] = median(ceilings[i])
		b.ReportMetric(med[i], "tasks/s-"+tg.name)
		b.ReportMetric(ceil[i], "ceiling/s-"+tg.name)
	}
	b.ReportMetric(med[1]/med[0], "ratio-3/1-masters")
	b.ReportMetric(ceil[1]/ceil[0], "ceiling-ratio-3/1-masters")
	var total float64
	for _, s := range cpu {
		total += s
	}
	var shares []string
	for _, n := range slices.Sorted(maps.Keys(cpu)) {
		shares = append(shares, fmt.Sprintf("%.0f%%", 100*cpu[n]/total))
	}
	b.Logf("medians: 1 master %.0f/s, 3 masters %.0f/s (×%.2f), plain one queue %.0f/s", med[0], med[1], med[1]/med[0], med[2])
	b.Logf("Redis ceiling (tasks per CPU second of the busiest master): 1 master %.0f/s, 3 masters %.0f/s (×%.2f), plain %.0f/s",
		ceil[0], ceil[1], ceil[1]/ceil[0], ceil[2])
	b.Logf("Redis CPU of the 3 masters: %s of %.1f s", strings.Join(shares, " / "), total)
}

// singleMasterCluster starts one redis-server in cluster mode serving every
// slot (redis-cli --cluster create wants at least 3 masters).
func singleMasterCluster(b *testing.B) *redistest.Cluster {
	n := redistest.Start(b, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := redis.NewClient(&redis.Options{Addr: n.Addr})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		b.Fatal(err)
	}
	poll.Until(b, 10*time.Second, "the 1-master cluster's cluster_state:ok", func() bool {
		return strings.Contains(c.ClusterInfo(ctx).Val(), "cluster_state:ok")
	})
	return &redistest.Cluster{Nodes: []*redistest.Server{n}, URL: "redis-cluster://" + n.Addr}
}

func clusterClient(b *testing.B, c *redistest.Cluster, pool int) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs(c), PoolSize: 2 * pool})
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

func addrs(c *redistest.Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// enqueueRate enqueues n tasks from g goroutines and returns tasks/s.
func enqueueRate(b *testing.B, rdb redis.UniversalClient, body []byte, o stripetask.Options, prefix string, n, g int) float64 {
	client := asynq.NewClientFromRedisClient(rdb)
	m, err := stripetask.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, g)
	start := time.Now()
	for range g {
		wg.Go(func() {
			ctx := context.Background()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				mi := m
				mi.ID = "evt_" + prefix + "_" + strconv.FormatInt(i, 10)
				if _, err := client.EnqueueContext(ctx, stripetask.NewFromMetadata(body, mi, o)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return float64(n) / d.Seconds()
}

// flush empties every node.
func flush(b *testing.B, nodes []string) {
	for _, a := range nodes {
		c := redis.NewClient(&redis.Options{Addr: a})
		err := c.FlushAll(context.Background()).Err()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// redisCPU returns each node's used CPU seconds (user + sys).
func redisCPU(b *testing.B, nodes []string) map[string]float64 {
	out := map[string]float64{}
	for _, a := range nodes {
		c := redis.NewClient(&redis.Options{Addr: a})
		info, err := c.Info(context.Background(), "cpu").Result()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				out[a] += f
			}
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
