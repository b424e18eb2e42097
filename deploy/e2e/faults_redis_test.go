package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// Phases of the Redis outage in TestRedisDownWhileEventsArrive.
const (
	phaseUp       = "up"
	phaseHung     = "hung (SIGSTOP)"
	phaseDown     = "down (SIGKILL)"
	phaseRestored = "restarted"
)

// TestRedisDownWhileEventsArrive posts 50 events a second while Redis
// first hangs (SIGSTOP: connections open, no answers), then dies (SIGKILL:
// connections refused), then restarts with its append-only file. While it
// is out, every delivery is answered 503 within a bounded time and /readyz
// fails; the api and the worker keep running; once Redis is back, the api
// stores events again and the worker processes every acknowledged event,
// with no process restarted.
func TestRedisDownWhileEventsArrive(t *testing.T) {
	redisSrv := redistest.Start(t, redisConf(t))
	db := redisSrv.URL(0)
	rdb := openRedis(t, db)
	api, addr := startAPI(t, "api", db, nil)
	worker := startWorker(t, "worker", db, map[string]string{"RETRY_BASE_DELAY": "200ms"})
	base := "http://" + addr

	type result struct {
		id, phase string
		sent      time.Time
		a         answer
	}
	var (
		mu      sync.Mutex
		results []result
		readyz  = map[string][]answer{}
		phase   atomic.Value
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	phase.Store(phaseUp)
	client, probe := loadClient(), loadClient()
	created := time.Now().Add(-time.Hour)
	wg.Go(func() { // 50 deliveries a second, each on its own
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("evt_fault_redis_down_%05d", n)
			p := phase.Load().(string)
			wg.Go(func() {
				sent := time.Now()
				a := send(client, base, customerEvent(id, created))
				mu.Lock()
				results = append(results, result{id, p, sent, a})
				mu.Unlock()
			})
		}
	})
	wg.Go(func() { // /readyz ten times a second
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			p := phase.Load().(string)
			start := time.Now()
			resp, err := probe.Get(base + "/readyz")
			a := answer{err: err, latency: time.Since(start), at: time.Now()}
			if err == nil {
				a.status = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			readyz[p] = append(readyz[p], a)
			mu.Unlock()
		}
	})

	time.Sleep(time.Second)
	redisSrv.Signal(syscall.SIGSTOP)
	phase.Store(phaseHung)
	time.Sleep(4 * time.Second)
	redisSrv.Kill()
	phase.Store(phaseDown)
	// Longer than a delivery may wait for Redis (3 s), so that the first
	// ones sent while it is down must be answered 503.
	time.Sleep(4 * time.Second)
	restart := time.Now()
	redisSrv.Restart()
	phase.Store(phaseRestored)
	var firstAck time.Duration
	poll.Until(t, 20*time.Second, "the api to store events again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range slices.Backward(results) {
			if r.phase == phaseRestored && r.a.acked() {
				return true
			}
		}
		return false
	})
	firstAck = time.Since(restart)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	// While Redis is out: 503, in bounded time; /readyz fails. A delivery
	// still waiting when Redis is back may be stored and answered 200.
	maxLatency := map[string]time.Duration{}
	count := map[string]map[int]int{}
	var acked []string
	storedAfterRestart := 0
	for _, r := range results {
		if count[r.phase] == nil {
			count[r.phase] = map[int]int{}
		}
		count[r.phase][r.a.status]++
		maxLatency[r.phase] = max(maxLatency[r.phase], r.a.latency)
		if r.a.acked() {
			acked = append(acked, r.id)
		}
		if (r.phase == phaseHung || r.phase == phaseDown) && r.a.acked() && r.sent.Add(r.a.latency).After(restart) {
			// Still waiting for Redis when it came back: stored, then
			// answered 200 (checked below with every acknowledged event).
			storedAfterRestart++
			continue
		}
		if r.phase == phaseHung || r.phase == phaseDown {
			if r.a.status != http.StatusServiceUnavailable {
				t.Errorf("%s sent while Redis was %s: answered %d %q %v after %v, want 503", r.id, r.phase, r.a.status, r.a.message, r.a.err, r.a.latency.Round(time.Millisecond))
			}
		}
	}
	// The api's 3 s enqueue timeout and 1 s PING timeout, plus margin.
	const bound, readyBound = 3750 * time.Millisecond, 1750 * time.Millisecond
	for _, p := range []string{phaseUp, phaseHung, phaseDown, phaseRestored} {
		var rz []int
		var rzMax time.Duration
		for _, a := range readyz[p] {
			rz = append(rz, a.status)
			rzMax = max(rzMax, a.latency)
		}
		t.Logf("Redis %-15s deliveries by status %v, slowest answer %v; /readyz %v, slowest %v",
			p+":", count[p], maxLatency[p].Round(time.Millisecond), compact(rz), rzMax.Round(time.Millisecond))
		if (p == phaseHung || p == phaseDown) && count[p][http.StatusServiceUnavailable] == 0 {
			t.Errorf("no delivery answered 503 while Redis was %s: the outage was not exercised", p)
		}
		if (p == phaseHung || p == phaseDown) && maxLatency[p] > bound {
			t.Errorf("while Redis was %s a delivery took %v to be answered, want at most %v", p, maxLatency[p], bound)
		}
		if p == phaseHung || p == phaseDown {
			for _, a := range readyz[p] {
				if a.status != http.StatusServiceUnavailable && a.at.Before(restart) {
					t.Errorf("/readyz while Redis was %s: %d %v, want 503", p, a.status, a.err)
				}
				if a.latency > readyBound {
					t.Errorf("/readyz while Redis was %s took %v", p, a.latency)
				}
			}
		}
	}

	// Processing resumes, in the same processes.
	for _, p := range []*proctest.Proc{api, worker} {
		select {
		case <-p.Done():
			t.Fatalf("%s exited during the outage: %v", p.Name, p.ExitErr())
		default:
		}
	}
	// A task in a handler when Redis froze may have finished without its
	// completion reaching Redis; asynq then recovers it when its lease has
	// lapsed (55 s to 2 min in asynq v0.26, constants). As in the worker
	// crash test, such orphaned leases are aged to stand in for that wait,
	// and the running worker's recoverer (once a minute) brings them back.
	start := time.Now()
	var orphans []string
	err := poll.Wait(100*time.Second, "the worker to complete every acknowledged event", func() error {
		states := countStates(taskStates(t, rdb, acked))
		if states["completed"] == len(acked) {
			return nil
		}
		if orphans == nil && time.Since(start) > 10*time.Second {
			orphans = deadLeases(t, rdb)
			ageLeases(t, rdb, orphans)
			t.Logf("%d task(s) still active 10 s after Redis came back, with leases nobody extends: aged for asynq's recoverer", len(orphans))
		}
		return fmt.Errorf("states %v", states)
	})
	if err != nil {
		// Show where the worker is stuck: Go prints every goroutine on
		// SIGQUIT, into the output logged below.
		worker.Signal(syscall.SIGQUIT)
		<-worker.Done()
		t.Fatal(err)
	}
	resumed := time.Since(start)
	t.Logf("%d deliveries sent while Redis was out were still waiting when it came back, and were stored and answered 200", storedAfterRestart)
	t.Logf("Redis restarted: first event stored %v later; all %d acknowledged events completed %v after that, by the same worker process",
		firstAck.Round(time.Millisecond), len(acked), resumed.Round(10*time.Millisecond))
}

