package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// This file holds the tests of issue 13: every acknowledged event stays,
// however many fail; alerts survive a storm; a dead worker's slots free.

const failPassword = "failures-test-password"

// badEvent is an event of type typ the api accepts and the worker can
// never handle: its customer's email is a number, so data.object does not
// decode, and the task fails permanently at once.
func badEvent(typ, id string, created time.Time) []byte {
	return stripetest.Edit(stripetest.Event(typ, id, created), func(e map[string]any) {
		o := stripetest.Object(e)
		o["id"] = "cus_" + strings.TrimPrefix(id, "evt_")
		o["email"] = 12345
	})
}

// underReadLimit calls do until the Console answers other than 429 (its
// per-user read limit; a refused read costs nothing), and returns that
// answer.
func underReadLimit(t *testing.T, do func() *http.Response) *http.Response {
	t.Helper()
	return poll.Value(t, 20*time.Second, "an answer within the Console's read limit", func() (*http.Response, error) {
		if resp := do(); resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}
		return nil, errors.New("429 too many requests")
	})
}

// dash calls the dashboard's JSON API as the operator and decodes the
// answer into v; it returns the status.
func dash(t *testing.T, method, url string, v any) int {
	t.Helper()
	var body []byte
	resp := underReadLimit(t, func() *http.Response {
		req, _ := http.NewRequest(method, url, nil)
		req.SetBasicAuth("ops", failPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	})
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v: %.300s", method, url, err, body)
		}
	}
	return resp.StatusCode
}

