package slots

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/redistest"
)

// TestSlotsPark takes a slot, then parks it, renews it, releases it
// while the flag is set, lets it idle, and closes with one parked: one
// step at a time, against a Redis of its own, and against a
// Redis Cluster of 3 masters, where the pipeline that parks also writes
// a key of another hash slot, as the worker's completion does with
// QUEUE_SHARDS.
func TestSlotsPark(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out parked slots on a standalone Redis and a cluster (about 5 s): skipped under -short")
	}
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
	s := New(db.Client, "q", 2)
	take := func(id string) string {
		t.Helper()
		m := s.reserve(id)
		got, err := acquireScript.Run(ctx, db.Client, []string{s.key, s.wanted}, s.n, Lease.Milliseconds(), m, slotWanted.Milliseconds()).Int()
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
			sent = ParkIn(ctx, p, []Held{{s, m}})
			return nil
		})
		for _, c := range cmds {
			// A script costs Redis more than the two reads of a parking
			// (issue 29): the completion's pipeline carries none for it.
			if n := c.Name(); n == "evalsha" || n == "eval" {
				t.Errorf("the parking's pipeline runs a script: %v", c.Args())
			}
		}
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
	// within Lease.
	if now := db.Client.Time(ctx).Val(); time.UnixMilli(int64(before)).Sub(now) > Lease {
		t.Errorf("the parked lease ends %v from now, want at most %v", time.UnixMilli(int64(before)).Sub(now), Lease)
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
	if got, _ := acquireScript.Run(ctx, db.Client, []string{s.key, s.wanted}, s.n, Lease.Milliseconds(), "other:y", slotWanted.Milliseconds()).Int(); got != 0 {
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
	s.Close()
	check("closed", 0, 0, 0)
	s.park(take("t5")) // a handler that outlived close
	check("parked after close", 0, 0, 0)
}
