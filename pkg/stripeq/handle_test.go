package stripeq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

func TestHandlePanics(t *testing.T) {
	noop := func(context.Context, *Event[stripe.Invoice]) error { return nil }
	tests := []struct {
		name string
		do   func(w *Worker)
	}{
		{"a second handler of one name for a type", func(w *Worker) {
			Handle(w, "invoice.paid", noop, Name("mine"))
			Handle(w, "invoice.paid", noop, Name("mine"))
		}},
		{"an empty name", func(w *Worker) { Handle(w, "invoice.paid", noop, Name("")) }},
		{"a name with a line break", func(w *Worker) { Handle(w, "invoice.paid", noop, Name("a\nb")) }},
		{"an empty type", func(w *Worker) { Handle(w, "", noop) }},
		{"a nil handler", func(w *Worker) { Handle[stripe.Invoice](w, "invoice.paid", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.do(newTestWorker(t))
		})
	}
}

// TestEventMeta checks what a handler gets: the metadata, the object in a
// stripe-go type, the raw JSON and a logger.
func TestEventMeta(t *testing.T) {
	w := newTestWorker(t)
	var got *Event[stripe.Invoice]
	Handle(w, "invoice.paid", func(_ context.Context, e *Event[stripe.Invoice]) error { got = e; return nil })
	body := stripetest.Fixture("invoice.paid")
	task, m, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ProcessTask(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Type != "invoice.paid" || got.Created != time.Unix(m.Created, 0).UTC() || got.Customer != m.Customer ||
		got.ObjectID != m.ObjectID || got.APIVersion != m.APIVersion || got.Livemode != m.Livemode || got.MaxRetry != stripetask.MaxRetry {
		t.Errorf("meta = %+v, want that of %+v", got.Meta, m)
	}
	if got.Object.ID != m.ObjectID || got.Object.Customer == nil || got.Object.Customer.ID != m.Customer || got.Object.AmountPaid == 0 {
		t.Errorf("object = %+v", got.Object)
	}
	if string(got.Raw) != string(body) || got.Log == nil {
		t.Errorf("raw JSON or logger missing")
	}
	got.SetOutcome("granted") // outside a server: noted, never stored
	if o := got.Outcome(); o.Summary != "granted" {
		t.Errorf("Outcome = %+v, want the summary noted", o)
	}
}

// TestHandlerErrors: what a handler's error does to its task.
func TestHandlerErrors(t *testing.T) {
	limited := &stripe.Error{HTTPStatusCode: http.StatusTooManyRequests}
	limited.LastResponse = &stripe.APIResponse{Header: http.Header{"Retry-After": {"7"}}}
	tests := []struct {
		name      string
		err       error
		permanent bool
		after     time.Duration // of a RateLimitError; 0 for none
	}{
		{"an error", errors.New("db down"), false, 0},
		{"a permanent error", Permanent(errors.New("bad object")), true, 0},
		{"a Stripe 429, unclassified", limited, false, 7 * time.Second},
		{"a Stripe 429, classified", ClassifyStripe("create refund", limited), false, 7 * time.Second},
		{"a Stripe 404, classified", ClassifyStripe("retrieve charge", &stripe.Error{HTTPStatusCode: 404}), true, 0},
		{"a rate limit of another API", &RateLimitError{After: time.Second, Err: errors.New("429")}, false, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWorker(t)
			Handle(w, "invoice.paid", func(context.Context, *Event[stripe.Invoice]) error { return tt.err })
			task, _, _ := stripetask.New(stripetest.Fixture("invoice.paid"), stripetask.Options{})
			err := w.ProcessTask(t.Context(), task)
			var rl *RateLimitError
			if errors.Is(err, ErrPermanent) != tt.permanent || isFailure(err) != (tt.after == 0) {
				t.Errorf("err = %v: permanent %v, failure %v", err, errors.Is(err, ErrPermanent), isFailure(err))
			}
			if tt.after > 0 && (!errors.As(err, &rl) || rl.After != tt.after) {
				t.Errorf("err = %v, want a RateLimitError after %v", err, tt.after)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

// TestNewWorkerFailsClosed: a Config built in code is checked as the
// environment is, and its errors name its Go fields, never a variable.
func TestNewWorkerFailsClosed(t *testing.T) {
	secret := "whsec_" + strings.Repeat("QUJD", 8)
	for _, tt := range []struct {
		cfg  Config
		name string // the field the error names
	}{
		{Config{StripeSecretKey: "pk_live_abc"}, "Config.StripeSecretKey"},
		{Config{StripeSecretKey: "sk_live_abc", StripeAPIBase: "http://stripe-proxy.internal"}, "Config.StripeAPIBase"},
		{Config{RedisURL: "http://127.0.0.1"}, "Config.RedisURL"},
		{Config{DashboardURL: "ftp://x"}, "Config.DashboardURL"},
		{Config{Shards: 65}, "Config.Shards"},
		{Config{GlobalConcurrency: -2}, "Config.GlobalConcurrency"},
		{Config{MetricsAddr: "nowhere"}, "Config.MetricsAddr"},
		{Config{Destinations: []Destination{{Name: "a", URL: "https://127.0.0.1/", Secret: secret}, {Name: "b", URL: "https://127.0.0.1/", Secret: "sk_x"}}}, "Config.Destinations[1].Secret"},
		{Config{Destinations: []Destination{{Name: "a", URL: "http://169.254.169.254/", Secret: secret}}}, "AllowLinkLocalDestinations=true allows it"},
	} {
		_, err := NewWorker(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.name) || (tt.cfg.StripeSecretKey != "" && strings.Contains(err.Error(), tt.cfg.StripeSecretKey)) {
			t.Errorf("NewWorker(%+v) = %v, want an error naming %s", tt.cfg, err, tt.name)
		}
		if err != nil && regexp.MustCompile(`\b[A-Z]+_[A-Z_]+\b`).MatchString(err.Error()) {
			t.Errorf("NewWorker's error names a variable: %v", err)
		}
	}
	if w, err := NewWorker(Config{GlobalConcurrency: NoLimit}); err != nil {
		t.Errorf("NewWorker with NoLimit: %v", err)
	} else {
		w.rdb.Close()
	}
}

// TestObjectType: a handler's stripe-go type must be data.object's kind,
// "checkout.session" and "payment_intent" included; a mismatch is
// archived at once; a struct of your own is not checked.
func TestObjectType(t *testing.T) {
	type mine struct {
		ID string `json:"id"`
	}
	tests := []struct {
		name      string
		eventType string
		register  func(w *Worker, eventType string)
		wantErr   bool
	}{
		{"an invoice into stripe.Invoice", "invoice.paid", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[stripe.Invoice]) error { return nil })
		}, false},
		{"an invoice into stripe.Customer", "invoice.paid", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[stripe.Customer]) error { return nil })
		}, true},
		{"a checkout session into stripe.CheckoutSession", "checkout.session.completed", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[stripe.CheckoutSession]) error { return nil })
		}, false},
		{"a payment intent into stripe.PaymentIntent", "payment_intent.succeeded", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[stripe.PaymentIntent]) error { return nil })
		}, false},
		{"a dispute into stripe.Charge", "charge.dispute.created", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[stripe.Charge]) error { return nil })
		}, true},
		{"an invoice into a struct of your own", "invoice.paid", func(w *Worker, typ string) {
			Handle(w, typ, func(context.Context, *Event[mine]) error { return nil })
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWorker(t)
			tt.register(w, tt.eventType)
			task, _, _ := stripetask.New(stripetest.Fixture(tt.eventType), stripetask.Options{})
			err := w.ProcessTask(t.Context(), task)
			if tt.wantErr != (err != nil) || (err != nil && (!errors.Is(err, ErrObjectType) || !errors.Is(err, ErrPermanent))) {
				t.Errorf("err = %v, want a permanent ErrObjectType: %v", err, tt.wantErr)
			}
		})
	}
}

