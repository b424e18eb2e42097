package stripeq

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// retryPadding is added to a Retry-After: asynq stores retry times in whole
// seconds, so a retry may otherwise fire up to a second early.
const retryPadding = time.Second

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
		var rl *RateLimitError
		switch {
		case errors.As(err, &rl):
			return rl.After + retryPadding
		case errors.Is(err, errNoSlot), errors.Is(err, ErrInProgress):
			return time.Second + rand.N(time.Second)
		case errors.Is(err, errNotKept):
			return 5*time.Second + rand.N(5*time.Second)
		}
		d := base << min(n, 20)
		return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
	}
}

// isFailure tells asynq which errors count against a task's retries: not a
// rate limit, not a wait for a global concurrency slot, not a wait for
// another execution's claim in Once, and not a final failure the failure
// store could not keep.
func isFailure(err error) bool {
	var rl *RateLimitError
	return !errors.As(err, &rl) && !errors.Is(err, errNoSlot) && !errors.Is(err, ErrInProgress) && !errors.Is(err, errNotKept)
}
