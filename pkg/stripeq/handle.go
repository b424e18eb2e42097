package stripeq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/execution"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/tasklog"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/workermetrics"
	"github.com/stripeq/stripeq/pkg/stripetask"
	taskoutcome "github.com/stripeq/stripeq/pkg/stripetask/outcome"
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
	// Handler is the name of the handler this Meta is handed to ([Name]).
	Handler string
	// Log carries task_id, task_type, queue, retry, stripe_event_id and
	// stripe_event_type. Log through it, at info level or below: the
	// worker already logs every failure once.
	Log *slog.Logger

	outcome *notes
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

// HandlerFunc handles one event. A nil error completes the handler's
// part. An error wrapping [ErrPermanent] (see [Permanent]) archives the
// task at once; a [RateLimitError] (or a stripe-go error of a 429) retries
// it after its delay without using up a retry; any other error retries it
// with backoff, and archives it after its last retry.
//
// A handler must be safe to run again for the same event: Stripe delivers
// twice, a retry follows a failure part-way, and operators re-run
// executions. Use [Record] and [Once] for what must not happen twice.
type HandlerFunc[O any] func(ctx context.Context, e *Event[O]) error

// HandleOption configures one registration by [Handle]: [Name],
// [APIVersions].
type HandleOption func(*handleConfig)

type handleConfig struct {
	name     string   // "": "handler <n>"
	versions []string // nil: every version
}

// Name names a handler: the Console shows each handler's part of an
// execution by its name, and an execution records the names of the
// handlers that succeeded, so that its retries do not run them again. A
// name is unique among its event type's handlers, and stored in Redis with
// the execution: keep it across deploys. The built-in handlers are named
// "builtin". Without it a handler is named by its place among its type's
// handlers, "handler 2"; name yours when a type has several handlers whose
// order a deploy may change. It panics on an empty name, one of more than
// 64 bytes, or one with a control character.
func Name(name string) HandleOption {
	if name == "" || len(name) > 64 || strings.ContainsFunc(name, unicode.IsControl) {
		panic(fmt.Sprintf("stripeq: Name(%q): a handler's name is 1 to 64 bytes, no control character", name))
	}
	return func(c *handleConfig) { c.name = name }
}

// Handle registers h for the Stripe event type eventType (e.g.
// "invoice.paid"), with data.object decoded into an O. Register every
// handler before [Worker.Run]. Events of a type with no handler are
// completed without work (the api stores only the types STRIPE_EVENTS
// permits).
//
// An event type may have several handlers, such as the built-ins and one
// of your own. They run one after the other, in the order they were
// registered, in the one execution (asynq task) of the event, within its
// HandlerTimeout, each with its own Meta, outcome and options
// ([APIVersions]); each runs even when one before it failed. When all of
// them succeed the task completes. When one fails, the handlers that
// succeeded are recorded with the task (the field stripeq_done of its
// hash), and its retries, and the Console's run-now of the archived task,
// run only the others, never one that succeeded in the execution; a re-run
// copy from the Console is a new execution and runs them all.
//
// Your handler must therefore be idempotent: it runs more than once for
// one event when Stripe delivers the event again, when an operator re-runs
// it, and when its worker dies after the handler's side effect but before
// its success was recorded. Write records with [Record] and do side
// effects with [Once] or [OnceFor]; the built-ins do.
//
// What the
// worker then does with the task follows their errors: any error that is
// not permanent retries it with backoff (a handler that failed for good
// runs again then, and fails again); else a wait ([RateLimitError],
// [ErrInProgress]) retries it without using up a retry; else, every error
// being permanent, it is archived at once. The Console and the attempt
// history show each handler's part ([Outcome].Handlers). A handler that
// depends on what another wrote reads it from Redis, as it must anyway
// with Stripe's out-of-order deliveries.
//
// Options such as [Name] and [APIVersions] configure this registration.
//
// Handle panics when eventType is empty, h is nil, eventType already has
// a handler of the same name, or the worker is already running: these
// are bugs in the program, found at its start.
func Handle[O any](w *Worker, eventType string, h HandlerFunc[O], opts ...HandleOption) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case eventType == "":
		panic("stripeq: Handle with an empty event type")
	case h == nil:
		panic("stripeq: Handle " + eventType + " with a nil handler")
	case w.running:
		panic("stripeq: Handle " + eventType + " after Run")
	}
	r := w.routes[eventType]
	if r == nil {
		r = &route{w: w, eventType: eventType}
		w.routes[eventType] = r
	}
	var cfg handleConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.name == "" {
		cfg.name = "handler " + strconv.Itoa(len(r.handlers)+1)
	}
	if slices.ContainsFunc(r.handlers, func(x *handler) bool { return x.name == cfg.name }) {
		panic("stripeq: a handler named " + strconv.Quote(cfg.name) + " is already registered for " + eventType + " (see stripeq.Name)")
	}
	r.handlers = append(r.handlers, newHandler(h, cfg))
	w.served = nil
}

