package e2e

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRedisClusterShards runs 2 apis, 2 workers and the dashboard with
// QUEUE_SHARDS=3 on a 3-master Redis Cluster. With QUEUE_NAME=stripeq the
// shard queues stripeq-0, -1 and -2 hash to slots 6982, 2919 and 15108,
// one on each master of an evenly split cluster (the default name stripe
// would put stripe-1 and stripe-2 on one master). Every event, delivered
// to both apis at once, is stored once in its shard; the workers drain
// every shard under one global concurrency limit; the Console lists the
// shards as one and re-runs a completed task into its own shard.
func TestRedisClusterShards(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	opts := stripetask.Options{Queue: "stripeq", Shards: 3}

	// Each shard queue's hash tag is served by a different master.
	masters := map[string]string{}
	for _, q := range stripetask.Queues(opts) {
		masters[q] = masterOf(t, cluster.Client, "asynq:{"+q+"}:pending")
		if idx := masterOf(t, cluster.Client, "stripeq:idx:{"+q+"}:all"); idx != masters[q] {
			t.Errorf("%s: index on %s, tasks on %s", q, idx, masters[q])
		}
	}
	distinct := map[string]bool{}
	for _, m := range masters {
		distinct[m] = true
	}
	t.Logf("shard queues on masters: %v", masters)
	if len(distinct) != 3 {
		t.Errorf("shards %v share masters, want 3 different ones", masters)
	}

	api := &slowStripe{events: map[string][]byte{}}
	stripeAPI := httptest.NewServer(api)
	t.Cleanup(stripeAPI.Close)
	const n = 60
	var bodies [][]byte
	want := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("evt_sh_%03d", i)
		body := stripetest.Edit(stripetest.Event("customer.updated", id, time.Unix(1767225600+int64(i), 0)), func(e map[string]any) {
			stripetest.Object(e)["id"] = fmt.Sprintf("cus_sh_%03d", i)
		})
		api.events[id] = body
		bodies = append(bodies, body)
		want[stripetask.QueueFor(id, opts)]++
	}

	env := map[string]string{
		"REDIS_URL": cluster.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"QUEUE_NAME": opts.Queue, "QUEUE_SHARDS": strconv.Itoa(opts.Shards),
		"WORKER_CONCURRENCY": "10", "GLOBAL_CONCURRENCY": "5",
		"STRIPE_SECRET_KEY": "sk_test_stripeq", "STRIPE_API_BASE": stripeAPI.URL,
		"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "cluster-test-password",
	}
	apis, dashAddr := startAPIsAndDashboard(t, env, 2)

	answers := map[string]int{}
	var mu sync.Mutex
	for _, b := range bodies {
		var wg sync.WaitGroup
		for _, url := range apis {
			wg.Go(func() {
				status, msg := post(t, url, b)
				mu.Lock()
				answers[fmt.Sprintf("%d %s", status, msg)]++
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if w := map[string]int{"200 Received": n, "200 duplicate": n}; fmt.Sprint(answers) != fmt.Sprint(w) {
		t.Fatalf("answers %v, want %v", answers, w)
	}

	insp := asynq.NewInspectorFromRedisClient(cluster.Client)
	for q, k := range want {
		info, err := insp.GetQueueInfo(q)
		if err != nil || info.Pending != k {
			t.Fatalf("%s: %+v (%v), want %d pending", q, info, err, k)
		}
	}
	bin := proctest.Binary(t, "worker")
	start := time.Now()
	for i := range 2 {
		proctest.Start(t, fmt.Sprintf("worker-%d", i+1), bin, env)
	}
	for q, k := range want {
		poll.Value(t, 60*time.Second-time.Since(start), fmt.Sprintf("%d completed in %s", k, q), func() (*asynq.QueueInfo, error) {
			return redistest.QueueCompleted(insp, q, k)
		})
	}
	api.mu.Lock()
	t.Logf("%d events over shards %v, 2 workers (10 each, GLOBAL_CONCURRENCY=5): done in %v, at most %d handlers at once",
		n, want, time.Since(start).Round(10*time.Millisecond), api.max)
	if api.max > 5 {
		t.Errorf("%d handlers ran at once across the shards and workers, want at most 5", api.max)
	}
	api.mu.Unlock()
	for i := range n {
		key := records.CustomerKey(fmt.Sprintf("cus_sh_%03d", i))
		if got := cluster.Client.HGet(t.Context(), key, "last_event_id").Val(); got != fmt.Sprintf("evt_sh_%03d", i) {
			t.Errorf("%s last_event_id = %q", key, got)
		}
	}

	// The Console shows the three shards as one queue, newest first.
	var list struct {
		Total      int            `json:"total"`
		Counts     map[string]int `json:"counts"`
		Executions []struct {
			ID, State string
		} `json:"executions"`
	}
	dashGet(t, "http://"+dashAddr+"/api/executions?limit=10", &list)
	if list.Total != n || list.Counts["completed"] != n || len(list.Executions) != 10 {
		t.Errorf("Console: total %d, counts %v, %d rows; want %d completed", list.Total, list.Counts, len(list.Executions), n)
	}
	for i := 1; i < len(list.Executions); i++ {
		if list.Executions[i-1].ID < list.Executions[i].ID {
			t.Errorf("Console rows not newest first: %s before %s", list.Executions[i-1].ID, list.Executions[i].ID)
		}
	}
	var rerun struct {
		NewID string `json:"new_id"`
	}
	dashPost(t, "http://"+dashAddr+"/api/executions/evt_sh_007/rerun", &rerun)
	shard := stripetask.QueueFor("evt_sh_007", opts)
	poll.Value(t, 20*time.Second, fmt.Sprintf("the re-run %q completed in %s", rerun.NewID, shard), func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(insp, shard, rerun.NewID, asynq.TaskStateCompleted)
	})
}

// masterOf returns the address of the master that serves key's slot.
func masterOf(t *testing.T, c *redis.ClusterClient, key string) string {
	t.Helper()
	slot, err := c.ClusterKeySlot(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	shards, err := c.ClusterShards(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		for _, r := range s.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, n := range s.Nodes {
				if n.Role == "master" {
					return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				}
			}
		}
	}
	t.Fatalf("no master serves slot %d of %s", slot, key)
	return ""
}
