package builtin_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
)

// A program keeps the built-in handlers and adds its own for the same
// type: the built-in one marks the customer delinquent, then the program's
// sends one dunning email per invoice (OnceFor), however many of the
// invoice's attempts fail.
func ExampleRegister() {
	mr, err := miniredis.Run() // a Redis for the example; yours in a program
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	w, err := stripeq.NewWorker(stripeq.Config{
		RedisURL: "redis://" + mr.Addr(), GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	builtin.Register(w, builtin.Options{})
	stripeq.Handle(w, "invoice.payment_failed", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		return stripeq.OnceFor(ctx, w.Redis(), e.Object.ID, "dunning_email", func(ctx context.Context) error {
			e.SetOutcome("dunning email for " + e.Object.ID)
			return w.Redis().RPush(ctx, "myapp:dunning", e.Object.ID).Err()
		})
	}, stripeq.Name("dunning"))
	fmt.Println(len(w.Handled()), "types handled")

	res, err := stripeqtest.Run(context.Background(), w, stripeqtest.Fixture("invoice.payment_failed"))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Next)
	for _, h := range res.Outcome.Handlers {
		fmt.Println(h.Name+":", h.Outcome().Line())
	}
	fmt.Println(w.Redis().HGet(context.Background(), records.CustomerKey("cus_stripeq_demo"), "delinquent").Val())
	// Output:
	// 22 types handled
	// complete
	// builtin: payment_failed queued: no SMTP_URL: in the notifications stream only; 2 records updated
	// dunning: dunning email for in_stripeq_demo
	// true
}
