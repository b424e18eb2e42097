package stripeq

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Meta is what a handler knows about the event and its execution, beside
// the object.
type Meta struct {
	// ID is the Stripe event ID (evt_…): the same for every delivery of the
	// event and for every re-run of it from the Console.
	ID string
	// Type is the Stripe event type, e.g. "invoice.paid".
	Type string
	// Created is when Stripe created the event, to the second. Stripe
	// delivers out of order: compare Created, not arrival (see [Record]).
	Created time.Time
	// Livemode is false for a test-mode event.
	Livemode bool
	// Account is the Connect account the event belongs to; "" for the
	// platform's own.
	Account string
	// Customer is the customer of data.object (its "customer" field, or the
	// object itself for a customer); "" when there is none.
	Customer string
	// ObjectID is data.object.id; "" when absent.
	ObjectID string
	// APIVersion is the API version data.object is rendered at, e.g.
	// "2023-10-16" or "2026-08-26.dahlia": the stored event's, or with
	// StripeSecretKey, that of Stripe's copy, which the Events API
	// renders at the account's version when the event was created, not
	// at the webhook endpoint's. See [APIVersions] and the helpers that
	// read moved fields ([InvoiceSubscription], [SubscriptionPeriod],
	// [PaymentInvoice]).
	APIVersion string
	// TaskID is the asynq task's ID: the event ID, or "<event ID>:rerun:<n>"
	// for the n-th re-run copy from the Console.
	TaskID string
	// Queue is the asynq queue the task came from.
	Queue string
	// Retried is how many times this execution was retried before this
	// attempt: 0 on the first. A wait for a rate limit or a concurrency
	// slot does not count.
	Retried int
	// MaxRetry is how many retries the task gets before it is archived.
	MaxRetry int
	// Log carries task_id, task_type, queue, retry, stripe_event_id and
	// stripe_event_type. Log through it, at info level or below: the
	// worker already logs every failure once.
	Log *slog.Logger

	outcome *outcome
}

// Event is one Stripe event handed to a handler, with data.object decoded
// into an O: a stripe-go v76 type such as stripe.Invoice, or a struct of
// your own with the fields you read (json tags as in Stripe's API; see
// [ExpandableID]).
type Event[O any] struct {
	Meta
	// Object is data.object decoded into an O; never nil.
	Object *O
	// Raw is the event JSON: as the api stored it, or with
	// STRIPE_SECRET_KEY, Stripe's own copy.
	Raw json.RawMessage
}

// HandlerFunc handles one event. A nil error completes the task. An error
// wrapping [ErrPermanent] (see [Permanent]) archives it at once; a
// [RateLimitError] (or a stripe-go error of a 429) retries it after its
// delay without using up a retry; any other error retries it with
// backoff, and archives it after its last retry.
//
// A handler must be safe to run again for the same event: Stripe delivers
// twice, a retry follows a failure part-way, and operators re-run
// executions. Use [Record] and [Once] for what must not happen twice.
type HandlerFunc[O any] func(ctx context.Context, e *Event[O]) error

// Handle registers h for the Stripe event type eventType (e.g.
// "invoice.paid"), with data.object decoded into an O. Register every
// handler before [Worker.Run]. Events of a type with no handler are
// completed without work (the api stores only the types STRIPE_EVENTS
// permits).
//
// Options such as [APIVersions] configure this registration.
//
// Handle panics when eventType is empty, h is nil, eventType already has
// a handler, or the worker is already running: these are bugs in the
// program, found at its start.
func Handle[O any](w *Worker, eventType string, h HandlerFunc[O], opts ...HandleOption) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case eventType == "":
		panic("stripeq: Handle with an empty event type")
	case h == nil:
		panic("stripeq: Handle " + eventType + " with a nil handler")
	case w.handlers[eventType] != nil:
		panic("stripeq: a handler is already registered for " + eventType)
	case w.running:
		panic("stripeq: Handle " + eventType + " after Run")
	}
	var cfg handleConfig
	for _, o := range opts {
		o(&cfg)
	}
	w.handlers[eventType] = adapt(w, h, cfg)
	w.served = nil
}

// adapt turns a HandlerFunc into an asynq handler. It checks the task
// (archiving one that cannot be parsed), takes a global concurrency slot,
// replaces the payload by Stripe's copy when an API key is set, decodes
// the event once, with data.object into an O, and bounds the handler's
// time. An event at an API version cfg does not support is archived
// (ErrAPIVersion) without calling h.
func adapt[O any](w *Worker, h HandlerFunc[O], cfg handleConfig) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var e event[O]
		var m stripetask.Metadata
		var raw []byte // the event JSON decoded into e
		var err error
		if w.stripe != nil {
			// Stripe's copy replaces the payload: only its shape is checked.
			var p event[skipped]
			m, _, err = parse(t, &p)
		} else {
			m, raw, err = parse(t, &e)
		}
		if err != nil {
			return Permanent(err)
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
		out := outcomeOf(ctx)
		if w.stripe != nil {
			if raw, err = w.stripe.event(ctx, m.ID, m.Account); err != nil {
				return err
			}
			if err := decodeCopy(raw, m.Type, &e); err != nil {
				return err
			}
			out.update(func(o *Outcome) { o.Fetched = true })
		}
		if e.APIVersion != "" {
			m.APIVersion = e.APIVersion // Stripe's copy is rendered at the event's own version
		}
		if err := cfg.checkVersion(m.Type, m.APIVersion); err != nil {
			return err
		}
		ev := &Event[O]{Meta: meta(ctx, w.log, t, m, e.ID, e.Created, out), Object: e.Data.Object, Raw: raw}
		if err := h(ctx, ev); err != nil {
			return rateLimited(err)
		}
		w.metrics.handled.WithLabelValues(m.Type, "success").Inc()
		return nil
	})
}

// meta is the Meta of the task t being handled in ctx.
func meta(ctx context.Context, log *slog.Logger, t *asynq.Task, m stripetask.Metadata, id string, created int64, out *outcome) Meta {
	taskID, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = stripetask.MaxRetry
	}
	return Meta{
		ID: id, Type: m.Type, Created: time.Unix(created, 0).UTC(), Livemode: m.Livemode, Account: m.Account,
		Customer: m.Customer, ObjectID: m.ObjectID, APIVersion: m.APIVersion,
		TaskID: taskID, Queue: queue, Retried: retried, MaxRetry: maxRetry,
		Log: lazyTaskLogger(ctx, log, t), outcome: out,
	}
}

// unhandled completes an event of a type no handler is registered for,
// without fetching it from Stripe or taking a global slot.
func (w *Worker) unhandled(ctx context.Context, t *asynq.Task) error {
	var e event[skipped]
	if _, _, err := parse(t, &e); err != nil {
		return Permanent(err)
	}
	eventType, _ := stripetask.EventType(t.Type())
	taskLogger(ctx, w.log, t).InfoContext(ctx, "no handler for this event type; completed")
	outcomeOf(ctx).update(func(o *Outcome) { o.Summary = "no handler for " + eventType })
	w.metrics.handled.WithLabelValues(eventType, "success").Inc()
	return nil
}
