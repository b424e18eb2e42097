package stripeq_test

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
)

// A handler notes what it did: the records it wrote or left alone, each
// notification sent or skipped and why. When it returns nil the worker
// keeps that Outcome as the task's result, which the Console lists in one
// line and shows whole, so that an operator can tell why no email went out.
func ExampleMeta_Notified() {
	h := func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		e.RecordChanged("myapp:account:{"+e.Customer+"}", true, "")
		e.Notified(stripeq.Notice{Kind: "dunning", Customer: e.Customer, Status: stripeq.NoticeSkipped, Reason: "the customer opted out"})
		return nil
	}
	res, err := stripeqtest.Handle(context.Background(), h, stripeqtest.Fixture("invoice.payment_failed"))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Next, res.Outcome.Line())
	// Output:
	// complete dunning skipped: the customer opted out; 1 record updated
}
