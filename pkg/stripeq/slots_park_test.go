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

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

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
	sw := &slotWorker{w: w, hook: &slotReleases{key: keyspace.Slots(stripetask.DefaultQueue)}, running: running, most: most}
	w.rdb.AddHook(roundTrips(sw.hook.count))
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
	poll.Until(t, 30*time.Second, "every task run", func() bool { return sw.ran.Load() == n })
	poll.Until(t, time.Second, "the parked slots released", func() bool { return db.Client.ZCard(t.Context(), sw.hook.key).Val() == 0 })
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
	poll.Until(t, 30*time.Second, "A running", func() bool { return a.ran.Load() >= 50 })
	a.hook.mu.Lock()
	acquires := a.hook.acquires
	a.hook.mu.Unlock()
	if acquires > 25 {
		t.Errorf("A alone took %d slots from Redis for %d tasks; want most parked", acquires, a.ran.Load())
	}
	started := time.Now()
	b.start(t)
	poll.Until(t, 5*time.Second, "B ran a handler", func() bool { return b.ran.Load() > 0 })
	took := time.Since(started)
	poll.Until(t, 5*time.Second, "B ran 20 handlers", func() bool { return b.ran.Load() >= 20 })
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
	if testing.Short() {
		t.Skip("waits out a slot lease (about 7 s): skipped under -short")
	}
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
			time.Sleep(slots.Lease + slots.RenewEvery/2)
		}
		running.Add(-1)
		ran.Add(1)
		return nil
	})
	sw := &slotWorker{w: w}
	sw.start(t)
	poll.Until(t, 30*time.Second, "both tasks run", func() bool { return ran.Load() == 2 })
	if most.Load() != 1 {
		t.Errorf("%d handlers ran at once; GLOBAL_CONCURRENCY is 1 and the first outlived its lease's first %v", most.Load(), slots.Lease)
	}
}
