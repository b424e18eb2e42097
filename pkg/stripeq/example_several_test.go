package stripeq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
)

// An event type may have several handlers, such as the built-ins and your
// own: they run in the order registered, each with its own outcome, and
// each one's part shows in the execution's outcome. When one fails, the
// retries run only the handlers that did not succeed.
func ExampleName() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.payment_failed", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		e.RecordChanged("myapp:account:{"+e.Customer+"}", true, "")
		return nil
	}, stripeq.Name("accounts"))
	stripeq.Handle(w, "invoice.payment_failed", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		return errors.New("the mail server is down")
	}, stripeq.Name("dunning"))

	res, err := stripeqtest.Run(context.Background(), w, stripeqtest.Fixture("invoice.payment_failed"))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Next, res.Err)
	for _, h := range res.Outcome.Handlers {
		fmt.Printf("%s %s %q\n", h.Name, h.Status, h.Error)
	}
	// Output:
	// retry handlers failed: dunning: the mail server is down
	// accounts done ""
	// dunning failed "the mail server is down"
}
