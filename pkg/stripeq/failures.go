package stripeq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// errNotKept means a task failed for good but its failure could not be
// written to the failure store: it is retried without counting instead of
// archived, so that asynq's archive never holds a failure the store lacks.
var errNotKept = errors.New("failure not kept: the failure store did not answer")

// keepFailures is the middleware that writes every attempt to the task's
// attempt history (pkg/failures: start, duration, worker, error, outcome),
// and every failure asynq is about to archive to the failure store, before
// asynq sees the error. An attempt that succeeds is written with the
// handler's Outcome as the task's result, and the resolution of a kept
// failure, in one pipeline (failures.Store.CompleteIn) that also releases
// the task's global concurrency slot, or parks it for the process's next
// handler (slots.go): one Redis round trip per execution; a failed attempt
// with retries left is written, and its slot released or parked, the
// same way. (The slot of a task archived or waiting is released in a
// round trip of its own.) A handler's panic is turned into its error here,
// so that it too is kept. historyTTL is how long a completed task's
// attempt list is kept: its retention (TASK_RETENTION).
//
// Without the middleware (Worker.ProcessTask, outside the server) the
// handler releases its slot itself.
func keepFailures(store *failures.Store, rdb redis.UniversalClient, log *slog.Logger, historyTTL time.Duration) asynq.MiddlewareFunc {
	return func(h asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			id, ok := asynq.GetTaskID(ctx)
			if !ok || store == nil {
				return h.ProcessTask(ctx, t) // outside the server (Worker.ProcessTask)
			}
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			ctx, out := withOutcome(ctx)
			ctx, slots := withHandoff(ctx)
			start := time.Now()
			func() {
				defer func() {
					if x := recover(); x != nil {
						err = fmt.Errorf("panic in handler: %v", x)
					}
				}()
				err = h.ProcessTask(ctx, t)
			}()
			end := time.Now()
			held := slots.take() // released by the handler when it returned, even by a panic
			o := out.get()
			a := failures.Attempt{At: end.UTC(), Start: start.UTC(), MS: end.Sub(start).Milliseconds(), Retry: retried, Worker: workerName}
			if o.Summary != "" || o.Fetched || len(o.Records) > 0 || len(o.Notices) > 0 {
				a.Outcome = o.Line()
			}
			// The store's writes must not be cut short by the handler's
			// deadline or a shutdown.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			switch {
			case err == nil:
				var result []byte // nil: a handler that noted nothing keeps any result it wrote itself
				if a.Outcome != "" {
					result, _ = json.Marshal(o)
				}
				resolve := retried > 0 || t.Headers()[stripetask.HeaderRerunOf] != ""
				cerr := withSlots(sctx, rdb, held, func(p redis.Pipeliner) {
					store.CompleteIn(sctx, p, queue, id, a, result, resolve, historyTTL)
				})
				if cerr != nil {
					taskLogger(ctx, log, t).WarnContext(ctx, "completed, but its outcome and attempt were not recorded", logging.Err(cerr))
				}
				return nil
			case !isFailure(err):
				releaseSlots(sctx, held)
				return err
			}
			a.Error = err.Error()
			if retried < maxRetry && !errors.Is(err, ErrPermanent) {
				aerr := withSlots(sctx, rdb, held, func(p redis.Pipeliner) { store.AddAttemptIn(sctx, p, queue, id, a) })
				if aerr != nil {
					taskLogger(ctx, log, t).WarnContext(ctx, "attempt's error not recorded", logging.Err(aerr))
				}
				return err
			}
			releaseSlots(sctx, held)
			r := failures.Record{
				ID: id, Queue: queue, TaskType: t.Type(), Payload: t.Payload(), Headers: t.Headers(),
				FailedAt: a.At, Retried: retried, MaxRetry: maxRetry, Err: err.Error(),
			}
			if kerr := store.Keep(sctx, r, a); kerr != nil {
				return fmt.Errorf("%w: %v (handler: %v)", errNotKept, kerr, err)
			}
			return err
		})
	}
}

// withSlots sends write's commands and the parking or release of held
// (parkIn) in one pipeline, and returns the first error of write's.
func withSlots(ctx context.Context, rdb redis.UniversalClient, held []slotHeld, write func(redis.Pipeliner)) error {
	var sent func([]redis.Cmder, error) error
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		write(p)
		sent = parkIn(ctx, p, held)
		return nil
	})
	return sent(cmds, err)
}

// releaseSlots releases held, each in a round trip of its own.
func releaseSlots(ctx context.Context, held []slotHeld) {
	for _, h := range held {
		h.s.releaseNow(ctx, []string{h.member})
	}
}
