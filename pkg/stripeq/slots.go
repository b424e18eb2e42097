package stripeq

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/rate"
)

// errNoSlot means every global concurrency slot stayed taken while the task
// waited. The task is retried soon without counting as a failure.
var errNoSlot = errors.New("no global concurrency slot free")

// slotWait is how long a task waits for a global slot inside its handler
// before it gives its local slot back and is retried. Waiting here, polling
// with a short jittered backoff, takes a freed slot within milliseconds; a
// retry through asynq would take a second or more.
const slotWait = 3 * time.Second

// slots limits how many handlers run at once across every worker process
// (GLOBAL_CONCURRENCY), with asynq's Redis-backed counting semaphore. A
// slot is tied to the task ID and expires at the handler's deadline, so a
// killed worker's slot frees itself.
type slots struct {
	sema *rate.Semaphore // nil when the limit is off
}

// newSlots returns a limit of n handlers at once; 0 turns it off. queue
// is QUEUE_NAME, also when it is sharded: one limit holds over every shard.
func newSlots(redis asynq.RedisConnOpt, queue string, n int) slots {
	if n == 0 {
		return slots{}
	}
	return slots{sema: rate.NewSemaphore(redis, "stripeq:"+queue, n)}
}

// acquire takes a slot for the task in ctx, waiting up to slotWait. ctx
// must carry the task ID and a deadline, as asynq's handler contexts do.
// It returns a release function, or errNoSlot.
//
// A task run outside the server (Worker.ProcessTask in a test) has no task
// ID and takes no slot.
func (s slots) acquire(ctx context.Context) (release func(), err error) {
	if _, ok := asynq.GetTaskID(ctx); s.sema == nil || !ok {
		return func() {}, nil
	}
	deadline := time.Now().Add(slotWait)
	pause := 5 * time.Millisecond
	for {
		ok, err := s.sema.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				// A fresh context: the task's may have ended. The slot may
				// already have expired with the deadline; nothing to do then.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				s.sema.Release(ctx)
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, errNoSlot
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause/2 + rand.N(pause)):
		}
		pause = min(pause*2, 20*time.Millisecond)
	}
}

func (s slots) close() {
	if s.sema != nil {
		s.sema.Close()
	}
}
