package stripeq

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestSlotsPark takes a slot, then parks it, renews it, releases it
// while the flag is set, lets it idle, and closes with one parked: one
// step at a time, against a Redis of its own, whose script cache starts
// empty (parkIn then falls back from EVALSHA to EVAL), and against a
// Redis Cluster of 3 masters, where the pipeline that parks also writes
// a key of another hash slot, as the worker's completion does with
// QUEUE_SHARDS.
func TestSlotsPark(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		testSlotsPark(t, rdb)
	})
	t.Run("cluster", func(t *testing.T) {
		testSlotsPark(t, redistest.StartCluster(t, 3).Client)
	})
}

func testSlotsPark(t *testing.T, rdb redis.UniversalClient) {
	db := &redistest.DB{Client: rdb}
	ctx := t.Context()
	s := newSlots(db.Client, "q", 2)
	take := func(id string) string {
		t.Helper()
		m := s.reserve(id)
		got, err := acquireScript.Run(ctx, db.Client, []string{s.key, s.wanted}, s.n, slotLease.Milliseconds(), m, slotWanted.Milliseconds()).Int()
		if err != nil || got != 1 {
			t.Fatalf("acquire %s: %d, %v", m, got, err)
		}
		return m
	}
	end := func(m string) {
		t.Helper()
		var sent func([]redis.Cmder, error) error
		cmds, err := db.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "stripeq:test:{q-1}", m, time.Minute) // another hash slot
			sent = parkIn(ctx, p, []slotHeld{{s, m}})
			return nil
		})
		if err := sent(cmds, err); err != nil {
			t.Errorf("the pipeline's other write: %v", err) // not the park's NOSCRIPT, handled
		}
		if got := db.Client.Get(ctx, "stripeq:test:{q-1}").Val(); got != m {
			t.Errorf("the pipeline's other write: %q, want %q", got, m)
		}
	}
	state := func() (redisLeases int64, parked, leases int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return db.Client.ZCard(ctx, s.key).Val(), len(s.parked), len(s.leases)
	}
	check := func(step string, wantRedis int64, wantParked, wantLeases int) {
		t.Helper()
		if r, p, l := state(); r != wantRedis || p != wantParked || l != wantLeases {
			t.Errorf("%s: %d leases in Redis, %d parked, %d known; want %d, %d, %d", step, r, p, l, wantRedis, wantParked, wantLeases)
		}
	}

	a := take("t1")
	if b := s.reserve("t1"); b == a {
		t.Errorf("a second lease of t1 while the first is this process's: %s, the same member", b)
	} else {
		s.forget(b)
	}
	end(a)
	check("parked", 1, 1, 1)
	before := db.Client.ZScore(ctx, s.key, a).Val()
	// A parked slot is a lease like the others: a killed process's ends
	// within slotLease.
	if now := db.Client.Time(ctx).Val(); time.UnixMilli(int64(before)).Sub(now) > slotLease {
		t.Errorf("the parked lease ends %v from now, want at most %v", time.UnixMilli(int64(before)).Sub(now), slotLease)
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.renewOnce(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if after := db.Client.ZScore(ctx, s.key, a).Val(); after <= before {
		t.Errorf("renew: the lease ends at %v, before it at %v", after, before)
	}
	if m, ok := s.unpark(); !ok || m != a {
		t.Fatalf("unpark: %q, %v; want %q", m, ok, a)
	}
	check("taken from the pool", 1, 0, 1)

	// Refused: the limit is 2, so fill it from another process first.
	db.Client.ZAdd(ctx, s.key, redis.Z{Score: float64(time.Now().Add(time.Minute).UnixMilli()), Member: "other:x"})
	if got, _ := acquireScript.Run(ctx, db.Client, []string{s.key, s.wanted}, s.n, slotLease.Milliseconds(), "other:y", slotWanted.Milliseconds()).Int(); got != 0 {
		t.Fatalf("a third slot of 2 was given")
	}
	if pttl := db.Client.PTTL(ctx, s.wanted).Val(); pttl <= 0 || pttl > slotWanted {
		t.Errorf("the flag after a refusal: PTTL %v, want up to %v", pttl, slotWanted)
	}
	end(a)
	check("released: a slot is wanted", 1, 0, 0) // other:x's
	db.Client.Del(ctx, s.wanted, s.key)

	a = take("t2")
	end(a)
	check("parked again", 1, 1, 1)
	time.Sleep(slotParkIdle + 100*time.Millisecond)
	check("idle", 0, 0, 0)

	a = take("t3")
	db.Client.ZRem(ctx, s.key, a) // as if it expired and another process dropped it
	end(a)
	check("a lease gone from Redis is not parked", 0, 0, 0)

	end(take("t4"))
	check("parked before close", 1, 1, 1)
	s.close()
	check("closed", 0, 0, 0)
	s.park(take("t5")) // a handler that outlived close
	check("parked after close", 0, 0, 0)
}

// slotWorker is a worker under a global concurrency limit whose handler
// takes pause, counting its runs and the handlers running at once in
// every slotWorker that shares running.
type slotWorker struct {
	w       *Worker
	hook    *slotReleases
	ran     atomic.Int64
	running *atomic.Int64
	most    *atomic.Int64
	stop    func()
}

func newSlotWorker(t *testing.T, db *redistest.DB, global, local int, pause time.Duration, running, most *atomic.Int64) *slotWorker {
	t.Helper()
	w, err := NewWorker(Config{RedisURL: db.URL, GlobalConcurrency: global, Concurrency: local, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sw := &slotWorker{w: w, hook: &slotReleases{key: SlotsKey(stripetask.DefaultQueue)}, running: running, most: most}
	w.rdb.AddHook(sw.hook)
	Handle(w, "invoice.paid", func(ctx context.Context, e *Event[map[string]any]) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(pause)
		running.Add(-1)
		sw.ran.Add(1)
		return nil
	})
	return sw
}

func (sw *slotWorker) start(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sw.w.Run(ctx) }()
	var once sync.Once
	sw.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(sw.stop)
}

func enqueueInvoices(t *testing.T, db *redistest.DB, prefix string, n int) {
	t.Helper()
	client := asynq.NewClientFromRedisClient(db.Client)
	fixture := stripetest.Fixture("invoice.paid")
	for i := range n {
		body := stripetest.Edit(fixture, func(e map[string]any) { e["id"] = fmt.Sprintf("evt_%s_%04d", prefix, i) })
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlotsParkedReused drains a backlog through one worker: its handlers
// take the slots their process parked instead of asking Redis, never more
// than GLOBAL_CONCURRENCY run at once, and the parked slots are released
// once the queue is empty.
func TestSlotsParkedReused(t *testing.T) {
	db := redistest.New(t)
	loadSlotScripts(t, db)
	const n = 60
	enqueueInvoices(t, db, "park", n)
	var running, most atomic.Int64
	sw := newSlotWorker(t, db, 2, 2, time.Millisecond, &running, &most)
	sw.start(t)
	waitUntil(t, 30*time.Second, "every task run", func() bool { return sw.ran.Load() == n })
	waitUntil(t, time.Second, "the parked slots released", func() bool { return db.Client.ZCard(t.Context(), sw.hook.key).Val() == 0 })
	sw.hook.mu.Lock()
	acquires := sw.hook.acquires
	sw.hook.mu.Unlock()
	t.Logf("%d tasks, global 2: %d slots taken from Redis, at most %d handlers at once", n, acquires, most.Load())
	if acquires > n/3 {
		t.Errorf("%d of %d tasks took their slot from Redis; want most to take a parked one", acquires, n)
	}
	if most.Load() > 2 {
		t.Errorf("%d handlers ran at once; GLOBAL_CONCURRENCY is 2", most.Load())
	}
}

// TestSlotsNotHoarded runs worker A alone on a backlog, reusing its parked
// slots, then starts worker B: B's refused tasks set the flag, A releases
// its slots at its next completions, and B runs a handler within about a
// second. At no time do more than GLOBAL_CONCURRENCY handlers run, and
// the slots are all free once both stop.
func TestSlotsNotHoarded(t *testing.T) {
	db := redistest.New(t)
	loadSlotScripts(t, db)
	enqueueInvoices(t, db, "hoard", 2000)
	var running, most atomic.Int64
	a := newSlotWorker(t, db, 2, 2, 5*time.Millisecond, &running, &most)
	b := newSlotWorker(t, db, 2, 2, 5*time.Millisecond, &running, &most)
	a.start(t)
	waitUntil(t, 30*time.Second, "A running", func() bool { return a.ran.Load() >= 50 })
	a.hook.mu.Lock()
	acquires := a.hook.acquires
	a.hook.mu.Unlock()
	if acquires > 25 {
		t.Errorf("A alone took %d slots from Redis for %d tasks; want most parked", acquires, a.ran.Load())
	}
	started := time.Now()
	b.start(t)
	waitUntil(t, 5*time.Second, "B ran a handler", func() bool { return b.ran.Load() > 0 })
	took := time.Since(started)
	waitUntil(t, 5*time.Second, "B ran 20 handlers", func() bool { return b.ran.Load() >= 20 })
	t.Logf("B's first handler %v after its start; A %d, B %d handlers in %v; at most %d at once",
		took.Round(time.Millisecond), a.ran.Load(), b.ran.Load(), time.Since(started).Round(time.Millisecond), most.Load())
	if took > 1500*time.Millisecond {
		t.Errorf("B waited %v for a slot; want about a second at most", took)
	}
	a.stop()
	b.stop()
	if most.Load() > 2 {
		t.Errorf("%d handlers ran at once; GLOBAL_CONCURRENCY is 2", most.Load())
	}
	if m := db.Client.ZRange(t.Context(), a.hook.key, 0, -1).Val(); len(m) > 0 {
		t.Errorf("slots held after both workers stopped: %s", strings.Join(m, ", "))
	}
}

// TestSlotLeaseOutlivesHandler runs a handler longer than a lease under
// GLOBAL_CONCURRENCY=1 while a second task waits: the worker renews the
// lease, so the second runs only after the first ends.
func TestSlotLeaseOutlivesHandler(t *testing.T) {
	db := redistest.New(t)
	enqueueInvoices(t, db, "lease", 2)
	w, err := NewWorker(Config{RedisURL: db.URL, GlobalConcurrency: 1, Concurrency: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var running, most, ran atomic.Int64
	Handle(w, "invoice.paid", func(ctx context.Context, e *Event[map[string]any]) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if ran.Load() == 0 {
			time.Sleep(slotLease + slotRenew/2)
		}
		running.Add(-1)
		ran.Add(1)
		return nil
	})
	sw := &slotWorker{w: w}
	sw.start(t)
	waitUntil(t, 30*time.Second, "both tasks run", func() bool { return ran.Load() == 2 })
	if most.Load() != 1 {
		t.Errorf("%d handlers ran at once; GLOBAL_CONCURRENCY is 1 and the first outlived its lease's first %v", most.Load(), slotLease)
	}
}
