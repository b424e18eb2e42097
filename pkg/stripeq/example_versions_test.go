package stripeq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// Since 2025-03-31.basil an invoice names its subscription under
// parent, where stripe-go v76's Invoice does not look: InvoiceSubscription
// reads it wherever the event's API version puts it.
func ExampleInvoiceSubscription() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		sub, err := stripeq.InvoiceSubscription(e)
		fmt.Printf("%s: stripe-go reads %q, InvoiceSubscription %q (%v)\n", e.APIVersion, subscriptionID(e.Object), sub, err)
		return nil
	})
	for _, version := range []string{stripetest.APIVersion20231016, stripetest.APIVersionDahlia} {
		task, _, _ := stripetask.New(stripetest.FixtureAt(version, "invoice.paid"), stripetask.Options{})
		if err := w.ProcessTask(context.Background(), task); err != nil {
			panic(err)
		}
	}
	// Output:
	// 2023-10-16: stripe-go reads "sub_stripeq_demo", InvoiceSubscription "sub_stripeq_demo" (<nil>)
	// 2026-08-26.dahlia: stripe-go reads "", InvoiceSubscription "sub_stripeq_demo" (<nil>)
}

func subscriptionID(in *stripe.Invoice) string {
	if in.Subscription == nil {
		return ""
	}
	return in.Subscription.ID
}

// A handler declared for the versions it reads never gets an event at
// another: its task is archived at once, with the reason, to re-run from
// the Console once the handler reads that version.
func ExampleAPIVersions() {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	stripeq.Handle(w, "customer.subscription.created", func(ctx context.Context, e *stripeq.Event[stripe.Subscription]) error {
		fmt.Println("period ends", e.Object.CurrentPeriodEnd)
		return nil
	}, stripeq.APIVersions("2023-10-16"))
	for _, version := range []string{stripetest.APIVersion20231016, stripetest.APIVersionDahlia} {
		task, _, _ := stripetask.New(stripetest.FixtureAt(version, "customer.subscription.created"), stripetask.Options{})
		err := w.ProcessTask(context.Background(), task)
		fmt.Println(version, errors.Is(err, stripeq.ErrAPIVersion), errors.Is(err, stripeq.ErrPermanent))
	}
	// Output:
	// period ends 1769904120
	// 2023-10-16 false false
	// 2026-08-26.dahlia true true
}
