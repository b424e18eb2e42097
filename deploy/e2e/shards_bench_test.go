package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
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
	"github.com/stripeq/stripeq/pkg/proctest"
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

// BenchmarkShardedPipeline measures how the Redis work of an event, end to
// end, divides over the masters of a Redis Cluster with QUEUE_SHARDS: the
// 3-master Cluster of redistest, QUEUE_NAME=stripeq and QUEUE_SHARDS=3 (a
// shard on each master), one api and one worker with every feature on
// (records, outcomes and attempt history, the failure store, the Console's
// index, duplicate markers, GLOBAL_CONCURRENCY=5, the refetch from a
// local Stripe API). It sends perRound unique events of the bench's mix
// (charge.failed, payment_intent.payment_failed,
// customer.subscription.created and .updated, checkout.session.completed;
// 500 customers) through the api from 16 goroutines, then starts the
// worker and waits until every task is completed, and reads each master's
// CPU time (INFO cpu) before, between and after. It reports, per master,
// the Redis CPU µs per event of all events at ingest and in the worker,
// and from the busiest master the events/s the deployment reaches when
// that master has a core to itself: the per-shard budget of the sizing
// rule in deploy/README.md (Performance). It runs the same on one plain
// redis-server with one queue, for comparison.
//
//	go test -run '^$' -bench ShardedPipeline -benchtime 1x ./deploy/e2e/
func BenchmarkShardedPipeline(b *testing.B) {
	b.Run("cluster-3-shards", func(b *testing.B) {
		cluster := redistest.StartCluster(b, 3)
		shardedPipeline(b, cluster.URL, addrs(cluster), stripetask.Options{Queue: "stripeq", Shards: 3})
	})
	b.Run("one-redis", func(b *testing.B) {
		srv := redistest.Start(b)
		shardedPipeline(b, srv.URL(0), []string{srv.Addr}, stripetask.Options{Queue: "stripeq", Shards: 1})
	})
}