type failedList struct {
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// sendAll delivers every body with 32 senders and fails on any answer but
// 200.
func sendAll(t *testing.T, base string, bodies [][]byte) {
	t.Helper()
	client := loadClient()
	work := make(chan []byte)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 32 {
		wg.Go(func() {
			for b := range work {
				if a := send(client, base, b); !a.acked() {
					if bad.Add(1) < 5 {
						t.Errorf("delivery: %d %s %v", a.status, a.message, a.err)
					}
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d deliveries not acknowledged", bad.Load())
	}
}

// checkEveryFailureKept is the body of the storm tests: ids (oldest
// first) were acknowledged and fail permanently at once. Every one must be
// counted, listed, exported with its payload, readable and re-runnable.
func checkEveryFailureKept(t *testing.T, rdb redis.UniversalClient, queues []string, dashURL string, ids []string) {
	n := len(ids)
	start := time.Now()
	var l failedList
	poll.Until(t, 120*time.Second, fmt.Sprintf("%d failures listed", n), func() bool {
		dash(t, "GET", dashURL+"/api/executions?state=failed&limit=1", &l)
		return l.Total == n
	})
	t.Logf("%d failures counted by the Console %v after the last 200", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	trimmed := false
	var archived, kept, bytes int64
	for _, q := range queues {
		a := rdb.ZCard(ctx, "asynq:{"+q+"}:archived").Val()
		k := rdb.ZCard(ctx, failures.AllKey(q)).Val()
		archived += a
		kept += k
		trimmed = trimmed || k > a
		if k > 0 {
			bytes += rdb.MemoryUsage(ctx, failures.AllKey(q)).Val()
		}
	}
	if !trimmed || kept != int64(n) {
		t.Fatalf("asynq archives %d, the failure store keeps %d of %d; want every one kept, past asynq's trim", archived, kept, n)
	}
	for _, id := range ids[:50] {
		bytes += rdb.MemoryUsage(ctx, failures.RecordKey(stripetask.QueueFor(id, stripetask.Options{Queue: "stripe", Shards: len(queues)}), id), 0).Val() * int64(n) / 50
	}
	t.Logf("failure store: %d bytes per failed event (record and list entry, MEMORY USAGE, payload %d bytes)", bytes/int64(n), len(badEvent("customer.updated", ids[0], time.Now())))

	// The oldest, trimmed from asynq's archive, reads with payload and error.
	var d struct {
		State    string             `json:"state"`
		Payload  map[string]any     `json:"payload"`
		Attempts []failures.Attempt `json:"attempts"`
		Kept     bool               `json:"kept"`
	}
	if st := dash(t, "GET", dashURL+"/api/executions/"+ids[0], &d); st != 200 || d.State != "archived" || d.Payload["id"] != ids[0] || len(d.Attempts) != 1 || d.Attempts[0].Error == "" {
		t.Fatalf("oldest failure %s: %d %+v", ids[0], st, d)
	}
	if !d.Kept {
		t.Logf("note: %s is still in asynq's archive", ids[0])
	}

	// The export streams every one, with its payload.
	exportStart := time.Now()
	resp := underReadLimit(t, func() *http.Response {
		req, _ := http.NewRequest("GET", dashURL+"/api/executions.ndjson?state=failed", nil)
		req.SetBasicAuth("ops", failPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			resp.Body.Close()
		}
		return resp
	})
	seen := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	var end struct {
		Complete *bool `json:"complete"`
		Count    int   `json:"count"`
	}
	for sc.Scan() {
		if end.Complete != nil {
			t.Fatalf("a line after the export's last: %.200s", sc.Bytes())
		}
		var e struct {
			ID      string          `json:"id"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err == nil && e.ID == "" {
			err = json.Unmarshal(sc.Bytes(), &end) // the last line
			if err != nil || end.Complete == nil {
				t.Fatalf("export line %.200s: %v", sc.Bytes(), err)
			}
			continue
		} else if err != nil || len(e.Payload) < 100 {
			t.Fatalf("export line %.200s: %v", sc.Bytes(), err)
		}
		seen[e.ID] = true
	}
	resp.Body.Close()
	if end.Complete == nil || !*end.Complete || end.Count != len(seen) {
		t.Fatalf("the export's last line: complete %v, count %d; want complete, %d", end.Complete, end.Count, len(seen))
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("export lacks %s (%d exported of %d)", id, len(seen), n)
		}
	}
	t.Logf("export of %d failures with payloads: %v", n, time.Since(exportStart).Round(time.Millisecond))

	// Re-run all of them: a job, with progress.
	rerunStart := time.Now()
	var res struct {
		Job struct {
			URL string `json:"url"`
		} `json:"job"`
	}
	if st := dash(t, "POST", fmt.Sprintf("%s/api/executions/rerun?state=failed&expect=%d", dashURL, n), &res); st != http.StatusAccepted || res.Job.URL == "" {
		t.Fatalf("bulk re-run: %d %+v", st, res)
	}
	var job struct {
		State                              string
		Matched, Done, Run, Copied, Failed int
		Error                              string
	}
	poll.Until(t, 120*time.Second, "bulk re-run job", func() bool {
		dash(t, "GET", dashURL+res.Job.URL, &job)
		return job.State != "running"
	})
	if job.State != "done" || job.Run+job.Copied != n || job.Failed != 0 {
		t.Fatalf("bulk re-run job: %+v", job)
	}
	t.Logf("bulk re-run of %d: %d run, %d copied in %v", n, job.Run, job.Copied, time.Since(rerunStart).Round(time.Millisecond))
	// The audit log has the job's start and its end, with what it re-ran.
	var audit struct {
		Entries []struct {
			Action, Detail string
			Count          int
		}
	}
	if dash(t, "GET", dashURL+"/api/audit?limit=2", &audit); len(audit.Entries) != 2 || audit.Entries[0].Action != "bulk_rerun" ||
		audit.Entries[0].Count != n || !strings.Contains(audit.Entries[0].Detail, " done: ") || !strings.Contains(audit.Entries[1].Detail, " started: ") {
		t.Errorf("the audit log's newest entries: %+v; want the job's end (%d re-run), then its start", audit.Entries, n)
	}
	// Each ran and failed again: kept anew, every one still listed.
	defer func() {
		if t.Failed() { // what the Console said last, to tell a stuck count from a slow one
			t.Logf("the Console's last answer: total %d, counts %v", l.Total, l.Counts)
		}
	}()
	poll.Until(t, 120*time.Second, "re-run failures kept again", func() bool {
		dash(t, "GET", dashURL+"/api/executions?state=failed&limit=1", &l)
		var busy int
		for _, s := range []string{"pending", "active"} {
			busy += l.Counts[s]
		}
		return l.Total == n && busy == 0
	})
	t.Logf("all %d re-ran and were kept again %v after the bulk re-run", n, time.Since(rerunStart).Round(time.Millisecond))
	// The worker keeps a failure before asynq archives it, and a re-run
	// reopens only the failure it ran, so asynq's archive holds none the
	// store lacks: none is lost when the archive trims it.
	for _, q := range queues {
		if d := rdb.ZDiff(ctx, keyspace.Archived(q), failures.AllKey(q)).Val(); len(d) > 0 {
			t.Errorf("%s: %d failures in asynq's archive are not kept, e.g. %v", q, len(d), d[:min(len(d), 5)])
		}
	}
}

// TestEveryFailureKept sends 10,100 events that fail permanently at once
// through the real api and worker: asynq's archive keeps 10,000, the
// failure store keeps all, and the Console counts, lists, exports and
// re-runs all of them, the oldest included.
func TestEveryFailureKept(t *testing.T) {
	n := 10_100
	db := redistest.New(t)
	env := map[string]string{"WORKER_CONCURRENCY": "20", "GLOBAL_CONCURRENCY": "0",
		"DASHBOARD_ADDR": "127.0.0.1:0", "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": failPassword}
	_, apiAddr := startAPI(t, "api", db.URL, env)
	startWorker(t, "worker", db.URL, env)
	dashEnv := map[string]string{"REDIS_URL": db.URL}
	for k, v := range env {
		dashEnv[k] = v
	}
	d := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), dashEnv)
	dashAddr := proctest.DashboardAddr(t, d)

	created := time.Now().Add(-time.Hour)
	ids := make([]string, n)
	bodies := make([][]byte, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_fail_%05d", i)
		bodies[i] = badEvent("customer.updated", ids[i], created)
	}
	// The oldest first, alone, so that asynq archives it first.
	sendStart := time.Now()
	sendAll(t, "http://"+apiAddr, bodies[:1])
	time.Sleep(200 * time.Millisecond)
	sendAll(t, "http://"+apiAddr, bodies[1:])
	t.Logf("%d events acknowledged in %v", n, time.Since(sendStart).Round(time.Millisecond))
	checkEveryFailureKept(t, openRedis(t, db.URL), []string{"stripe"}, "http://"+dashAddr, ids)
}

// TestEveryFailureKeptOnCluster is TestEveryFailureKept on a 3-master
// Redis Cluster with QUEUE_SHARDS=3: 10,050 of the events hash to one
// shard, so that shard's asynq archive trims, and 150 to the others.
func TestEveryFailureKeptOnCluster(t *testing.T) {
	inShard, others := 10_050, 150
	if longRun() {
		inShard, others = 10_500, 20_000
	}
	cluster := redistest.StartCluster(t, 3)
	env := map[string]string{"WORKER_CONCURRENCY": "20", "GLOBAL_CONCURRENCY": "0", "QUEUE_SHARDS": "3",
		"DASHBOARD_ADDR": "127.0.0.1:0", "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": failPassword}
	_, apiAddr := startAPI(t, "api", cluster.URL, env)
	startWorker(t, "worker", cluster.URL, env)
	dashEnv := map[string]string{"REDIS_URL": cluster.URL}
	for k, v := range env {
		dashEnv[k] = v
	}
	d := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), dashEnv)
	dashAddr := proctest.DashboardAddr(t, d)

	o := stripetask.Options{Queue: "stripe", Shards: 3}
	created := time.Now().Add(-time.Hour)
	var ids []string
	var bodies [][]byte
	nIn, nOut := 0, 0
	for i := 0; nIn < inShard || nOut < others; i++ {
		id := fmt.Sprintf("evt_cfail_%06d", i)
		if stripetask.QueueFor(id, o) == "stripe-0" {
			if nIn == inShard {
				continue
			}
			nIn++
		} else {
			if nOut == others {
				continue
			}
			nOut++
		}
		ids = append(ids, id)
		bodies = append(bodies, badEvent("customer.updated", id, created))
	}
	sendStart := time.Now()
	sendAll(t, "http://"+apiAddr, bodies[:1])
	time.Sleep(200 * time.Millisecond)
	sendAll(t, "http://"+apiAddr, bodies[1:])
	t.Logf("%d events acknowledged in %v", len(ids), time.Since(sendStart).Round(time.Millisecond))
	checkEveryFailureKept(t, openRedis(t, cluster.URL), stripetask.Queues(o), "http://"+dashAddr, ids)
}

// TestAlertStorm sends 2,000 failures of three event types to two worker
// processes: the alert webhook gets one alert per type at once and then
// at most one summary per ALERT_INTERVAL, whose counts add up.
func TestAlertStorm(t *testing.T) {
	const n = 2000
	var mu sync.Mutex
	var immediate, summaries int
	byType := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Text    string `json:"text"`
			Stripeq *struct {
				Failures int            `json:"failures"`
				ByType   map[string]int `json:"by_type"`
				ByError  map[string]int `json:"by_error"`
				Console  string         `json:"console"`
			} `json:"stripeq"`
		}
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		defer mu.Unlock()
		if m.Stripeq == nil {
			immediate++
			return
		}
		summaries++
		sum := 0
		for typ, k := range m.Stripeq.ByType {
			byType[typ] += k
			sum += k
		}
		errs := 0
		for _, k := range m.Stripeq.ByError {
			errs += k
		}
		if sum != m.Stripeq.Failures || errs != sum || !strings.Contains(m.Stripeq.Console, "state=failed") {
			t.Errorf("summary counts disagree: %+v", m.Stripeq)
		}
	}))
	t.Cleanup(receiver.Close)

	db := redistest.New(t)
	env := map[string]string{"ALERT_WEBHOOK_URL": receiver.URL, "ALERT_INTERVAL": "1s", "GLOBAL_CONCURRENCY": "0", "WORKER_CONCURRENCY": "10"}
	_, addr := startAPI(t, "api", db.URL, nil)
	startWorker(t, "worker-1", db.URL, env)
	startWorker(t, "worker-2", db.URL, env)
	types := []string{"customer.updated", "customer.created", "customer.deleted"}
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = badEvent(types[i%3], fmt.Sprintf("evt_storm_%05d", i), time.Now())
	}
	start := time.Now()
	sendAll(t, "http://"+addr, bodies)
	rdb := openRedis(t, db.URL)
	poll.Until(t, 60*time.Second, "every failure kept", func() bool { return rdb.ZCard(context.Background(), failures.AllKey("stripe")).Val() == n })
	storm := time.Since(start)
	poll.Until(t, 10*time.Second, "summaries to count every failure", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := immediate
		for _, k := range byType {
			total += k
		}
		return total == n
	})
	mu.Lock()
	defer mu.Unlock()
	posts := immediate + summaries
	// One summary per second at most, plus the last; one alert per type.
	limit := len(types) + int(time.Since(start).Seconds()) + 2
	t.Logf("storm of %d failures over %v: %d alert POSTs (%d at once, %d summaries), by type %v", n, storm.Round(time.Millisecond), posts, immediate, summaries, byType)
	if immediate != len(types) || posts > limit {
		t.Errorf("%d alerts at once (want %d) and %d POSTs in all (want at most %d)", immediate, len(types), posts, limit)
	}
}

// TestDeadWorkerSlotsFree kills, with SIGKILL, a worker whose handlers
// hold every global concurrency slot: another worker runs an event within
// about 10 s, when the dead worker's leases lapse.
func TestDeadWorkerSlotsFree(t *testing.T) {
	db := redistest.New(t)
	stripe := newStripeAPI(t)
	env := stripe.workerEnv()
	env["GLOBAL_CONCURRENCY"] = "2"
	env["WORKER_CONCURRENCY"] = "2"
	_, addr := startAPI(t, "api", db.URL, nil)
	w1 := startWorker(t, "worker-1", db.URL, env)
	client := loadClient()
	for i := range 2 {
		id := fmt.Sprintf("evt_slot_held_%d", i)
		body := customerEvent(id, time.Now())
		stripe.add(id, body, true)
		if a := send(client, "http://"+addr, body); !a.acked() {
			t.Fatalf("delivery: %+v", a)
		}
	}
	for range 2 {
		select {
		case <-stripe.held:
		case <-time.After(20 * time.Second):
			t.Fatal("worker-1 did not take both slots")
		}
	}
	w1.Kill()
	killed := time.Now()
	startWorker(t, "worker-2", db.URL, env)
	id := "evt_slot_free"
	body := customerEvent(id, time.Now())
	stripe.add(id, body, false)
	if a := send(client, "http://"+addr, body); !a.acked() {
		t.Fatalf("delivery: %+v", a)
	}
	rdb := openRedis(t, db.URL)
	poll.Until(t, 20*time.Second, id+" completed", func() bool {
		return rdb.HGet(context.Background(), taskKey(id), "state").Val() == "completed"
	})
	took := time.Since(killed)
	t.Logf("SIGKILL of the worker holding every slot → an event completed by another %v later", took.Round(time.Millisecond))
	if took > 12*time.Second {
		t.Errorf("the dead worker's slots freed after %v, want about 10 s at most", took)
	}
}
