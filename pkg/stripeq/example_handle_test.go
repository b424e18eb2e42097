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

// A handler gets the event's metadata and data.object decoded into the
// stripe-go type. Worker.ProcessTask runs one task as the worker would,
// which is how a handler is tested; a program calls Run instead.
func ExampleHandle() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		fmt.Println(e.ID, e.Type, e.Created.Format("2006-01-02"), e.Livemode)
		fmt.Println(e.Object.Customer.ID, e.Object.AmountPaid, e.Object.Currency)
		return nil
	})

	// The task the api stores for a signed delivery of this event.
	task, _, err := stripetask.New(stripetest.Fixture("invoice.paid"), stripetask.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.ProcessTask(context.Background(), task))
	// Output:
	// evt_stripeq_invoice_paid invoice.paid 2026-01-01 false
	// cus_stripeq_demo 2000 usd
	// <nil>
}

// A struct of your own decodes only the fields you read; ExpandableID
// reads an expandable field sent as an ID or as an expanded object.
func ExampleExpandableID() {
	type invoice struct {
		ID       string               `json:"id"`
		Customer stripeq.ExpandableID `json:"customer"`
	}
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[invoice]) error {
		fmt.Println(e.Object.ID, e.Object.Customer)
		return nil
	})
	expanded := stripetest.Edit(stripetest.Fixture("invoice.paid"), func(e map[string]any) {
		stripetest.Object(e)["customer"] = map[string]any{"id": "cus_stripeq_demo", "object": "customer"}
	})
	for _, body := range [][]byte{stripetest.Fixture("invoice.paid"), expanded} {
		task, _, _ := stripetask.New(body, stripetask.Options{})
		if err := w.ProcessTask(context.Background(), task); err != nil {
			panic(err)
		}
	}
	// Output:
	// in_stripeq_demo cus_stripeq_demo
	// in_stripeq_demo cus_stripeq_demo
}