// compact summarises a list of statuses as "N×status" runs.
func compact(statuses []int) string {
	s := ""
	for i := 0; i < len(statuses); {
		j := i
		for j < len(statuses) && statuses[j] == statuses[i] {
			j++
		}
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%d×%d", j-i, statuses[i])
		i = j
	}
	return s
}

// TestRedisKilledKeepsAcknowledgedEvents posts events from 16 clients to
// an api whose Redis runs with deploy/redis.conf (append-only file, fsync
// always), kills redis-server with SIGKILL in the middle, and restarts it:
// every event acknowledged with a 200 is still there. The same run against
// a Redis without persistence loses them, which shows the check can fail.
func TestRedisKilledKeepsAcknowledgedEvents(t *testing.T) {
	for _, tt := range []struct {
		name     string
		args     func(t *testing.T) []string
		wantLost bool
	}{
		{"deploy/redis.conf", func(t *testing.T) []string { return []string{redisConf(t)} }, false},
		{"no persistence (control)", func(*testing.T) []string { return nil }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			redisSrv := redistest.Start(t, tt.args(t)...)
			db := redisSrv.URL(0)
			rdb := openRedis(t, db)
			_, addr := startAPI(t, "api", db, nil)

			var (
				mu        sync.Mutex
				acked     []string
				n503      int
				next      atomic.Int64
				stop      atomic.Bool
				wg        sync.WaitGroup
				ackedLoad int // acknowledged before the kill
			)
			client := loadClient()
			created := time.Now().Add(-time.Hour)
			for range 16 {
				wg.Go(func() {
					for !stop.Load() {
						id := fmt.Sprintf("evt_fault_aof_%06d", next.Add(1))
						a := send(client, "http://"+addr, customerEvent(id, created))
						mu.Lock()
						switch {
						case a.acked():
							acked = append(acked, id)
						case a.status == http.StatusServiceUnavailable:
							n503++
						}
						mu.Unlock()
					}
				})
			}
			time.Sleep(time.Second)
			redisSrv.Kill()
			mu.Lock()
			ackedLoad = len(acked)
			mu.Unlock()
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			redisSrv.Restart()

			states := taskStates(t, rdb, acked)
			lost := countStates(states)["missing"]
			t.Logf("%s: %d events acknowledged in 1 s (%.0f/s) before redis-server got SIGKILL, %d answered 503 after; after restart %d lost",
				tt.name, len(acked), float64(ackedLoad), n503, lost)
			if len(acked) < 100 {
				t.Fatalf("only %d events acknowledged: no load", len(acked))
			}
			if tt.wantLost != (lost > 0) {
				t.Errorf("%d of %d acknowledged events lost", lost, len(acked))
			}
		})
	}
}
