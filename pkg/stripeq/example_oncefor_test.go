package stripeq_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// Stripe sends one invoice.payment_failed per failed attempt at an
// invoice, each a new event. Keyed by the invoice, a dunning email goes
// out once per invoice, however many attempts fail.
func ExampleOnceFor() {
	mr, err := miniredis.Run() // a Redis for the example; yours in a program
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
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
