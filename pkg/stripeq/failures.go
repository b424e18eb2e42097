package stripeq

import (
	"context"
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

// keepFailures is the middleware that writes every failed attempt's error,
// and every failure asynq is about to archive, to the failure store
// (pkg/failures) before asynq sees the error. A task that completes after
// a failure has its record resolved. A handler's panic is turned into its
// error here, so that it too is kept.
func keepFailures(store *failures.Store, log *slog.Logger) asynq.MiddlewareFunc {
	return func(h asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			id, ok := asynq.GetTaskID(ctx)
			if !ok || store == nil {
				return h.ProcessTask(ctx, t) // outside the server (Worker.ProcessTask)
			}
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			func() {
				defer func() {
					if x := recover(); x != nil {
						err = fmt.Errorf("panic in handler: %v", x)
					}
				}()
				err = h.ProcessTask(ctx, t)
			}()
			// The store's writes must not be cut short by the handler's
			// deadline or a shutdown.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			switch {
			case err == nil:
				if retried > 0 || t.Headers()[stripetask.HeaderRerunOf] != "" {
					if rerr := store.Resolve(sctx, queue, id); rerr != nil {
						taskLogger(ctx, log, t).WarnContext(ctx, "completed, but its kept failure was not resolved", logging.Err(rerr))
					}
				}
				return nil
			case !isFailure(err):
				return err
			}
			a := failures.Attempt{At: time.Now().UTC(), Retry: retried, Error: err.Error()}
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