// TestCombine: what the errors of several handlers make of their task.
func TestCombine(t *testing.T) {
	perm := Permanent(errors.New("bad"))
	wait := &RateLimitError{After: 3 * time.Second, Err: errors.New("429")}
	tests := []struct {
		name      string
		errs      []error
		permanent bool
		failure   bool          // counts against the retries
		after     time.Duration // of the RateLimitError; -1 for none
	}{
		{"one permanent", []error{perm}, true, true, -1},
		{"permanent and transient", []error{perm, errors.New("db down")}, false, true, -1},
		{"permanent and a wait", []error{perm, wait}, false, false, 3 * time.Second},
		{"a wait and a transient", []error{wait, errors.New("db down")}, false, true, -1},
		{"two waits: the longest", []error{wait, &RateLimitError{After: 9 * time.Second}}, false, false, 9 * time.Second},
		{"a claim held elsewhere", []error{fmt.Errorf("email: %w", ErrInProgress), perm}, false, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failed []handlerError
			for i, err := range tt.errs {
				failed = append(failed, handlerError{string(rune('a' + i)), err})
			}
			err := combine(failed)
			var rl *RateLimitError
			after := time.Duration(-1)
			if errors.As(err, &rl) {
				after = rl.After
			}
			if errors.Is(err, ErrPermanent) != tt.permanent || isFailure(err) != tt.failure || after != tt.after || !strings.Contains(err.Error(), "a: ") {
				t.Errorf("combine = %v: permanent %v, failure %v, after %v", err, errors.Is(err, ErrPermanent), isFailure(err), after)
			}
		})
	}
	if combine(nil) != nil {
		t.Error("combine(nil) != nil")
	}
}
