// Package backoff is how long the worker waits before it runs a task
// again. Part of pkg/stripeq's engine: internal, no compatibility promise.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Padding is added to a Retry-After: asynq stores retry times in whole
// seconds, so a retry may otherwise fire up to a second early.
const Padding = time.Second

// Exponential is the delay before the retry that follows n retries (n from
// 0): base·2ⁿ, ±20% jitter so that a burst of failures does not retry in
// lockstep. With a base of 30 s and 7 retries they come about 30s, 1m, 2m,
// 4m, 8m, 16m and 32m apart: about 64 minutes from the first failure to
// the archive.
func Exponential(base time.Duration, n int) time.Duration {
	d := base << min(n, 20)
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// Turn is the wait of a task whose turn has not come (a global slot, a
// claim of Once, an earlier delivery): 1 to 2 s.
func Turn() time.Duration { return time.Second + rand.N(time.Second) }
