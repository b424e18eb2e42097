package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// job is one Stripe event to handle.
type job struct {
	event stripe.Event        // fully decoded by stripe-go
	meta  stripetask.Metadata // from the task's headers
	log   *slog.Logger        // carries the task's ID, type, queue and retry count
}

// eventHandler handles one Stripe event. An error wrapping asynq.SkipRetry
// archives the task at once; any other error retries it.
type eventHandler func(ctx context.Context, j job) error

// worker holds the dependencies of every handler.
type worker struct {
	log     *slog.Logger
	records records
}

// mux registers every handler, by Stripe event type, in one place. Every
// type in stripetask.Handled has its handler here; any other Stripe task
// (permitted in the api by STRIPE_EVENTS) is logged and completed.
func (w *worker) mux() *asynq.ServeMux {
	handlers := map[string]eventHandler{
		stripetask.CustomerCreated: w.handleCustomer,
		stripetask.CustomerUpdated: w.handleCustomer,
		stripetask.CustomerDeleted: w.handleCustomer,
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

// adapt turns an eventHandler into an asynq handler: it parses the task,
// archives a task that cannot be parsed, and adds the event to the logger.
func (w *worker) adapt(h eventHandler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		e, m, err := stripetask.Parse(t)
		if err != nil {
			return fmt.Errorf("%w: %w", asynq.SkipRetry, err)
		}
		return h(ctx, job{event: e, meta: m, log: taskLogger(ctx, w.log, t)})
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
		return fmt.Errorf("%w: decode data.object of %s: %w", asynq.SkipRetry, e.Type, err)
	}
	return nil
}
