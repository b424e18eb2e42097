package stripeq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
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

// What the worker does with each kind of error, as the test kit tells it.
func ExampleRateLimitError() {
	for _, err := range []error{
		nil,
		errors.New("the CRM is down"),
		&stripeq.RateLimitError{After: 30 * time.Second, Err: errors.New("the CRM answered 429")},
		stripeq.Permanent(errors.New("unknown plan")),
	} {
		res, _ := stripeqtest.Handle(context.Background(), func(context.Context, *stripeq.Event[struct{}]) error { return err },
			stripeqtest.Fixture("invoice.paid"))
		fmt.Println(res.Next, res.After > 0, res.Err)
	}
	// Output:
	// complete false <nil>
	// retry true the CRM is down
	// wait true rate limited; retry after 30s: the CRM answered 429
	// archive false skip retry for the task: unknown plan
}