// route runs the handlers of one event type.
type route struct {
	w         *Worker
	eventType string
	handlers  []*handler // in the order registered
}

// handler is one registered handler, its object type erased.
type handler struct {
	handleConfig
	// parse checks a task and decodes its payload, with data.object into
	// the handler's O, in one pass: the route's only handler, reading the
	// stored payload.
	parse func(t *asynq.Task) (decoded any, m stripetask.Metadata, raw []byte, err error)
	// decodeCopy decodes Stripe's copy of an event, with data.object into
	// the handler's O, in one pass (the route's only handler), and returns
	// it with its API version; on any error the caller takes the general
	// path, which says what failed.
	decodeCopy func(raw []byte, eventType string) (decoded any, apiVersion string, err error)
	// call hands the event to the handler: decoded, what parse returned,
	// or nil to decode raw.
	call func(ctx context.Context, meta Meta, raw []byte, decoded any) error
}

// newHandler returns h registered with cfg.
func newHandler[O any](h HandlerFunc[O], cfg handleConfig) *handler {
	object := objectType[O]()
	return &handler{
		handleConfig: cfg,
		parse: func(t *asynq.Task) (any, stripetask.Metadata, []byte, error) {
			e := new(event[O])
			m, raw, err := parse(t, e)
			return e, m, raw, err
		},
		decodeCopy: func(raw []byte, eventType string) (any, string, error) {
			e := new(event[O])
			if err := decodeCopy(raw, eventType, e); err != nil {
				return nil, "", err
			}
			return e, e.APIVersion, nil
		},
		call: func(ctx context.Context, meta Meta, raw []byte, decoded any) error {
			e, _ := decoded.(*event[O])
			if e == nil {
				e = new(event[O])
				if err := decodeEvent(raw, meta.Type, e); err != nil {
					return Permanent(err)
				}
				if e.Data == nil || e.Data.Object == nil {
					return Permanent(errNoObjectInCopy)
				}
			}
			if err := object.check(e.Data.Object, meta.Type); err != nil {
				return err
			}
			if err := cfg.checkVersion(meta.Type, meta.APIVersion); err != nil {
				return err
			}
			return h(ctx, &Event[O]{Meta: meta, Object: e.Data.Object, Raw: raw})
		},
	}
}

