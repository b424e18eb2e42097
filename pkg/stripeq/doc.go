// Package stripeq runs your own Go handlers for Stripe events on stripeq's
// machinery: the api verifies each webhook delivery and stores it in Redis
// as one asynq task; a [Worker] processes those tasks with the handlers
// you register by event type.
//
//	w, err := stripeq.NewWorker(cfg) // or stripeq.ConfigFromEnv(os.Getenv)
//	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
//		return grantAccess(ctx, e.Object.Customer.ID)
//	}, stripeq.Name("access"))
//	err = w.Run(ctx)
//
// Every handler gets the machinery of the stripeq worker command:
//   - the event's metadata ([Meta]) and data.object decoded into the
//     stripe-go v76 type or your own struct, with the raw event JSON;
//   - with STRIPE_SECRET_KEY, Stripe's own copy of the event instead of
//     the payload;
//   - retries with exponential backoff, a 429 honoured without using up a
//     retry ([RateLimitError]), and [Permanent] errors archived at once;
//   - global concurrency over every worker process, alerts on archived
//     tasks, Prometheus metrics and logs carrying the task's keys;
//   - the Console lists every execution with its outcome or error, and
//     shows its whole [Outcome] (noted with [Meta.RecordChanged],
//     [Meta.Notified] and [Meta.SetOutcome]) and every attempt.
//
// An event type may have several handlers, such as the built-in one and
// yours: they run in the order registered, and a retry runs again only
// those that did not succeed (see [Handle]).
//
// Stripe delivers events out of order and more than once, and operators
// re-run executions. Two helpers cover what every Stripe handler must get
// right: [Record] writes a record only when the event is newer than what
// it holds, and [Once] ([OnceFor] with a key of your own) does a side
// effect once.
//
// The built-in handlers (customer, subscription, invoice, payment,
// dispute and checkout records, and notifications) are the package
// pkg/stripeq/builtin, registered through this same API; include them with
// builtin.Register, or leave them out. The test kit, pkg/stripeq/stripeqtest,
// runs handlers on an event in one call. pkg/stripeq/README.md is the
// manual; the engine is under pkg/stripeq/internal.
//
// Event types, handlers' names, kinds of [Once] and the fields of a
// [Record] are stored in Redis: once deployed, they are permanent names.
//
// It is a supported public API, covered by the module's compatibility
// promise (worker/README.md, "What counts as a breaking change").
package stripeq
