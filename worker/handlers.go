package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// job is one Stripe event to handle.
type job struct {
	event stripe.Event        // fully decoded by stripe-go; Stripe's own copy when refetched
	meta  stripetask.Metadata // from the task's headers
	log   *slog.Logger        // carries the task's ID, type, queue and retry count
}

// eventHandler handles one Stripe event. An error wrapping asynq.SkipRetry
// archives the task at once; any other error retries it. Handlers must be
// safe to run again for the same event: records ignore older events and
// notifications go out once.
type eventHandler func(ctx context.Context, j job) error

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
	handlers := map[string]eventHandler{
		stripetask.CustomerCreated: w.handleCustomer,
		stripetask.CustomerUpdated: w.handleCustomer,
		stripetask.CustomerDeleted: w.handleCustomer,

		stripetask.SubscriptionCreated:      w.handleSubscription,
		stripetask.SubscriptionUpdated:      w.handleSubscription,
		stripetask.SubscriptionDeleted:      w.handleSubscription,
		stripetask.SubscriptionPaused:       w.handleSubscription,
		stripetask.SubscriptionResumed:      w.handleSubscription,
		stripetask.SubscriptionTrialWillEnd: w.handleSubscription,

		stripetask.InvoicePaymentFailed:       w.handleInvoice,
		stripetask.InvoicePaid:                w.handleInvoice,
		stripetask.InvoiceFinalized:           w.handleInvoice,
		stripetask.InvoiceUpcoming:            w.handleInvoice,
		stripetask.ChargeFailed:               w.handleChargeFailed,
		stripetask.PaymentIntentPaymentFailed: w.handlePaymentIntentFailed,

		stripetask.DisputeCreated:         w.handleDispute,
		stripetask.DisputeUpdated:         w.handleDispute,
		stripetask.DisputeClosed:          w.handleDispute,
		stripetask.DisputeFundsWithdrawn:  w.handleDispute,
		stripetask.DisputeFundsReinstated: w.handleDispute,

		stripetask.CheckoutSessionCompleted: w.handleCheckoutCompleted,
	}
	mux := asynq.NewServeMux()
	for _, t := range stripetask.Handled() {
		h, ok := handlers[t]
		if !ok {
			panic("worker: no handler for handled event type " + t)
		}
		mux.Handle(stripetask.TaskType(t), w.adapt(h))
	}
	if len(handlers) != len(stripetask.Handled()) {
		panic("worker: a handler is registered for a type missing from stripetask.Handled")
	}
	mux.Handle(stripetask.TypePrefix, w.adapt(w.handleUnhandled))
	return mux
}

// adapt turns an eventHandler into an asynq handler. It parses the task
// (archiving one that cannot be parsed), takes a global concurrency slot,
// replaces the payload by Stripe's copy when an API key is set, and bounds
// the handler's time.
func (w *worker) adapt(h eventHandler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		e, m, err := stripetask.Parse(t)
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
			if e, err = w.stripe.event(ctx, m.ID, m.Account); err != nil {
				return err
			}
			if e.Data == nil || e.Data.Raw == nil {
				return permanent("Stripe's copy of the event has no data.object")
			}
		}
		if err := h(ctx, job{event: e, meta: m, log: taskLogger(ctx, w.log, t)}); err != nil {
			return err
		}
		w.metrics.handled.WithLabelValues(m.Type, "success").Inc()
		return nil
	})
}

// handleUnhandled completes an event of a type the worker has no work for.
func (w *worker) handleUnhandled(ctx context.Context, j job) error {
	j.log.InfoContext(ctx, "no handler for this event type; completed")
	return nil
}

// decodeObject decodes the event's data.object into v. An object that does
// not decode is permanent: retrying cannot fix it.
func decodeObject(e stripe.Event, v any) error {
	if err := json.Unmarshal(e.Data.Raw, v); err != nil {
		return permanentErr(fmt.Errorf("decode data.object of %s: %w", e.Type, err))
	}
	return nil
}

// permanent and permanentErr make a failure that archives the task at
// once, because no retry can fix it.
func permanent(msg string) error   { return permanentErr(errors.New(msg)) }
func permanentErr(err error) error { return fmt.Errorf("%w: %w", asynq.SkipRetry, err) }

// customerEmail returns known when it is set, else the email of the
// customer record, else "".
func (w *worker) customerEmail(ctx context.Context, customer, known string) (string, error) {
	if known != "" || customer == "" {
		return known, nil
	}
	email, err := w.records.rdb.HGet(ctx, customerKey(customer), "email").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read the email of %s: %w", customer, err)
	}
	return email, nil
}

// IDs of expandable fields: Stripe sends an ID, or an object when expanded.
func customerID(c *stripe.Customer) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func chargeID(c *stripe.Charge) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func invoiceID(i *stripe.Invoice) string {
	if i == nil {
		return ""
	}
	return i.ID
}

func paymentIntentID(p *stripe.PaymentIntent) string {
	if p == nil {
		return ""
	}
	return p.ID
}
