// Package slots limits how many handlers run at once across every worker
// process (GLOBAL_CONCURRENCY), with leases in a Redis ZSET. Part of
// pkg/stripeq's engine: internal, no compatibility promise.
package slots

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// ErrNoSlot means every global concurrency slot stayed taken while the task
// waited. The task is retried soon without counting as a failure.
var ErrNoSlot = errors.New("no global concurrency slot free")

// slotWait is how long a task waits for a global slot inside its handler
// before it gives its local slot back and is retried. Waiting here, polling
// with a short jittered backoff, takes a freed slot within milliseconds; a
// retry through asynq would take a second or more.
const slotWait = 3 * time.Second

// Leases of global slots: a slot is held by a lease that its worker
// renews every RenewEvery while the handler runs or the slot is parked. A
// worker killed with SIGKILL renews nothing, so its slots free themselves
// within Lease.
const (
	Lease      = 6 * time.Second
	RenewEvery = 2 * time.Second
)

// slotWanted is how long the contention flag lasts after a task was last
// refused a slot: while it is set, a finished handler releases its slot
// instead of parking it.
const slotWanted = time.Second

// slotParkIdle is how long a parked slot waits for the next handler of
// its process before it is released.
const slotParkIdle = 75 * time.Millisecond

// Slots limits how many handlers run at once across every worker process
// (GLOBAL_CONCURRENCY). The slots are a Redis ZSET of leases,
// stripeq:slots:{<QUEUE_NAME>}, member "<worker>:<task ID>", score the
// lease's end in Redis's clock (unix ms). Taking a slot drops the expired
// leases first, so a killed worker's slots free themselves within
// Lease (6 s); a live worker renews its leases every RenewEvery.
//
// A handler that ends parks its slot instead of releasing it, unless a
// task somewhere was refused a slot within the last slotWanted (1 s): the
// refusal sets the flag stripeq:slots:{<QUEUE_NAME>}:wanted. A parked slot
// keeps its lease, renewed like the others, and the next handler of the
// same process takes it without a round trip; one not taken within
// slotParkIdle (75 ms) is released. So a lease's member names the task
// that first took it (with ":<n>" appended when that name is already one
// of the process's leases: a retry of that task), and a busy worker with no one waiting pays one
// round trip per task (its completion) instead of two. A parked slot
// counts as taken everywhere, so the limit holds as before; a process
// that wants a slot sets the flag, and the others release theirs at their
// next completion.
type Slots struct {
	rdb    redis.UniversalClient // nil when the limit is off
	key    string
	wanted string // the contention flag
	n      int
	owner  string // this process

	mu     sync.Mutex
	leases map[string]struct{} // this process's leases, in use or parked
	parked []*parkedSlot       // the latest last
	seq    int                 // makes a member unique in this process
	closed bool
	stop   chan struct{}
	once   sync.Once
}

// parkedSlot is a slot that no handler uses, kept for the next.
type parkedSlot struct {
	member string
	timer  *time.Timer // releases it after slotParkIdle
	gone   bool        // taken or released
}

// New returns a limit of n handlers at once; 0 turns it off. queue
// is QUEUE_NAME, also when it is sharded: one limit holds over every shard.
func New(rdb redis.UniversalClient, queue string, n int) *Slots {
	if n == 0 {
		return &Slots{}
	}
	return &Slots{
		rdb: rdb, key: keyspace.Slots(queue), wanted: keyspace.SlotsWanted(queue), n: n, owner: rand.Text()[:12],
		leases: map[string]struct{}{}, stop: make(chan struct{}),
	}
}

// acquireScript takes a slot. KEYS[1] = the ZSET, KEYS[2] = the
// contention flag; ARGV = limit, lease ms, member, flag ms. It returns 1
// when the slot is taken; otherwise it sets the flag.
var acquireScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZSCORE", KEYS[1], ARGV[3]) or redis.call("ZCARD", KEYS[1]) < tonumber(ARGV[1]) then
  redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return 1
