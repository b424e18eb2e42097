package stripeq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

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
// failure, in one MULTI: one Redis round trip per execution. A handler's
// panic is turned into its error here, so that it too is kept.
// historyTTL is how long a completed task's history is kept: its
// retention (TASK_RETENTION).
func keepFailures(store *failures.Store, log *slog.Logger, historyTTL time.Duration) asynq.MiddlewareFunc {
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
				if cerr := store.Complete(sctx, queue, id, a, result, resolve, historyTTL); cerr != nil {
					taskLogger(ctx, log, t).WarnContext(ctx, "completed, but its outcome and attempt were not recorded", logging.Err(cerr))
				}
				return nil
			case !isFailure(err):
				return err
			}
			a.Error = err.Error()
			if retried < maxRetry && !errors.Is(err, ErrPermanent) {
				if aerr := store.AddAttempt(sctx, queue, id, a); aerr != nil {
					taskLogger(ctx, log, t).WarnContext(ctx, "attempt's error not recorded", logging.Err(aerr))
				}
				return err
			}
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
