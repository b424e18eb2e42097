package stripeq_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// A handler gets the event's metadata and data.object decoded into the
// stripe-go type. The test kit, stripeqtest, runs an event through a
// worker's handlers as the worker would, which is how a handler is tested;
// a program calls Run instead.
func ExampleHandle() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		fmt.Println(e.ID, e.Type, e.Created.Format("2006-01-02"), e.Livemode)
		fmt.Println(e.Object.Customer.ID, e.Object.AmountPaid, e.Object.Currency)
		return nil
	})
	res, err := stripeqtest.Run(context.Background(), w, stripeqtest.Fixture("invoice.paid"))
	fmt.Println(res.Next, res.Err, err)
	// Output:
	// evt_stripeq_invoice_paid invoice.paid 2026-01-01 false
	// cus_stripeq_demo 2000 usd
	// complete <nil> <nil>
}

// A struct of your own decodes only the fields you read; ExpandableID
// reads an expandable field sent as an ID or as an expanded object.
func ExampleExpandableID() {
	type invoice struct {
		ID       string               `json:"id"`
		Customer stripeq.ExpandableID `json:"customer"`
	}
	h := func(ctx context.Context, e *stripeq.Event[invoice]) error {
		fmt.Println(e.Object.ID, e.Object.Customer)
		return nil
	}
	expanded := stripetest.Edit(stripeqtest.Fixture("invoice.paid"), func(e map[string]any) {
		stripetest.Object(e)["customer"] = map[string]any{"id": "cus_stripeq_demo", "object": "customer"}
	})
	for _, body := range [][]byte{stripeqtest.Fixture("invoice.paid"), expanded} {
		if _, err := stripeqtest.Handle(context.Background(), h, body); err != nil {
			panic(err)
		}
	}
	// Output:
	// in_stripeq_demo cus_stripeq_demo
	// in_stripeq_demo cus_stripeq_demo
}
