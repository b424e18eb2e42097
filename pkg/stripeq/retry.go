package stripeq

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq/internal/attempts"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/backoff"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
)

// retryDelay returns the retry policy. A Stripe 429 waits for its
// Retry-After (plus padding); a task that found no global concurrency slot,
// or whose side effect another execution is doing ([Once]), waits a second
// or two; any other failure backs off exponentially: base·2ⁿ after the
// n-th retry (n from 0), ±20% jitter so that a burst of failures
// does not retry in lockstep. With the default base of 30 s and MaxRetry 7
// the retries come about 30s, 1m, 2m, 4m, 8m, 16m and 32m apart: about 64
// minutes from the first failure to the archive.
func retryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		if d, ok := shownWait(err); ok {
			return d
		}
		switch {
		case errors.Is(err, slots.ErrNoSlot), errors.Is(err, ErrInProgress):
			return backoff.Turn()
		case errors.Is(err, attempts.ErrNotKept):
			return 5*time.Second + rand.N(5*time.Second)
		}
		return backoff.Exponential(base, n)
	}
}

// shownWait returns how long err asks to wait when it is a wait the
// attempt history shows: a rate limit, its Retry-After plus padding.
func shownWait(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.After + backoff.Padding, true
	}
	return 0, false
}

// isFailure tells asynq which errors count against a task's retries: not a
// rate limit, not a wait for a global concurrency slot, not a wait for
// another execution's claim in Once, and not a final failure the failure
// store could not keep.
func isFailure(err error) bool {
	var rl *RateLimitError
	return !errors.As(err, &rl) && !errors.Is(err, slots.ErrNoSlot) && !errors.Is(err, ErrInProgress) && !errors.Is(err, attempts.ErrNotKept)
}
