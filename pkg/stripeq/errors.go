package stripeq

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
)

// Errors that change what the worker does with a task. Each reads well
// with the package name: stripeq.ErrPermanent.
var (
	// ErrPermanent, wrapped by a handler's error, archives the task at once:
	// no retry can fix it (an object that cannot be processed, a 404 from
	// Stripe). It is asynq.SkipRetry, so errors.Is(err, asynq.SkipRetry)
	// holds too. Operators re-run archived tasks from the Console once the
	// cause is fixed. See [Permanent].
	ErrPermanent = asynq.SkipRetry

	// ErrInProgress is returned by [Once] while another execution holds the
	// claim on the same (event, kind): the task is retried in a second or
	// two without using up a retry.
	ErrInProgress = errors.New("stripeq: the same side effect is in progress in another execution")
)

// Permanent returns err marked permanent: the task is archived at once,
// with err as its last error. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// RateLimitError asks for a retry after a delay that does not use up one
// of the task's retries, as a 429's Retry-After. [ClassifyStripe] returns
// one for a Stripe 429; return your own for another API's.
type RateLimitError struct {
	// After is how long to wait; the worker adds a second of padding,
	// because asynq stores retry times in whole seconds.
	After time.Duration
	// Err is the cause.
	Err error
}

// Error says how long the task waits, and why.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited; retry after %v: %v", e.After, e.Err)
}

// Unwrap returns Err.
func (e *RateLimitError) Unwrap() error { return e.Err }

// rateLimited turns a Stripe 429 that a handler returned unclassified into
// a RateLimitError, and returns any other error as it is.
func rateLimited(err error) error {
	var rl *RateLimitError
	var se *stripe.Error
	if errors.As(err, &rl) || !errors.As(err, &se) || se.HTTPStatusCode != http.StatusTooManyRequests {
		return err
	}
	after := defaultRetryAfter
	if se.LastResponse != nil {
		if s, err := strconv.Atoi(se.LastResponse.Header.Get("Retry-After")); err == nil && s >= 0 {
			after = time.Duration(s) * time.Second
		}
	}
	return &RateLimitError{After: after, Err: err}
}

// defaultRetryAfter is the wait after a Stripe 429 that has no Retry-After.
const defaultRetryAfter = 5 * time.Second

// ClassifyStripe turns an error of a stripe-go call into what the worker
// should do with the task, wrapped with what (e.g. "retrieve charge
// ch_1"): a 429 waits for its Retry-After (5 s when absent) without using
// up a retry ([RateLimitError]); any other 4xx, which no retry can fix, is
// permanent ([ErrPermanent]); a 5xx or network error is retried with
// backoff. A handler needs it only for the 4xx: a 429 it returns as is is
// recognised anyway.
func ClassifyStripe(what string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch code := se.HTTPStatusCode; {
	case code == http.StatusTooManyRequests:
		return rateLimited(fmt.Errorf("%s: %w", what, err))
	case code >= 400 && code < 500:
		return fmt.Errorf("%w: %s: Stripe answered %d: %w", ErrPermanent, what, code, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
