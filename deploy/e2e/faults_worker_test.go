package e2e

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestWorkerKilledMidTask kills a worker with SIGKILL while its handler is
// in the middle of a task (waiting on Stripe's API), and checks that the
// task comes back after its lease and is completed by another worker
// process, once, with the right records and one notification.
//
// asynq recovers a dead worker's task when its lease (30 s, extended every
// 5 s) has been expired for 30 s, in a recoverer that runs every minute:
// 55 s to 2 min after the kill, then the retry delay. By default the test
// ages the lease in Redis and starts the second worker after the kill (its
// recoverer runs at start); with STRIPEQ_LONG=1 the second worker runs all
// along and the test waits the real time, with the default retry delay.
func TestWorkerKilledMidTask(t *testing.T) {
	redisSrv := redistest.Start(t)
	db := redisSrv.URL(0)
	rdb := openRedis(t, db)
	api := newStripeAPI(t)

	id := "evt_fault_kill_mid_task"
	body := stripetest.Event("invoice.payment_failed", id, time.Now().Add(-time.Minute))
	api.add(id, body, true)

	env := api.workerEnv()
	if !longRun() {
		env["RETRY_BASE_DELAY"] = "200ms"
	}
	_, addr := startAPI(t, "api", db, nil)
	w1 := startWorker(t, "worker-1", db, env)
	var w2 *proctest.Proc
	if longRun() {
		w2 = startWorker(t, "worker-2", db, env)
	}

	if a := send(loadClient(), "http://"+addr, body); a.status != 200 || a.message != "Received" {
		t.Fatalf("delivery: %d %q %v", a.status, a.message, a.err)
	}
	api.awaitHeld(t, id, 20*time.Second)
	if w2 != nil && activeHolder(t, rdb, id, w1, w2) == w2 {
		w1, w2 = w2, w1 // kill the one that runs it
	}
	w1.Kill()
	killed := time.Now()
	api.release(id)
	if s := taskStates(t, rdb, []string{id})[id]; s != "active" {
		t.Fatalf("after the kill the task is %q, want active", s)
	}

	if w2 == nil {
		ageLeases(t, rdb, []string{id})
		w2 = startWorker(t, "worker-2", db, env)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var recovered time.Duration
	timeout := 20 * time.Second
	if longRun() {
		timeout = 4 * time.Minute
	}
	poll.Until(t, timeout, "the task to be completed by worker-2", func() bool {
		s := taskStates(t, rdb, []string{id})[id]
		if s != "active" && recovered == 0 {
			recovered = time.Since(killed)
		}
		return s == "completed"
	})
	completed := time.Since(killed)
	mode := "lease aged in Redis (STRIPEQ_LONG=1 for the real wait)"
	if longRun() {
		mode = "real lease expiry, default RETRY_BASE_DELAY"
	}
	t.Logf("SIGKILL mid-task → back in the queue after %v, completed by worker-2 after %v (%s)",
		recovered.Round(10*time.Millisecond), completed.Round(10*time.Millisecond), mode)

	info, err := insp.GetTaskInfo("stripe", id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Retried != 1 || !strings.Contains(info.LastErr, "lease expired") {
		t.Errorf("task retried %d times, last error %q; want once, after its lease expired", info.Retried, info.LastErr)
	}
	if n := api.served(id); n != 2 {
		t.Errorf("Stripe was asked for the event %d times, want 2 (once per worker)", n)
	}
	ctx := context.Background()
	rec := rdb.HGetAll(ctx, records.CustomerKey("cus_stripeq_demo")).Val()
	if rec["delinquent"] != "true" || rec["payment_event_id"] != id {
		t.Errorf("customer record = %v, want delinquent by %s", rec, id)
	}
	if n := len(notifications(t, rdb)); n != 1 {
		t.Errorf("%d notifications, want 1 payment_failed", n)
	}
	// The killed worker's lease on its slot expired; the second run
	// released its own.
	poll.Until(t, 8*time.Second, "the killed worker's slot lease to lapse", func() bool {
		return rdb.ZCount(ctx, keyspace.Slots("stripe"), strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Val() == 0
	})
	select {
	case <-w2.Done():
		t.Errorf("worker-2 exited: %v", w2.ExitErr())
	default:
	}
}

// activeHolder returns which of the workers runs the task id, from the
// server list asynq keeps in Redis (written every 5 s).
func activeHolder(t *testing.T, rdb redis.UniversalClient, id string, workers ...*proctest.Proc) *proctest.Proc {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	var holder *proctest.Proc
	poll.Until(t, 10*time.Second, "asynq to list the worker running "+id, func() bool {
		servers, _ := insp.Servers()
		for _, s := range servers {
			for _, w := range s.ActiveWorkers {
				if w.TaskID != id {
					continue
				}
				for _, p := range workers {
					if p.Pid() == s.PID {
						holder = p
						return true
					}
				}
			}
		}
		return false
	})
	return holder
}

// TestWorkerSIGTERMMidTask stops a worker with SIGTERM while a handler is
// in the middle of its task. A handler that outlives WORKER_SHUTDOWN_TIMEOUT
// has its task returned to the queue, and the worker exits within the
// timeout; another worker then completes the task. A handler that finishes
// within the timeout completes its task before the worker exits.
func TestWorkerSIGTERMMidTask(t *testing.T) {
	for _, tt := range []struct {
		name      string
		timeout   time.Duration
		releaseIn time.Duration // when the held handler may go on; 0: never
		wantState string        // of the task when the worker has exited
	}{
		{"handler outlives the timeout: task returns to the queue", 2 * time.Second, 0, "pending"},
		{"handler finishes within the timeout: task completed", 10 * time.Second, 500 * time.Millisecond, "completed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			api := newStripeAPI(t)
			id := "evt_fault_sigterm"
			body := stripetest.Event("invoice.finalized", id, time.Now().Add(-time.Minute))
			api.add(id, body, true)
			env := api.workerEnv()
			env["WORKER_SHUTDOWN_TIMEOUT"] = tt.timeout.String()
			_, addr := startAPI(t, "api", db.URL, nil)
			w := startWorker(t, "worker", db.URL, env)

			if a := send(loadClient(), "http://"+addr, body); a.status != 200 {
				t.Fatalf("delivery: %d %q %v", a.status, a.message, a.err)
			}
			api.awaitHeld(t, id, 20*time.Second)
			start := time.Now()
			w.Signal(syscall.SIGTERM)
			if tt.releaseIn > 0 {
				time.AfterFunc(tt.releaseIn, func() { api.release(id) })
			}
			select {
			case <-w.Done():
			case <-time.After(tt.timeout + 5*time.Second):
				t.Fatalf("worker still running %v after SIGTERM (WORKER_SHUTDOWN_TIMEOUT=%v)", time.Since(start), tt.timeout)
			}
			took := time.Since(start)
			if err := w.ExitErr(); err != nil {
				t.Errorf("worker exited with %v", err)
			}
			state := taskStates(t, db.Client, []string{id})[id]
			t.Logf("SIGTERM mid-task, WORKER_SHUTDOWN_TIMEOUT=%v: exited after %v, task %s", tt.timeout, took.Round(10*time.Millisecond), state)
			if took > tt.timeout+2*time.Second {
				t.Errorf("exited %v after SIGTERM, want within WORKER_SHUTDOWN_TIMEOUT=%v (+2 s)", took, tt.timeout)
			}
			if state != tt.wantState {
				t.Fatalf("task is %q after the worker exited, want %q", state, tt.wantState)
			}
			if tt.wantState == "pending" {
				api.release(id)
				startWorker(t, "worker-2", db.URL, env)
				poll.Until(t, 20*time.Second, "worker-2 to complete the returned task", func() bool {
					return taskStates(t, db.Client, []string{id})[id] == "completed"
				})
			}
			msgs := notifications(t, db.Client)
			if len(msgs) != 1 || msgs[0].Values["event_id"] != id {
				t.Errorf("notifications = %v, want one for %s", msgs, id)
			}
		})
	}
}
