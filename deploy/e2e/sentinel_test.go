package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestSentinelFailover runs the api and a worker on a Sentinel-watched
// master with one replica while events arrive, kills the master with
// SIGKILL, and restarts it as a replica of the new master, as its
// supervisor would. With
// REDIS_WAIT_REPLICAS=1 the api answers 200 only for events a replica has
// confirmed: it answers 503 during the switch (and while the new master has
// no replica yet), 200 after, and no acknowledged event is lost.
func TestSentinelFailover(t *testing.T) {
	sen := redistest.StartSentinel(t)
	env := map[string]string{
		"REDIS_URL": sen.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "REDIS_WAIT_REPLICAS": "1",
	}
	api := proctest.Start(t, "api", proctest.Binary(t, "api"), with(env, "API_ADDR", "127.0.0.1:0"))
	addr := proctest.APIAddr(t, api)
	proctest.WaitHTTP(t, api, "http://"+addr+"/readyz", 30*time.Second)
	worker := proctest.Start(t, "worker", proctest.Binary(t, "worker"), env)
	url := "http://" + addr + "/webhooks/stripe"

	type answer struct {
		status int
		at     time.Duration
	}
	var (
		mu      sync.Mutex
		answers = map[string][]answer{}
		bodies  = map[string][]byte{}
	)
	start := time.Now()
	send := func(id string) {
		mu.Lock()
		body, ok := bodies[id]
		if !ok {
			body = stripetest.Edit(stripetest.Event("customer.updated", id, start), func(e map[string]any) {
				stripetest.Object(e)["id"] = "cus_" + id
			})
			bodies[id] = body
		}
		mu.Unlock()
		status, _ := (&stack{}).deliverTo(t, url, body)
		mu.Lock()
		answers[id] = append(answers[id], answer{status, time.Since(start)})
		mu.Unlock()
	}

	// 4 senders, one event every 20 ms each, for the whole run.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				send(fmt.Sprintf("evt_sen_%d_%04d", g, i))
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	time.Sleep(2 * time.Second)
	killedAt := time.Since(start)
	sen.Master.Kill()

	// Wait for the failover, then restart the old master: Sentinel makes it
	// a replica of the new one, and WAIT can be satisfied again.
	newMaster := poll.Value(t, 30*time.Second, "the failover", func() (string, error) {
		m, err := sen.CurrentMaster(context.Background())
		if err == nil && m != sen.Replica.Addr {
			err = fmt.Errorf("the master is still %s", m)
		}
		return m, err
	})
	failedOverAt := time.Since(start)
	sen.Master.RestartAsReplicaOf(newMaster)
	var recoveredAt time.Duration
	poll.Until(t, 30*time.Second, "the api to answer 200 after the failover", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, as := range answers {
			for _, a := range as {
				if a.status == 200 && a.at > failedOverAt && (recoveredAt == 0 || a.at < recoveredAt) {
					recoveredAt = a.at
				}
			}
		}
		return recoveredAt != 0
	})
	time.Sleep(time.Second)
	stop()
	wg.Wait()

	// Stripe delivers again every event that got no 200.
	var unacked []string
	for id, as := range answers {
		if as[len(as)-1].status != 200 {
			unacked = append(unacked, id)
		}
	}
	for _, id := range unacked {
		send(id)
	}

	// Every acknowledged event is on the current master and handled. On a
	// loaded machine Sentinel may fail over once more (back to the
	// restarted old master); WAIT kept both copies, so ask it again.
	current, err := sen.CurrentMaster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if current != newMaster {
		t.Logf("Sentinel failed over again, to %s", current)
	}
	rdb := redis.NewClient(&redis.Options{Addr: current})
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	counts := map[int]int{}
	lost, lostMarkers := 0, 0
	for id, as := range answers {
		for _, a := range as {
			counts[a.status]++
		}
		if as[len(as)-1].status != 200 {
			t.Errorf("%s: still %d after redelivery", id, as[len(as)-1].status)
			continue
		}
		if _, err := insp.GetTaskInfo("stripe", id); err != nil {
			lost++
			t.Errorf("%s was acknowledged but is not in Redis after the failover: %v", id, err)
		}
		// Its duplicate marker was confirmed on the replica too.
		if ok, err := rdb.HExists(context.Background(), dedupe.Key("stripe", start.Unix()), id).Result(); !ok {
			lostMarkers++
			t.Errorf("%s was acknowledged but has no duplicate marker after the failover: %v", id, err)
		}
	}
	t.Logf("%d events; answers by status %v; master killed at %v, failover seen at %v, first 200 after it at %v; %d redelivered; %d lost, %d markers lost",
		len(answers), counts, killedAt.Round(time.Millisecond), failedOverAt.Round(time.Millisecond), recoveredAt.Round(time.Millisecond), len(unacked), lost, lostMarkers)
	if counts[503] == 0 {
		t.Error("no 503 during the switch: the test did not exercise the failover")
	}
	select {
	case <-worker.Done():
		t.Errorf("the worker exited during the failover: %v", worker.ExitErr())
	default:
	}
	waitCompletedRecovering(t, rdb, len(answers))
}
