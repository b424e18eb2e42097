package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// job is one Stripe event to handle.
type job struct {
	event eventHead           // of Stripe's own copy when refetched
	meta  stripetask.Metadata // from the task's headers
	log   *slog.Logger        // carries the task's ID, type, queue and retry count
}

// eventHead is what every handler reads of the event itself.
type eventHead struct {
	ID      string
	Created int64 // unix seconds
}

// eventHandler handles one Stripe event whose data.object decoded into an
// O: a small struct of the fields the handler reads. An error wrapping
// asynq.SkipRetry archives the task at once; any other error retries it.
// Handlers must be safe to run again for the same event: records ignore
// older events and notifications go out once.
type eventHandler[O any] func(ctx context.Context, j job, object *O) error

// worker holds the dependencies of every handler.
type worker struct {
	log      *slog.Logger
	records  records
	notifier notifier
	stripe   *stripeAPI // nil without STRIPE_SECRET_KEY
	slots    slots      // global concurrency
	timeout  time.Duration
	metrics  *metrics
}

// mux registers every handler, by Stripe event type, in one place. Every
// type in stripetask.Handled has its handler here; any other Stripe task
// (permitted in the api by STRIPE_EVENTS) is logged and completed.
func (w *worker) mux() *asynq.ServeMux {
	handlers := map[string]asynq.Handler{
		stripetask.CustomerCreated: adapt(w, w.handleCustomer),
		stripetask.CustomerUpdated: adapt(w, w.handleCustomer),
		stripetask.CustomerDeleted: adapt(w, w.handleCustomer),

		stripetask.SubscriptionCreated:      adapt(w, w.handleSubscription),
		stripetask.SubscriptionUpdated:      adapt(w, w.handleSubscription),
		stripetask.SubscriptionDeleted:      adapt(w, w.handleSubscription),
		stripetask.SubscriptionPaused:       adapt(w, w.handleSubscription),
		stripetask.SubscriptionResumed:      adapt(w, w.handleSubscription),
		stripetask.SubscriptionTrialWillEnd: adapt(w, w.handleSubscription),

		stripetask.InvoicePaymentFailed:       adapt(w, w.handleInvoice),
		stripetask.InvoicePaid:                adapt(w, w.handleInvoice),
		stripetask.InvoiceFinalized:           adapt(w, w.handleInvoice),
		stripetask.InvoiceUpcoming:            adapt(w, w.handleInvoice),
		stripetask.ChargeFailed:               adapt(w, w.handleChargeFailed),
		stripetask.PaymentIntentPaymentFailed: adapt(w, w.handlePaymentIntentFailed),

		stripetask.DisputeCreated:         adapt(w, w.handleDispute),
		stripetask.DisputeUpdated:         adapt(w, w.handleDispute),
		stripetask.DisputeClosed:          adapt(w, w.handleDispute),
		stripetask.DisputeFundsWithdrawn:  adapt(w, w.handleDispute),
		stripetask.DisputeFundsReinstated: adapt(w, w.handleDispute),

		stripetask.CheckoutSessionCompleted: adapt(w, w.handleCheckoutCompleted),
	}
	mux := asynq.NewServeMux()
	for _, t := range stripetask.Handled() {
		h, ok := handlers[t]
		if !ok {
			panic("worker: no handler for handled event type " + t)
		}
		mux.Handle(stripetask.TaskType(t), h)
	}
	if len(handlers) != len(stripetask.Handled()) {
		panic("worker: a handler is registered for a type missing from stripetask.Handled")
	}
	mux.Handle(stripetask.TypePrefix, adapt(w, w.handleUnhandled))
	return mux
}

// adapt turns an eventHandler into an asynq handler. It checks the task
// (archiving one that cannot be parsed), takes a global concurrency slot,
// replaces the payload by Stripe's copy when an API key is set, decodes
// the event once, with data.object into an O, and bounds the handler's
// time.
func adapt[O any](w *worker, h eventHandler[O]) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var e event[O]
		var m stripetask.Metadata
		var err error
		if w.stripe != nil {
			// Stripe's copy replaces the payload: only its shape is checked.
			var p event[skipped]
			m, err = parse(t, &p)
		} else {
			m, err = parse(t, &e)
		}
		if err != nil {
			return permanentErr(err)
		}
		ctx, cancel := context.WithTimeout(ctx, w.timeout)
		defer cancel()
		waitStart := time.Now()
		release, err := w.slots.acquire(ctx)
		w.metrics.slotWait.Observe(seconds(waitStart))
		if err != nil {
			if errors.Is(err, errNoSlot) {
				w.metrics.noSlot.Inc()
			}
			return err
		}
		defer release()
		start := time.Now()
		defer func() { w.metrics.duration.WithLabelValues(m.Type).Observe(seconds(start)) }()
		if w.stripe != nil {
			raw, err := w.stripe.event(ctx, m.ID, m.Account)
			if err != nil {
				return err
			}
			if err := decodeCopy(raw, m.Type, &e); err != nil {
				return err
			}
		}
		j := job{event: eventHead{ID: e.ID, Created: e.Created}, meta: m, log: taskLogger(ctx, w.log, t)}
		if err := h(ctx, j, e.Data.Object); err != nil {
			return err
		}
		w.metrics.handled.WithLabelValues(m.Type, "success").Inc()
		return nil
	})
}

// handleUnhandled completes an event of a type the worker has no work for.
func (w *worker) handleUnhandled(ctx context.Context, j job, _ *skipped) error {
	j.log.InfoContext(ctx, "no handler for this event type; completed")
	return nil
}

// permanent and permanentErr make a failure that archives the task at
// once, because no retry can fix it.
func permanent(msg string) error   { return permanentErr(errors.New(msg)) }
func permanentErr(err error) error { return fmt.Errorf("%w: %w", asynq.SkipRetry, err) }

// customerEmail queues on b, when needed is true, reading the email of the
// customer record. After b runs, the returned function gives known when it
// is set, else the customer record's email, else "".
func (w *worker) customerEmail(ctx context.Context, b *batch, customer, known string, needed bool) func() string {
	if !needed || known != "" || customer == "" {
		return func() string { return known }
	}
	email := b.get(ctx, customerKey(customer), "email")
	return email.Val
}
