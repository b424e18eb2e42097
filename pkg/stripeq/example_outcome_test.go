package stripeq_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// A handler notes what it did: the records it wrote or left alone, each
// notification sent or skipped and why. When it returns nil the worker
// keeps that Outcome as the task's result, which the Console lists in one
// line and shows whole, so that an operator can tell why no email went out.
func ExampleMeta_Notified() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.payment_failed", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		e.RecordChanged("myapp:account:{"+e.Customer+"}", true, "")
		e.Notified(stripeq.Notice{Kind: "dunning", Customer: e.Customer, Status: stripeq.NoticeSkipped, Reason: "the customer opted out"})
		fmt.Println(e.Outcome().Line())
		return nil
	})
	task, _, _ := stripetask.New(stripetest.Fixture("invoice.payment_failed"), stripetask.Options{})
	if err := w.ProcessTask(context.Background(), task); err != nil {
		panic(err)
	}
	// Output:
	// dunning skipped: the customer opted out; 1 record updated
}
