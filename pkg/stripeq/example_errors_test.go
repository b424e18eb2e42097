package stripeq_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// A handler's error decides what happens to the task: Permanent archives
// it at once, a RateLimitError waits without using up a retry, and any
// other error retries with backoff.
func ExamplePermanent() {
	errUnknownPlan := errors.New("unknown plan")
	err := stripeq.Permanent(fmt.Errorf("price_123: %w", errUnknownPlan))
	fmt.Println(err)
	fmt.Println(errors.Is(err, stripeq.ErrPermanent), errors.Is(err, asynq.SkipRetry), errors.Is(err, errUnknownPlan))

	var rl *stripeq.RateLimitError
	err = fmt.Errorf("sync to CRM: %w", &stripeq.RateLimitError{After: 30 * time.Second, Err: errors.New("HTTP 429")})
	fmt.Println(errors.As(err, &rl), rl.After)
	// Output:
	// skip retry for the task: price_123: unknown plan
	// true true true
	// true 30s
}
