package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// This file holds what the fault, load and soak tests share.

// longRun reports whether STRIPEQ_LONG is set: the fault tests then also
// wait out asynq's real lease expiry (one to two minutes) instead of ageing
// the lease in Redis.
func longRun() bool { return os.Getenv("STRIPEQ_LONG") != "" }

// redisConf is the absolute path of deploy/redis.conf.
func redisConf(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "redis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// openRedis returns a client of the Redis at url, closed at the end of the
// test.
func openRedis(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	opt, err := redisconn.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redisconn.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// startAPI runs the api binary against redisURL on a port of its own
// choosing (API_ADDR=127.0.0.1:0, unless env sets it), and returns it with
// the address it logged once listening.
func startAPI(t *testing.T, name, redisURL string, env map[string]string) (*proctest.Proc, string) {
	t.Helper()
	vars := map[string]string{"REDIS_URL": redisURL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "API_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		vars[k] = v
	}
	p := proctest.Start(t, name, proctest.Binary(t, "api"), vars)
	return p, proctest.APIAddr(t, p)
}

// startWorker runs the worker binary against redisURL and waits until its
// asynq server runs.
func startWorker(t *testing.T, name, redisURL string, env map[string]string) *proctest.Proc {
	t.Helper()
	vars := map[string]string{"REDIS_URL": redisURL}
	for k, v := range env {
		vars[k] = v
	}
	p := proctest.Start(t, name, proctest.Binary(t, "worker"), vars)
	waitOutput(t, p, `"worker running"`, 30*time.Second)
	return p
}

// waitOutput waits until p has written s.
func waitOutput(t *testing.T, p *proctest.Proc, s string, timeout time.Duration) {
	t.Helper()
	poll.Until(t, timeout, p.Name+" to write "+s, func() bool {
		select {
		case <-p.Done():
			t.Fatalf("%s exited before writing %s: %v", p.Name, s, p.ExitErr())
		default:
		}
		return strings.Contains(p.Output(), s)
	})
}

// answer is the api's answer to one delivery.
type answer struct {
	status  int // 0 when no answer came
	message string
	err     error
	latency time.Duration
	at      time.Time // when the answer came, where a test needs it
}

// acked reports whether the api acknowledged the event: Stripe will not
// deliver it again.
func (a answer) acked() bool { return a.status == http.StatusOK }

// send posts body, signed now, to the api at base. It is safe to call from
// many goroutines.
func send(client *http.Client, base string, body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Stripe-Signature", stripetest.Sign(body, time.Now(), stripetest.Secret))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	var a struct{ Message string }
	err = json.NewDecoder(resp.Body).Decode(&a)
	return answer{status: resp.StatusCode, message: a.Message, err: err, latency: time.Since(start)}
}

// loadClient is an HTTP client for many concurrent deliveries to one api.
func loadClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
}

// customerEvent returns a customer.updated event with its own ID and
// customer, so that many of them make many records.
func customerEvent(id string, created time.Time) []byte {
	return stripetest.Edit(stripetest.Event("customer.updated", id, created), func(e map[string]any) {
		stripetest.Object(e)["id"] = "cus_" + strings.TrimPrefix(id, "evt_")
	})
}

// taskKey is the asynq HASH of the task of an event in the stripe queue.
func taskKey(id string) string { return "asynq:{stripe}:t:" + id }

// taskStates returns the asynq state of the task of each event ID ("" when
// there is none), in one pipeline.
func taskStates(t *testing.T, rdb redis.UniversalClient, ids []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	states := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, 5000) {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(chunk))
		for i, id := range chunk {
			cmds[i] = pipe.HGet(ctx, taskKey(id), "state")
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			t.Fatalf("read task states: %v", err)
		}
		for i, id := range chunk {
			states[id] = cmds[i].Val()
		}
	}
	return states
}

// countStates counts the states of taskStates.
func countStates(states map[string]string) map[string]int {
	n := map[string]int{}
	for _, s := range states {
		if s == "" {
			s = "missing"
		}
		n[s]++
	}
	return n
}

// leaseKey is asynq's ZSET of active tasks by lease expiry (unix seconds).
const leaseKey = "asynq:{stripe}:lease"

