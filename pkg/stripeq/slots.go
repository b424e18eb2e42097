package stripeq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// errNoSlot means every global concurrency slot stayed taken while the task
// waited. The task is retried soon without counting as a failure.
var errNoSlot = errors.New("no global concurrency slot free")

// slotWait is how long a task waits for a global slot inside its handler
// before it gives its local slot back and is retried. Waiting here, polling
// with a short jittered backoff, takes a freed slot within milliseconds; a
// retry through asynq would take a second or more.
const slotWait = 3 * time.Second

// Leases of global slots: a slot is held by a lease that its worker
// renews every slotRenew while the handler runs. A worker killed with
// SIGKILL renews nothing, so its slots free themselves within slotLease.
const (
	slotLease = 6 * time.Second
	slotRenew = 2 * time.Second
)

// slots limits how many handlers run at once across every worker process
// (GLOBAL_CONCURRENCY). The slots are a Redis ZSET of leases,
// stripeq:slots:{<QUEUE_NAME>}, member "<worker>:<task ID>", score the
// lease's end in Redis's clock (unix ms). Taking a slot drops the expired
// leases first, so a killed worker's slots free themselves within
// slotLease (6 s); a live worker renews its leases every slotRenew.
type slots struct {
	rdb   redis.UniversalClient // nil when the limit is off
	key   string
	n     int
	owner string // this process

	mu   sync.Mutex
	held map[string]int // member → holders (a task ID is run once at a time)
	stop chan struct{}
	once sync.Once
}

// SlotsKey returns the ZSET of the global slots of queue (QUEUE_NAME).
func SlotsKey(queue string) string { return "stripeq:slots:{" + queue + "}" }

// newSlots returns a limit of n handlers at once; 0 turns it off. queue
// is QUEUE_NAME, also when it is sharded: one limit holds over every shard.
func newSlots(rdb redis.UniversalClient, queue string, n int) *slots {
	if n == 0 {
		return &slots{}
	}
	return &slots{rdb: rdb, key: SlotsKey(queue), n: n, owner: rand.Text()[:12], held: map[string]int{}, stop: make(chan struct{})}
}

// acquireScript takes a slot. KEYS[1] = the ZSET; ARGV = limit, lease ms,
// member. It returns 1 when the slot is taken.
var acquireScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZSCORE", KEYS[1], ARGV[3]) or redis.call("ZCARD", KEYS[1]) < tonumber(ARGV[1]) then
  redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return 1
end
return 0
`)

// renewScript extends the leases ARGV[2…] that still exist by ARGV[1] ms.
var renewScript = redis.NewScript(`
local t = redis.call("TIME")
local until = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call("ZADD", KEYS[1], "XX", until, ARGV[i]) end
return 1
`)

// acquire takes a slot for the task in ctx, waiting up to slotWait. It
// returns a release function, or errNoSlot. Under the keepFailures
// middleware (ctx carries its handoff) release hands the slot to the
// middleware, which removes it in the round trip that records the
// attempt; otherwise release removes it at once.
//
// A task run outside the server (Worker.ProcessTask in a test) has no task
// ID and takes no slot.
func (s *slots) acquire(ctx context.Context) (release func(), err error) {
	id, ok := asynq.GetTaskID(ctx)
	if s.rdb == nil || !ok {
		return func() {}, nil
	}
	s.once.Do(func() { go s.renew() })
	member := s.owner + ":" + id
	deadline := time.Now().Add(slotWait)
	pause := 5 * time.Millisecond
	for {
		got, err := acquireScript.Run(ctx, s.rdb, []string{s.key}, s.n, slotLease.Milliseconds(), member).Int()
		if err != nil {
			return nil, fmt.Errorf("global concurrency slot: %w", err)
		}
		if got == 1 {
			s.mu.Lock()
			s.held[member]++
			s.mu.Unlock()
			if h := handoffOf(ctx); h != nil {
				// The middleware sends the release with the attempt's writes.
				return func() { h.add(s, member) }, nil
			}
			return func() { s.releaseNow(ctx, []slotHeld{{s, member}}) }, nil
		}
		if time.Now().After(deadline) {
			return nil, errNoSlot
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause/2 + mrand.N(pause)):
		}
		pause = min(pause*2, 20*time.Millisecond)
	}
}

// drop forgets one holder of member and reports whether it was the last,
// whose lease must then be removed from the ZSET.
func (s *slots) drop(member string) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[member]--
	if s.held[member] > 0 {
		return false
	}
	delete(s.held, member)
	return true
}

// slotHeld is one slot a task holds.
type slotHeld struct {
	s      *slots
	member string
}

// releaseIn queues in p the release of each slot in held, forgetting
// them locally: the caller sends p (the worker's middleware, with the
// attempt's writes). A release that does not reach Redis frees itself
// when its lease ends, within slotLease.
func releaseIn(ctx context.Context, p redis.Pipeliner, held []slotHeld) {
	for _, h := range held {
		if h.s.drop(h.member) {
			p.ZRem(ctx, h.s.key, h.member)
		}
	}
}

// releaseNow releases each slot in held in one round trip.
func (s *slots) releaseNow(ctx context.Context, held []slotHeld) {
	if len(held) == 0 {
		return
	}
	// A fresh context: the task's may have ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		releaseIn(ctx, p, held)
		return nil
	})
}

// handoff collects the slots a task's handler released, for the
// middleware (keepFailures) to release them in the round trip that
// records the attempt.
type handoff struct {
	mu   sync.Mutex
	held []slotHeld
}

type handoffKey struct{}

// withHandoff returns ctx carrying a new handoff, for the handler below.
func withHandoff(ctx context.Context) (context.Context, *handoff) {
	h := &handoff{}
	return context.WithValue(ctx, handoffKey{}, h), h
}

// handoffOf returns the handoff ctx carries, or nil.
func handoffOf(ctx context.Context) *handoff {
	h, _ := ctx.Value(handoffKey{}).(*handoff)
	return h
}

func (h *handoff) add(s *slots, member string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, slotHeld{s, member})
}

// take returns the slots released so far, and forgets them.
func (h *handoff) take() []slotHeld {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.held
	h.held = nil
	return held
}

// renew extends this process's leases every slotRenew until close.
func (s *slots) renew() {
	t := time.NewTicker(slotRenew)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		args := []any{slotLease.Milliseconds()}
		for m := range s.held {
			args = append(args, m)
		}
		s.mu.Unlock()
		if len(args) == 1 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), slotRenew)
		renewScript.Run(ctx, s.rdb, []string{s.key}, args...) // a miss is retried at the next tick
		cancel()
	}
}

func (s *slots) close() {
	if s.stop != nil {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
	}
}