// shardedPipeline is BenchmarkShardedPipeline's run on the Redis at
// redisURL, whose masters are nodes, with the queue and shards of opts.
func shardedPipeline(b *testing.B, redisURL string, nodes []string, opts stripetask.Options) {
	const (
		perRound   = 6000
		goroutines = 16
	)
	shards := opts.Shards
	stripeAPI := &slowStripe{instant: true, events: map[string][]byte{}}
	srv := httptest.NewServer(stripeAPI)
	b.Cleanup(srv.Close)
	mix := []string{events.ChargeFailed, events.PaymentIntentPaymentFailed, events.SubscriptionCreated,
		events.SubscriptionUpdated, events.CheckoutSessionCompleted}
	bodies := make([][]byte, perRound)
	start := time.Now().Add(-time.Hour)
	for i := range bodies {
		id := fmt.Sprintf("evt_shp_%06d", i)
		bodies[i] = stripetest.Edit(stripetest.Event(mix[i%len(mix)], id, start.Add(time.Duration(i)*time.Millisecond)), func(e map[string]any) {
			stripetest.Object(e)["customer"] = fmt.Sprintf("cus_shp_%03d", i%500)
		})
		stripeAPI.events[id] = bodies[i]
	}
	env := map[string]string{
		"REDIS_URL": redisURL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"QUEUE_NAME": opts.Queue, "QUEUE_SHARDS": strconv.Itoa(shards),
		"WORKER_CONCURRENCY": "5", "GLOBAL_CONCURRENCY": "5",
		"STRIPE_SECRET_KEY": "sk_test_stripeq", "STRIPE_API_BASE": srv.URL,
	}
	addr := proctest.FreeAddr(b)
	api := proctest.Start(b, "api", proctest.Binary(b, "api"), with(env, "API_ADDR", addr))
	proctest.WaitHTTP(b, api, "http://"+addr+"/readyz", 30*time.Second)
	url := "http://" + addr + "/webhooks/stripe"

	// What the masters spend idle (cluster upkeep, asynq's and stripeq's
	// polling) is not per event: measured with the api alone, and after
	// the drain with the worker too, and subtracted.
	idleAPI := idleCPU(b, nodes, idleFor)
	cpu0 := redisCPU(b, nodes)
	sent := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < perRound; i = int(next.Add(1)) - 1 {
				if err := deliver(url, bodies[i]); err != nil {
					b.Errorf("event %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	ingest := time.Since(sent)
	cpu1 := redisCPU(b, nodes)
	insp := asynq.NewInspectorFromRedisClient(openRedis(b, redisURL))
	drained := time.Now()
	proctest.Start(b, "worker", proctest.Binary(b, "worker"), env)
	poll.Until(b, 5*time.Minute, "every task completed", func() bool {
		done := 0
		for _, q := range stripetask.Queues(opts) {
			if info, err := insp.GetQueueInfo(q); err == nil {
				done += info.Completed
			}
		}
		return done == perRound
	})
	drain := time.Since(drained)
	cpu2 := redisCPU(b, nodes)
	idleBoth := idleCPU(b, nodes, idleFor)

	// µs per event of all events: the CPU between from and to less what
	// the master spends idle in that time.
	us := func(from, to, idle map[string]float64, took time.Duration, a string) float64 {
		return max(0, to[a]-from[a]-idle[a]*took.Seconds()) * 1e6 / perRound
	}
	var total, busiest float64
	for _, a := range nodes {
		in, wk := us(cpu0, cpu1, idleAPI, ingest, a), us(cpu1, cpu2, idleBoth, drain, a)
		b.Logf("master %s idle: %.1f ms of CPU per second with the api, %.1f with the api and the worker", a, 1e3*idleAPI[a], 1e3*idleBoth[a])
		total += in + wk
		busiest = max(busiest, in+wk)
		b.Logf("master %s: Redis CPU µs per event of all %d: ingest %.1f + worker %.1f = %.1f", a, perRound, in, wk, in+wk)
	}
	b.Logf("%d events of %d customers, QUEUE_SHARDS=%d on %d masters: ingest %.0f/s, drain %.0f/s (one api, one worker, "+
		"every redis-server on this machine's cores); Redis CPU µs per event end to end: %.1f over all masters, %.1f on the busiest "+
		"(%.0f%% of the total); the busiest master at one core: %.0f events/s in all, %.0f per shard",
		perRound, 500, shards, len(nodes), perRound/ingest.Seconds(), perRound/drain.Seconds(), total, busiest, 100*busiest/total,
		1e6/busiest, 1e6/busiest/float64(shards))
	b.ReportMetric(total, "redis-µs/event")
	b.ReportMetric(busiest, "busiest-master-µs/event")
	b.ReportMetric(1e6/busiest/float64(shards), "events/s/shard")
}

// deliverClient keeps a connection per sending goroutine.
var deliverClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// deliver posts body, signed now, to url, and wants 200 Received.
func deliver(url string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripetest.Sign(body, time.Now(), stripetest.Secret))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := deliverClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct{ Message string }
	json.NewDecoder(resp.Body).Decode(&answer)
	if resp.StatusCode != http.StatusOK || answer.Message != "Received" {
		return fmt.Errorf("%d %s", resp.StatusCode, answer.Message)
	}
	return nil
}

// idleFor is how long idleCPU watches the masters.
const idleFor = 5 * time.Second

// idleCPU returns the CPU seconds each node spends per second over d,
// while nothing is sent.
func idleCPU(b *testing.B, nodes []string, d time.Duration) map[string]float64 {
	from := redisCPU(b, nodes)
	start := time.Now()
	time.Sleep(d)
	to := redisCPU(b, nodes)
	took := time.Since(start).Seconds()
	out := map[string]float64{}
	for _, a := range nodes {
		out[a] = (to[a] - from[a]) / took
	}
	return out
}