// ageLeases makes the leases of the given active tasks look expired for
// over 30 s, as they would a minute after their worker died. asynq's
// lease (30 s), its recoverer's margin (30 s) and its recoverer's period
// (1 min) are constants in asynq v0.26, so a killed worker's task comes
// back after 55 s to 2 min; ageing the lease stands in for that wait. A
// worker started afterwards recovers the tasks at once: its recoverer runs
// when it starts.
func ageLeases(t *testing.T, rdb redis.UniversalClient, ids []string) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	zs := make([]redis.Z, len(ids))
	past := float64(time.Now().Add(-time.Minute).Unix())
	for i, id := range ids {
		zs[i] = redis.Z{Score: past, Member: id}
	}
	if err := rdb.ZAddXX(context.Background(), leaseKey, zs...).Err(); err != nil {
		t.Fatalf("age leases: %v", err)
	}
}

// deadLeases returns the active tasks whose lease nobody extends any more:
// those of killed workers. Live workers extend every lease they hold every
// 5 s, so a lease whose expiry has not moved in 7 s is orphaned. It takes
// 7 s.
func deadLeases(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ctx := context.Background()
	before, err := rdb.ZRangeWithScores(ctx, leaseKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(7 * time.Second)
	var dead []string
	for _, z := range before {
		score, err := rdb.ZScore(ctx, leaseKey, z.Member.(string)).Result()
		if err == nil && score == z.Score {
			dead = append(dead, z.Member.(string))
		}
	}
	return dead
}

// stripeAPI is a Stripe API that serves stored events at /v1/events/{id}.
// It can hold the first retrieval of an event until released, which keeps
// a worker's handler in the middle of its task for as long as a test
// needs: the worker retrieves the event inside the handler, holding its
// task and its global concurrency slot.
type stripeAPI struct {
	*httptest.Server
	// held receives the ID of each event whose retrieval is being held.
	held chan string

	mu       sync.Mutex
	events   map[string][]byte
	hold     map[string]chan struct{} // closed to release
	requests map[string]int
}

func newStripeAPI(t *testing.T) *stripeAPI {
	s := &stripeAPI{
		held:     make(chan string, 16),
		events:   map[string][]byte{},
		hold:     map[string]chan struct{}{},
		requests: map[string]int{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// add stores an event; hold makes its first retrieval wait for release.
func (s *stripeAPI) add(id string, body []byte, hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[id] = body
	if hold {
		s.hold[id] = make(chan struct{})
	}
}

// release lets a held retrieval of id answer.
func (s *stripeAPI) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.hold[id]; ok {
		close(c)
		delete(s.hold, id)
	}
}

// served returns how many times id was requested.
func (s *stripeAPI) served(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[id]
}

// workerEnv is the worker environment that retrieves events from s.
func (s *stripeAPI) workerEnv() map[string]string {
	return map[string]string{"STRIPE_SECRET_KEY": "sk_test_stripeq", "STRIPE_API_BASE": s.URL}
}

func (s *stripeAPI) serve(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/events/")
	s.mu.Lock()
	body, ok := s.events[id]
	s.requests[id]++
	first := s.requests[id] == 1
	wait := s.hold[id]
	s.mu.Unlock()
	if wait != nil && first {
		s.held <- id
		select {
		case <-wait:
		case <-r.Context().Done(): // the worker died or gave up
			return
		}
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"No such event"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// awaitHeld waits until the retrieval of id is held: its handler is in the
// middle of its task.
func (s *stripeAPI) awaitHeld(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	if got := poll.Signal(t, timeout, "a worker to retrieve "+id, s.held); got != id {
		t.Fatalf("held %s, want %s", got, id)
	}
}

// notifications returns the entries of the notifications stream.
func notifications(t *testing.T, rdb redis.UniversalClient) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), records.NotificationsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// waitCompletedRecovering waits until the queue holds n completed tasks. A
// task in a handler when Redis failed over or froze may have finished
// without its completion reaching Redis; asynq brings it back when its
// lease has lapsed (55 s to 2 min in asynq v0.26). After 10 s this ages
// such orphaned leases, as the crash tests do, so the running worker's
// recoverer (once a minute) brings them back; it fails after 100 s.
func waitCompletedRecovering(t *testing.T, rdb redis.UniversalClient, n int) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	start := time.Now()
	aged := false
	poll.Value(t, 100*time.Second, fmt.Sprintf("%d completed tasks", n), func() (*asynq.QueueInfo, error) {
		info, err := redistest.QueueCompleted(insp, "stripe", n)
		if err != nil && !aged && time.Since(start) > 10*time.Second {
			orphans := deadLeases(t, rdb)
			ageLeases(t, rdb, orphans)
			aged = true
			t.Logf("%d task(s) still active 10 s on, with leases nobody extends: aged for asynq's recoverer", len(orphans))
		}
		return info, err
	})
}
