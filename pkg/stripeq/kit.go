package stripeq

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq/internal/execution"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/kit"
)

func init() { kit.Run = runForKit }

// runForKit is kit.Run: the test kit's view of one first attempt.
func runForKit(ctx context.Context, worker any, t *asynq.Task) kit.Result {
	w := worker.(*Worker)
	ctx, exec := execution.With(ctx)
	err := w.ProcessTask(ctx, t)
	r := kit.Result{Outcome: exec.Get(), Err: err}
	switch {
	case err == nil:
		r.Next = kit.Complete
	case !isFailure(err):
		r.Next, r.After = kit.Wait, retryDelay(w.cfg.RetryBaseDelay)(0, err, t)
	case errors.Is(err, ErrPermanent):
		r.Next = kit.Archive
	default:
		r.Next, r.After = kit.Retry, retryDelay(w.cfg.RetryBaseDelay)(0, err, t)
	}
	return r
}
