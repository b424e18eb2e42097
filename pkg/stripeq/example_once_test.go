package stripeq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// A welcome email goes out once per event, however often the event is
// delivered, retried or re-run from the Console (a re-run has its own
// task ID but the same event ID).
func ExampleOnce() {
	rdb, stop := exampleRedis() // a Redis for the example; w.Redis() in a program
	defer stop()
	ctx := context.Background()

	for _, taskID := range []string{"evt_1", "evt_1", "evt_1:rerun:1"} {
		e := stripeq.Meta{ID: "evt_1", TaskID: taskID, Created: time.Unix(1767225600, 0)}
		err := stripeq.Once(ctx, rdb, e, "welcome_email", func(ctx context.Context) error {
			fmt.Println("email sent by", taskID)
			return nil
		})
		fmt.Println(taskID, "->", err)
	}
	// Output:
	// email sent by evt_1
	// evt_1 -> <nil>
	// evt_1 -> <nil>
	// evt_1:rerun:1 -> <nil>
}

// Stripe sends one invoice.payment_failed per failed attempt at an
// invoice, each a new event. Keyed by the invoice, a dunning email goes
// out once per invoice, however many attempts fail.
func ExampleOnceFor() {
	rdb, stop := exampleRedis() // a Redis for the example; w.Redis() in a program
	defer stop()
	ctx := context.Background()

	for _, event := range []string{"evt_attempt_1", "evt_attempt_2", "evt_attempt_3"} {
		err := stripeq.OnceFor(ctx, rdb, "in_1", "dunning_email", func(ctx context.Context) error {
			fmt.Println("dunning email for in_1, from", event)
			return nil
		})
		fmt.Println(event, "->", err)
	}
	// Output:
	// dunning email for in_1, from evt_attempt_1
	// evt_attempt_1 -> <nil>
	// evt_attempt_2 -> <nil>
	// evt_attempt_3 -> <nil>
}