end
redis.call("SET", KEYS[2], "1", "PX", ARGV[4])
return 0
`)

// renewScript extends the leases ARGV[2…] that still exist by ARGV[1] ms.
// (A variable named until, a Lua keyword, kept it from compiling.)
var renewScript = redis.NewScript(`
local t = redis.call("TIME")
local lease_end = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call("ZADD", KEYS[1], "XX", lease_end, ARGV[i]) end
return 1
`)

// Acquire takes a slot for the task in ctx, waiting up to slotWait: a
// slot this process parked, or one from Redis. It returns a release
// function, or ErrNoSlot. Under the attempts middleware (pkg/stripeq/internal/attempts) (ctx carries
// its handoff) release hands the slot to the middleware, which parks or
// releases it in the round trip that records the attempt; otherwise
// release removes it at once.
//
// A task run outside the server (Worker.ProcessTask in a test) has no task
// ID and takes no slot.
func (s *Slots) Acquire(ctx context.Context) (release func(), err error) {
	id, ok := asynq.GetTaskID(ctx)
	if s.rdb == nil || !ok {
		return func() {}, nil
	}
	if member, ok := s.unpark(); ok {
		return s.releaser(ctx, member), nil
	}
	s.once.Do(func() { go s.renew() })
	member := s.reserve(id)
	deadline := time.Now().Add(slotWait)
	pause := 5 * time.Millisecond
	for {
		got, err := acquireScript.Run(ctx, s.rdb, []string{s.key, s.wanted}, s.n, Lease.Milliseconds(), member, slotWanted.Milliseconds()).Int()
		if err != nil {
			s.forget(member)
			return nil, fmt.Errorf("global concurrency slot: %w", err)
		}
		if got == 1 {
			return s.releaser(ctx, member), nil
		}
		if time.Now().After(deadline) {
			s.forget(member)
			return nil, ErrNoSlot
		}
		select {
		case <-ctx.Done():
			s.forget(member)
			return nil, ctx.Err()
		case <-time.After(pause/2 + mrand.N(pause)):
		}
		if parked, ok := s.unpark(); ok {
			s.forget(member)
			return s.releaser(ctx, parked), nil
		}
		pause = min(pause*2, 20*time.Millisecond)
	}
}

// reserve returns the member of a new lease for task id, "<owner>:<id>",
// unique in this process: a slot that an earlier run of the task parked
// may still be used by another task.
func (s *Slots) reserve(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	member := s.owner + ":" + id
	if _, dup := s.leases[member]; dup {
		s.seq++
		member += ":" + strconv.Itoa(s.seq)
	}
	s.leases[member] = struct{}{}
	return member
}

// releaser returns the release of member for the task in ctx.
func (s *Slots) releaser(ctx context.Context, member string) func() {
	if h := handoffOf(ctx); h != nil {
		// The middleware parks or releases it with the attempt's writes.
		return func() { h.add(s, member) }
	}
	return func() { s.releaseNow(ctx, []string{member}) }
}

// unpark takes the slot parked last, if any.
func (s *Slots) unpark() (member string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.parked)
	if n == 0 {
		return "", false
	}
	p := s.parked[n-1]
	s.parked[n-1] = nil
	s.parked = s.parked[:n-1]
	p.gone = true
	p.timer.Stop()
	return p.member, true
}

// park keeps member, whose lease Redis has just renewed, for the next
// handler, for up to slotParkIdle.
func (s *Slots) park(member string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.releaseNow(context.Background(), []string{member})
		return
	}
	p := &parkedSlot{member: member}
	p.timer = time.AfterFunc(slotParkIdle, func() { s.idle(p) })
	s.parked = append(s.parked, p)
	s.mu.Unlock()
}

// idle releases p, parked and not taken for slotParkIdle.
func (s *Slots) idle(p *parkedSlot) {
	s.mu.Lock()
	if p.gone {
		s.mu.Unlock()
		return
	}
	p.gone = true
	for i, q := range s.parked {
		if q == p {
			s.parked = append(s.parked[:i], s.parked[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.releaseNow(context.Background(), []string{p.member})
}

// forget drops member from this process's leases: it is released, or
// its lease ends by itself.
func (s *Slots) forget(member string) {
	s.mu.Lock()
	delete(s.leases, member)
	s.mu.Unlock()
}

// Held is one slot a task holds.
type Held struct {
	s      *Slots
	member string
}

// ParkIn queues in p, for each slot in held, the two reads that decide
// whether it is parked or released: whether a task is waiting for a slot
// (the contention flag) and whether its lease still exists. They are plain
// commands, not a script: parking renews nothing, the renewals (every
// RenewEvery) keep a parked lease as they keep the others. The caller
// sends p (the worker's middleware, with the attempt's writes), then
// calls sent with what p's Exec returned. sent keeps the slots no one
// waits for and whose lease exists for the next handlers, releases those
// a task waits for (ZREM, in a round trip of its own: only under
// contention), forgets those whose lease is gone or whose reads failed,
// and returns the first error of p's other commands. A release that does
// not reach Redis frees itself when its lease ends, within Lease.
func ParkIn(ctx context.Context, p redis.Pipeliner, held []Held) (sent func([]redis.Cmder, error) error) {
	if len(held) == 0 {
		return func(_ []redis.Cmder, err error) error { return err }
	}
	own := make(map[redis.Cmder]struct{}, 2*len(held))
	wanted := make([]*redis.IntCmd, len(held))
	score := make([]*redis.FloatCmd, len(held))
	for i, h := range held {
		wanted[i] = p.Exists(ctx, h.s.wanted)
		score[i] = p.ZScore(ctx, h.s.key, h.member)
		own[wanted[i]], own[score[i]] = struct{}{}, struct{}{}
	}
	return func(all []redis.Cmder, pipeErr error) error {
		for i, h := range held {
			w, werr := wanted[i].Result()
			_, serr := score[i].Result()
			switch {
			case werr != nil || serr != nil: // gone (redis.Nil), or not known
				h.s.forget(h.member)
			case w == 0:
				h.s.park(h.member)
			default:
				h.s.releaseNow(ctx, []string{h.member})
			}
		}
		if pipeErr == nil {
			return nil
		}
		for _, c := range all {
			if _, ok := own[c]; !ok && c.Err() != nil {
				return c.Err()
			}
		}
		return nil
	}
}

// releaseNow releases members in one round trip.
func (s *Slots) releaseNow(ctx context.Context, members []string) {
	if len(members) == 0 {
		return
	}
	s.mu.Lock()
	args := make([]any, len(members))
	for i, m := range members {
		delete(s.leases, m)
		args[i] = m
	}
	s.mu.Unlock()
	// A fresh context: the task's may have ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s.rdb.ZRem(ctx, s.key, args...) // one that fails ends with its lease
}

// Handoff collects the slots a task's handler released, for the
// middleware (pkg/stripeq/internal/attempts) to park or release them in the round trip
// that records the attempt.
type Handoff struct {
	mu   sync.Mutex
	held []Held
}

type handoffKey struct{}

// WithHandoff returns ctx carrying a new handoff, for the handler below.
func WithHandoff(ctx context.Context) (context.Context, *Handoff) {
	h := &Handoff{}
	return context.WithValue(ctx, handoffKey{}, h), h
}

// handoffOf returns the handoff ctx carries, or nil.
func handoffOf(ctx context.Context) *Handoff {
	h, _ := ctx.Value(handoffKey{}).(*Handoff)
	return h
}

func (h *Handoff) add(s *Slots, member string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, Held{s, member})
}

// Take returns the slots released so far, and forgets them.
func (h *Handoff) Take() []Held {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.held
	h.held = nil
	return held
}

// renew extends this process's leases, in use or parked, every RenewEvery
// until close.
func (s *Slots) renew() {
	t := time.NewTicker(RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), RenewEvery)
		s.renewOnce(ctx) // a miss is retried at the next tick
		cancel()
	}
}

// renewOnce extends this process's leases by Lease from now.
func (s *Slots) renewOnce(ctx context.Context) error {
	s.mu.Lock()
	args := []any{Lease.Milliseconds()}
	for m := range s.leases {
		args = append(args, m)
	}
	s.mu.Unlock()
	if len(args) == 1 {
		return nil
	}
	return renewScript.Run(ctx, s.rdb, []string{s.key}, args...).Err()
}

// Close stops the renewals and releases the parked slots, in one round
// trip. A slot parked later is released at once.
func (s *Slots) Close() {
	if s.stop == nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	var members []string
	for _, p := range s.parked {
		p.gone = true
		p.timer.Stop()
		members = append(members, p.member)
	}
	s.parked = nil
	s.mu.Unlock()
	s.releaseNow(context.Background(), members)
}

// Pipelined sends write's commands and the parking or release of held
// (ParkIn) in one pipeline, and returns the first error of write's.
func Pipelined(ctx context.Context, rdb redis.UniversalClient, held []Held, write func(redis.Pipeliner)) error {
	var sent func([]redis.Cmder, error) error
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		write(p)
		sent = ParkIn(ctx, p, held)
		return nil
	})
	return sent(cmds, err)
}

// ReleaseAll releases held, each in a round trip of its own.
func ReleaseAll(ctx context.Context, held []Held) {
	for _, h := range held {
		h.s.releaseNow(ctx, []string{h.member})
	}
}

// Scripts are the scripts of the slots, for tests that load them first
// and count their runs by hash: acquire and renew.
func Scripts() (acquire, renew *redis.Script) { return acquireScript, renewScript }