// process runs the route's handlers on the task t. It checks the task
// (archiving one that cannot be parsed), takes a global concurrency slot,
// replaces the payload by Stripe's copy when an API key is set, decodes
// the event, with data.object into each handler's type, and bounds the
// handlers' time. An event at an API version a handler does not support
// is not handed to it (ErrAPIVersion).
func (r *route) process(ctx context.Context, t *asynq.Task) error {
	w := r.w
	one := len(r.handlers) == 1
	var decoded any
	var m stripetask.Metadata
	var raw []byte // the event JSON the handlers read
	var err error
	if one && w.stripe == nil {
		decoded, m, raw, err = r.handlers[0].parse(t) // one decode of the payload
	} else {
		// Stripe's copy replaces the payload, or each handler decodes
		// its own type: only the event's shape is checked here.
		m, raw, err = parse(t, new(event[skipped]))
	}
	if err != nil {
		return Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	waitStart := time.Now()
	release, err := w.slots.Acquire(ctx)
	w.metrics.SlotWait.Observe(workermetrics.Seconds(waitStart))
	if err != nil {
		if errors.Is(err, slots.ErrNoSlot) {
			w.metrics.NoSlot.Inc()
		}
		return err
	}
	defer release()
	start := time.Now()
	defer func() { w.metrics.Duration.WithLabelValues(m.Type).Observe(workermetrics.Seconds(start)) }()
	exec := execution.From(ctx)
	if w.stripe != nil {
		if raw, err = w.stripe.Event(ctx, m.ID, m.Account); err != nil {
			return ClassifyStripe("retrieve event "+m.ID, err)
		}
		decoded = nil
		var version string
		if one { // one decode of the copy, into the handler's type
			decoded, version, err = r.handlers[0].decodeCopy(raw, m.Type)
		}
		if !one || err != nil {
			decoded = nil // the handler decodes raw, and says what does not decode
			var e event[skipped]
			if err := decodeCopy(raw, m.Type, &e); err != nil {
				return err
			}
			version = e.APIVersion
		}
		if version != "" {
			m.APIVersion = version // Stripe's copy is rendered at the event's own version
		}
		exec.Update(func(o *Outcome) { o.Fetched = true })
	}
	if one {
		h := r.handlers[0]
		if err := h.call(ctx, w.meta(ctx, t, m, h.name, &exec.Notes), raw, decoded); err != nil {
			return rateLimited(err)
		}
		w.metrics.Handled.WithLabelValues(m.Type, "success").Inc()
		return nil
	}
	if err := r.several(ctx, t, m, raw, exec); err != nil {
		return err
	}
	w.metrics.Handled.WithLabelValues(m.Type, "success").Inc()
	return nil
}

// several runs the route's handlers one after the other, but those an
// earlier attempt of the execution recorded as done, each with a Meta and
// an outcome of its own and its panic recovered, and notes in exec each
// one's part and the outcome of all; it returns their errors as one
// (combine).
func (r *route) several(ctx context.Context, t *asynq.Task, m stripetask.Metadata, raw []byte, exec *execution.Execution) error {
	w := r.w
	var before []taskoutcome.Handler
	if id, ok := asynq.GetTaskID(ctx); ok {
		queue, _ := asynq.GetQueueName(ctx)
		var err error
		if before, err = w.failures.Done(ctx, queue, id); err != nil {
			return err
		}
	}
	parts := make([]taskoutcome.Handler, len(r.handlers))
	var failed []handlerError
	for i, h := range r.handlers {
		part := &parts[i]
		if j := slices.IndexFunc(before, func(p taskoutcome.Handler) bool { return p.Name == h.name }); j >= 0 {
			*part = before[j]
			part.Status = taskoutcome.HandlerDoneBefore
			continue
		}
		part.Name = h.name
		n := &notes{}
		start := time.Now()
		err := rateLimited(callRecovered(ctx, h, w.meta(ctx, t, m, h.name, n), raw))
		part.MS = time.Since(start).Milliseconds()
		o := n.Get()
		part.Summary, part.Records, part.Notices, part.Unknown = o.Summary, o.Records, o.Notices, o.Unknown
		switch {
		case err == nil:
			part.Status = taskoutcome.HandlerDone
			continue
		case isFailure(err):
			part.Status = taskoutcome.HandlerFailed
			part.Permanent = errors.Is(err, ErrPermanent)
		default:
			part.Status = taskoutcome.HandlerWaiting
		}
		part.Error = failures.Message(err.Error())
		failed = append(failed, handlerError{h.name, err})
	}
	exec.SetHandlers(parts)
	exec.Update(func(o *Outcome) {
		var lines []string
		for _, p := range parts {
			o.Records = append(o.Records, p.Records...)
			o.Notices = append(o.Notices, p.Notices...)
			o.Unknown = append(o.Unknown, p.Unknown...)
			line := p.Name + ": " + p.Outcome().Line()
			switch p.Status {
			case taskoutcome.HandlerDoneBefore:
				line += " (an earlier attempt)"
			case taskoutcome.HandlerFailed, taskoutcome.HandlerWaiting:
				line = p.Name + ": " + p.Status
			}
			lines = append(lines, line)
		}
		o.Summary = strings.Join(lines, "; ")
		o.Handlers = parts
	})
	return combine(failed)
}

// callRecovered calls h, turning its panic into its error.
func callRecovered(ctx context.Context, h *handler, meta Meta, raw []byte) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("panic in handler %s: %v", h.name, x)
		}
	}()
	return h.call(ctx, meta, raw, nil)
}

// handlerError is a handler's error in an attempt of several handlers.
type handlerError struct {
	name string
	err  error
}

