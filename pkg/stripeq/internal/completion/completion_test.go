package completion

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// moveScript stands for asynq's completion: its first key is the queue's
// active list, its first argument the task ID. It returns the value the
// writes left before it set, so the order shows.
var moveScript = redis.NewScript(`
redis.call("LREM", KEYS[1], 0, ARGV[1])
return redis.call("GET", KEYS[2])`)

// trips counts round trips, but a new connection's handshake (HELLO,
// SELECT of the test's database, CLIENT SETINFO).
type trips struct{ n atomic.Int64 }

func (h *trips) count(first redis.Cmder) {
	if name := first.Name(); name != "hello" && name != "select" && name != "client" {
		h.n.Add(1)
	}
}

func (h *trips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.count(cmd); return next(ctx, cmd) }
}
func (h *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.count(cmds[0]); return next(ctx, cmds) }
}

// writes returns Writes that SET key to value, and count Done and Alone.
func writes(queue, key, value string, done, alone *atomic.Int64, rdb redis.UniversalClient) Writes {
	return Writes{
		Queue: queue,
		Send:  func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, key, value, 0) },
		Done: func(_ []redis.Cmder, err error) {
			if err == nil {
				done.Add(1)
			}
		},
		Alone: func() {
			rdb.Set(context.Background(), key, value, 0)
			alone.Add(1)
		},
	}
}

func TestCompletionCarriesTheWrites(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	if err := moveScript.Load(ctx, db.Client).Err(); err != nil {
		t.Fatal(err)
	}
	c := New(db.Client)
	h := &trips{}
	db.Client.AddHook(h)
	var done, alone atomic.Int64
	active := keyspace.Active("q")

	if New(db.Client).Leave("t0", writes("q", "k0", "v0", &done, &alone, db.Client)) {
		t.Fatal("an inactive client took writes")
	}
	c.Activate()
	if !c.Leave("t1", writes("q", "k1", "v1", &done, &alone, db.Client)) {
		t.Fatal("an active client refused writes")
	}
	// Another task's script, or the task's in another queue, carries nothing.
	for _, call := range []struct {
		key, id string
	}{{active, "t2"}, {keyspace.Active("other"), "t1"}} {
		if got, err := moveScript.Run(ctx, c, []string{call.key, "k1"}, call.id).Result(); err != redis.Nil {
			t.Fatalf("script of %s in %s = %v, %v; want nil: the writes are not its own", call.id, call.key, got, err)
		}
	}
	// By its text, not its hash: other packages' tests flush the server's
	// script cache (SCRIPT FLUSH is server-wide), and a NOSCRIPT fallback
	// would add a round trip. The hash's path, as asynq takes it, is
	// TestCompletionCarriesTheAttempt's in pkg/stripeq.
	before := h.n.Load()
	got, err := moveScript.Eval(ctx, c, []string{active, "k1"}, "t1").Text()
	if err != nil || got != "v1" {
		t.Fatalf("the completion read %q, %v; want v1, written first", got, err)
	}
	if n := h.n.Load() - before; n != 1 || done.Load() != 1 || alone.Load() != 0 {
		t.Errorf("%d round trips, %d done, %d alone; want 1, 1, 0", n, done.Load(), alone.Load())
	}

	// Writes no completion takes go alone, after Wait or at Flush.
	c.Leave("t3", writes("q", "k3", "v3", &done, &alone, db.Client))
	poll.Until(t, 5*Wait, "writes not taken sent alone", func() bool { return alone.Load() == 1 })
	c.Leave("t4", writes("q", "k4", "v4", &done, &alone, db.Client))
	c.Flush()
	if alone.Load() != 2 || db.Client.Get(ctx, "k4").Val() != "v4" {
		t.Errorf("after Flush: %d sent alone, k4 %q; want 2, v4", alone.Load(), db.Client.Get(ctx, "k4").Val())
	}
	if c.Leave("t5", writes("q", "k5", "v5", &done, &alone, db.Client)) {
		t.Error("a flushed client took writes")
	}
}

// TestCompletionAddsWrites: writes added to a task's pending writes are
// sent after them, in the same round trip as its completion, each part's
// Done given its own commands; writes added where none were pending are
// carried too; added writes that no completion takes go alone, both parts.
func TestCompletionAddsWrites(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	c := New(db.Client)
	if c.Add("t0", writes("q", "k0", "v0", new(atomic.Int64), new(atomic.Int64), db.Client)) {
		t.Fatal("an inactive client took added writes")
	}
	c.Activate()
	h := &trips{}
	db.Client.AddHook(h)
	active := keyspace.Active("q")
	var doneA, doneB, alone atomic.Int64
	var got [][]string
	part := func(key, value string, done *atomic.Int64) Writes {
		w := writes("q", key, value, done, &alone, db.Client)
		w.Done = func(cmds []redis.Cmder, err error) {
			var names []string
			for _, x := range cmds {
				names = append(names, x.Args()[1].(string))
			}
			got = append(got, names)
			if err == nil {
				done.Add(1)
			}
		}
		return w
	}
	c.Leave("t1", part("k1", "first", &doneA))
	if !c.Add("t1", part("k1", "second", &doneB)) {
		t.Fatal("Add refused writes")
	}
	before := h.n.Load()
	v, err := moveScript.Eval(ctx, c, []string{active, "k1"}, "t1").Text()
	switch {
	case err != nil || v != "second":
		t.Errorf("the completion read %q, %v; want second: the added writes run after the first", v, err)
	case h.n.Load()-before != 1:
		t.Errorf("%d round trips, want 1", h.n.Load()-before)
	case doneA.Load() != 1 || doneB.Load() != 1 || len(got) != 2 || len(got[0]) != 1 || len(got[1]) != 1 || got[0][0] != "k1":
		t.Errorf("Done calls %d, %d with %v; want each part its own command", doneA.Load(), doneB.Load(), got)
	}
	if !c.Add("t2", part("k2", "alone", &doneB)) {
		t.Fatal("Add refused writes with none pending")
	}
	if v, _ := moveScript.Eval(ctx, c, []string{active, "k2"}, "t2").Text(); v != "alone" {
		t.Errorf("the completion of t2 read %q, want the added write", v)
	}
	c.Leave("t3", part("k3", "a", &doneA))
	c.Add("t3", part("k4", "b", &doneB))
	poll.Until(t, 5*Wait, "both parts sent alone", func() bool { return alone.Load() == 2 })
	if db.Client.Get(ctx, "k3").Val() != "a" || db.Client.Get(ctx, "k4").Val() != "b" {
		t.Error("the parts sent alone did not write")
	}
}
