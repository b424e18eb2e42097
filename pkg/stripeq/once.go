package stripeq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// OnceTTL is how long [Once] remembers that a side effect was done: 100
// days, longer than asynq keeps an archived task (90 days), so a re-run of
// any execution the Console still holds does not do it again.
const OnceTTL = 100 * 24 * time.Hour

// onceLease is the claim's lifetime when ctx has no deadline. In a
// handler, ctx ends at HANDLER_TIMEOUT, and the claim a little after.
const (
	onceLease       = time.Minute
	onceLeaseMargin = 5 * time.Second
)

// onceClaim claims KEYS[1] for ARGV[1] for ARGV[2] ms, unless it is done
// or claimed.
var onceClaim = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'done' then return 'done' end
if v then return 'busy' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'claimed'
`)

// onceRelease drops the claim KEYS[1] if it is still ARGV[1]'s.
var onceRelease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// Once runs do for the event m and the side effect kind (e.g.
// "welcome_email", "grant_access") unless it was done before: once per
// (event ID, kind) however often the event is delivered, retried or
// re-run from the Console, and when two executions run at once. It is
// [OnceFor] with m.ID as the key.
//
// It is at-least-once, never at-most-once, because a missed grant or
// email is worse than a second one: Once claims the side effect with a
// lease that ends a little after the handler's timeout, runs do, and marks
// it done (for [OnceTTL]) only after do succeeds.
//   - do fails: the claim is dropped and Once returns do's error, so the
//     task retries and do runs again.
//   - another execution holds the claim: Once returns [ErrInProgress]
//     without calling do; the task retries in a second or two, without
//     using up a retry, and then finds it done, or (if the other crashed)
//     claims it when the lease has expired.
//   - the process dies, or the handler times out, after the side effect
//     but before it is marked done: do runs again after the lease. Give
//     the side effect its own idempotency where the other side offers one
//     (Stripe's Idempotency-Key, an email's Message-ID, a unique key in
//     your database), derived from m.ID and kind.
//
// Once returns nil when do was done before. It returns a permanent error
// for an empty m.ID or kind, and Redis's errors.
func Once(ctx context.Context, rdb redis.Cmdable, m Meta, kind string, do func(ctx context.Context) error) error {
	if m.ID == "" || kind == "" {
		return Permanent(errors.New("stripeq: Once needs the event's ID and a kind"))
	}
	return once(ctx, rdb, m.Log, m.ID, kind, do)
}

// OnceFor is [Once] keyed by a key of your own instead of the event ID:
// do runs once per (key, kind), whichever event asks. Stripe sends one
// invoice.payment_failed per failed attempt at an invoice, each a new
// event; OnceFor(ctx, rdb, invoice.ID, "dunning_email", do) sends one
// dunning email per invoice however many of them come. key is any stable
// string (an object ID, "in_1:attempt:2"); Once(ctx, rdb, m, kind, do) is
// OnceFor(ctx, rdb, m.ID, kind, do). It keeps
// "stripeq:once:{<key>}:<kind>" for [OnceTTL], claims and marks it as
// Once does, and returns a permanent error for an empty key or kind.
func OnceFor(ctx context.Context, rdb redis.Cmdable, key, kind string, do func(ctx context.Context) error) error {
	if key == "" || kind == "" {
		return Permanent(errors.New("stripeq: OnceFor needs a key and a kind"))
	}
	return once(ctx, rdb, nil, key, kind, do)
}

// once runs do once per (key, kind); log, when not nil, notes a side
// effect done before.
func once(ctx context.Context, rdb redis.Cmdable, log *slog.Logger, onceKey, kind string, do func(ctx context.Context) error) error {
	key := keyspace.Once(onceKey, kind)
	lease := onceLease
	if deadline, ok := ctx.Deadline(); ok {
		lease = time.Until(deadline) + onceLeaseMargin
	}
	token := rand.Text()
	state, err := onceClaim.Run(ctx, rdb, []string{key}, token, lease.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("claim %s: %w", key, err)
	}
	switch state {
	case "done":
		if log != nil {
			log.DebugContext(ctx, "done before; skipped", "once", kind)
		}
		return nil
	case "busy":
		return fmt.Errorf("%s: %w", kind, ErrInProgress)
	}
	if err := do(ctx); err != nil {
		// A fresh context: the task's may have ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		onceRelease.Run(rctx, rdb, []string{key}, token)
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := rdb.Set(rctx, key, "done", OnceTTL).Err(); err != nil {
		return fmt.Errorf("mark %s done: %w", key, err)
	}
	return nil
}