// combine returns the error of an attempt whose handlers failed or
// waited with failed: nil for none; an error that counts against the
// task's retries when any of them does; else a wait (a [RateLimitError]
// of the longest, or [ErrInProgress]) when any handler waits; else, every
// error being permanent, a permanent one. It names each handler with its
// error, and wraps none of them, so that none decides for the others.
func combine(failed []handlerError) error {
	if len(failed) == 0 {
		return nil
	}
	msgs := make([]string, len(failed))
	retry, wait, inProgress := false, time.Duration(-1), false
	for i, f := range failed {
		msgs[i] = f.name + ": " + failures.Message(f.err.Error())
		var rl *RateLimitError
		switch {
		case errors.As(f.err, &rl):
			wait = max(wait, rl.After)
		case errors.Is(f.err, ErrInProgress):
			inProgress = true
		case !errors.Is(f.err, ErrPermanent):
			retry = true
		}
	}
	msg := "handlers failed: " + strings.Join(msgs, "; ")
	switch {
	case retry:
		return errors.New(msg)
	case wait >= 0:
		return &RateLimitError{After: wait, Err: errors.New(msg)}
	case inProgress:
		return fmt.Errorf("%s: %w", msg, ErrInProgress)
	}
	return Permanent(errors.New(msg))
}

// meta is the Meta of the task t being handled in ctx, for the handler
// named name, which notes its outcome in n.
func (w *Worker) meta(ctx context.Context, t *asynq.Task, m stripetask.Metadata, name string, n *notes) Meta {
	taskID, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if !ok {
		maxRetry = stripetask.MaxRetry
	}
	return Meta{
		ID: m.ID, Type: m.Type, Created: time.Unix(m.Created, 0).UTC(), Livemode: m.Livemode, Account: m.Account,
		Customer: m.Customer, ObjectID: m.ObjectID, APIVersion: m.APIVersion,
		TaskID: taskID, Queue: queue, Retried: retried, MaxRetry: maxRetry, Handler: name,
		Log: tasklog.Lazy(ctx, w.log, t), outcome: n,
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
	tasklog.Logger(ctx, w.log, t).InfoContext(ctx, "no handler for this event type; completed")
	execution.From(ctx).Update(func(o *Outcome) { o.Summary = "no handler for " + eventType })
	w.metrics.Handled.WithLabelValues(eventType, "success").Inc()
	return nil
}

// ErrObjectType is the permanent error of an event whose data.object is
// another kind of Stripe object than the stripe-go type its handler
// decodes it into, as with Handle[stripe.Customer] for "invoice.paid":
// the task is archived at once, rather than handled with an empty struct.
var ErrObjectType = errors.New("stripeq: data.object is not the object the handler decodes")

// objectKind is the kind of Stripe object a handler's type decodes: for a
// stripe-go type, its name lower-cased ("paymentintent" for
// stripe.PaymentIntent), which data.object's "object" is without "_" and
// "." ("payment_intent", "checkout.session"); for a type of your own, none.
type objectKind struct {
	goType string // "stripe.PaymentIntent"
	want   string // "paymentintent"; "": not checked
	field  []int  // of the struct's Object field
}

// objectType returns the kind O decodes.
func objectType[O any]() objectKind {
	typ := reflect.TypeFor[O]()
	if typ.Kind() != reflect.Struct || !strings.HasPrefix(typ.PkgPath(), "github.com/stripe/stripe-go/") {
		return objectKind{}
	}
	f, ok := typ.FieldByName("Object")
	if !ok || f.Type.Kind() != reflect.String {
		return objectKind{}
	}
	return objectKind{goType: typ.String(), want: strings.ToLower(typ.Name()), field: f.Index}
}

// check returns a permanent error wrapping ErrObjectType when obj, an
// event of eventType's data.object, names another object than k.
func (k objectKind) check(obj any, eventType string) error {
	if k.want == "" {
		return nil
	}
	got := reflect.ValueOf(obj).Elem().FieldByIndex(k.field).String()
	if got == "" || strings.NewReplacer("_", "", ".", "").Replace(got) == k.want {
		return nil
	}
	return Permanent(fmt.Errorf("%w: data.object of %s is a %s, and the handler decodes it into %s; register a handler of this type with the type of its object",
		ErrObjectType, eventType, got, k.goType))
}
