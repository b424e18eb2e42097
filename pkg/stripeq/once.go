package stripeq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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

// OnceKey is the Redis key [Once] keeps for the event eventID and kind:
// "stripeq:once:{<event ID>}:<kind>". It holds "done", or the claim of a
// running execution, expiring.
func OnceKey(eventID, kind string) string { return keyspace.Once(eventID, kind) }

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
// re-run from the Console, and when two executions run at once.
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
	key := OnceKey(m.ID, kind)
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
		if m.Log != nil {
			m.Log.DebugContext(ctx, "done before; skipped", "once", kind)
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
