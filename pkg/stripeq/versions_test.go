package stripeq

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// atDahlia renders a 2023-10-16 fixture of eventType as 2026-08-26.dahlia
// moves its fields: the invoice's subscription into its parent, its
// charge, payment intent and paid gone, a payment's invoice gone, and a
// subscription's period on its items.
func atDahlia(eventType string) []byte {
	return stripetest.Edit(stripetest.Fixture(eventType), func(e map[string]any) {
		e["api_version"] = "2026-08-26.dahlia"
		o := stripetest.Object(e)
		switch o["object"] {
		case "invoice":
			o["parent"] = map[string]any{"type": "subscription_details", "quote_details": nil,
				"subscription_details": map[string]any{"metadata": map[string]any{}, "subscription": o["subscription"]}}
			for _, f := range []string{"subscription", "subscription_details", "charge", "payment_intent", "paid"} {
				delete(o, f)
			}
		case "charge", "payment_intent":
			delete(o, "invoice")
		case "subscription":
			item := o["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
			item["current_period_start"], item["current_period_end"] = o["current_period_start"], o["current_period_end"]
			delete(o, "current_period_start")
			delete(o, "current_period_end")
		}
	})
}

// run processes body with a handler of an O for its type, registered
// with opts, and returns whether the handler ran and the task's error.
func run[O any](t *testing.T, w *Worker, body []byte, opts ...HandleOption) (*Event[O], error) {
	t.Helper()
	task, m, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got *Event[O]
	Handle(w, m.Type, func(_ context.Context, e *Event[O]) error { got = e; return nil }, opts...)
	return got, w.ProcessTask(t.Context(), task)
}

func TestAPIVersionsParksOtherVersions(t *testing.T) {
	tests := []struct {
		name     string
		declared []string
		version  string
		runs     bool
	}{
		{"no declaration: every version", nil, "2026-08-26.dahlia", true},
		{"the declared version", []string{"2023-10-16"}, "2023-10-16", true},
		{"another version", []string{"2023-10-16"}, "2026-08-26.dahlia", false},
		{"a later monthly version of a declared release", []string{"2025-03-31.basil"}, "2025-04-30.basil", true},
		{"a later release", []string{"2025-03-31.basil"}, "2025-09-30.clover", false},
		{"no version at all", []string{"2023-10-16"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := stripetest.Edit(stripetest.Fixture("invoice.paid"), func(e map[string]any) {
				if tt.version == "" {
					delete(e, "api_version")
				} else {
					e["api_version"] = tt.version
				}
			})
			var opts []HandleOption
			if tt.declared != nil {
				opts = append(opts, APIVersions(tt.declared...))
			}
			got, err := run[stripe.Invoice](t, newTestWorker(t), body, opts...)
			if ran := got != nil; ran != tt.runs {
				t.Fatalf("handler ran = %v, want %v (err %v)", ran, tt.runs, err)
			}
			if tt.runs {
				if err != nil {
					t.Fatal(err)
				}
				if got.APIVersion != tt.version {
					t.Errorf("Meta.APIVersion = %q, want %q", got.APIVersion, tt.version)
				}
				return
			}
			if !errors.Is(err, ErrAPIVersion) || !errors.Is(err, ErrPermanent) {
				t.Fatalf("err = %v, want a permanent ErrAPIVersion", err)
			}
			for _, want := range []string{"invoice.paid", strings.Join(tt.declared, ", "), "Pin the webhook endpoint", "re-run"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestAPIVersionsPanicsOnNonVersions(t *testing.T) {
	for _, v := range []string{"", "2023-10", "latest", "2025-03-31.Basil"} {
		t.Run(v, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("APIVersions(%q) did not panic", v)
				}
			}()
			APIVersions(v)
		})
	}
}

// TestMovedFieldHelpers: the helpers read the same values from the same
// story at 2023-10-16 and at dahlia, where stripe-go's structs read zeros.
func TestMovedFieldHelpers(t *testing.T) {
	for _, version := range []string{"2023-10-16", "2026-08-26.dahlia"} {
		t.Run(version, func(t *testing.T) {
			body := func(typ string) []byte {
				if version == "2023-10-16" {
					return stripetest.Fixture(typ)
				}
				return atDahlia(typ)
			}
			inv, err := run[stripe.Invoice](t, newTestWorker(t), body("invoice.payment_failed"))
			if err != nil {
				t.Fatal(err)
			}
			if sub, err := InvoiceSubscription(inv); sub != "sub_stripeq_demo" || err != nil {
				t.Errorf("InvoiceSubscription = %q, %v; want sub_stripeq_demo", sub, err)
			}
			sub, err := run[stripe.Subscription](t, newTestWorker(t), body("customer.subscription.created"))
			if err != nil {
				t.Fatal(err)
			}
			start, end, err := SubscriptionPeriod(sub)
			if err != nil || start != time.Unix(1767225720, 0).UTC() || end != time.Unix(1769904120, 0).UTC() {
				t.Errorf("SubscriptionPeriod = %v, %v, %v; want the 2023-10-16 story's period", start, end, err)
			}
			ch, err := run[stripe.Charge](t, newTestWorker(t), body("charge.failed"))
			if err != nil {
				t.Fatal(err)
			}
			invoice, err := PaymentInvoice(t.Context(), newTestWorker(t), ch)
			if version == "2023-10-16" && (invoice != "in_stripeq_demo" || err != nil) {
				t.Errorf("PaymentInvoice = %q, %v; want in_stripeq_demo", invoice, err)
			}
			if version != "2023-10-16" && (invoice != "" || !errors.Is(err, ErrNotAtVersion)) {
				t.Errorf("PaymentInvoice without a key = %q, %v; want ErrNotAtVersion", invoice, err)
			}
		})
	}
}

// TestPaymentInvoiceAsksStripe: since basil, with a key, PaymentInvoice
// retrieves the payment intent at stripe-go's version, whose invoice
// field still exists; a charge without one is retrieved itself.
func TestPaymentInvoiceAsksStripe(t *testing.T) {
	api := stripetest.NewAPI(t)
	api.AddObject("", []byte(`{"id":"pi_stripeq_demo","object":"payment_intent","invoice":"in_stripeq_demo"}`),
		[]byte(`{"id":"ch_lone","object":"charge","invoice":null,"payment_intent":null}`))
	w, err := NewWorker(Config{GlobalConcurrency: NoLimit, Logger: slog.New(slog.DiscardHandler), StripeSecretKey: "sk_test_stripeq", StripeAPIBase: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rdb.Close() })
	tests := []struct {
		typ  string
		body []byte
		want string
	}{
		{"payment intent", atDahlia("payment_intent.payment_failed"), "in_stripeq_demo"},
		{"charge of a payment intent", atDahlia("charge.failed"), "in_stripeq_demo"},
		{"charge without one", stripetest.Edit(atDahlia("charge.failed"), func(e map[string]any) {
			o := stripetest.Object(e)
			o["id"], o["payment_intent"] = "ch_lone", nil
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			e := &Event[stripe.Charge]{Meta: Meta{APIVersion: "2026-08-26.dahlia"}, Raw: tt.body}
			got, err := PaymentInvoice(t.Context(), w, e)
			if got != tt.want || err != nil {
				t.Errorf("PaymentInvoice = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, r := range api.Requests() {
		if r.Version != stripe.APIVersion {
			t.Errorf("%s asked at Stripe-Version %q, want stripe-go's %s", r.Path, r.Version, stripe.APIVersion)
		}
	}
	if len(api.Requests()) != 3 {
		t.Errorf("%d requests to Stripe, want 3", len(api.Requests()))
	}
}

// TestStripesCopyDecidesTheVersion: with a key, the handler reads Stripe's
// copy, which the Events API renders at the account's version when the
// event was created, not at the endpoint's: its version is the one a
// declaration is checked against.
func TestStripesCopyDecidesTheVersion(t *testing.T) {
	api := stripetest.NewAPI(t)
	api.Add("", atDahlia("invoice.paid"))
	w, err := NewWorker(Config{GlobalConcurrency: NoLimit, Logger: slog.New(slog.DiscardHandler), StripeSecretKey: "sk_test_stripeq", StripeAPIBase: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rdb.Close() })
	got, err := run[stripe.Invoice](t, w, stripetest.Fixture("invoice.paid"), APIVersions("2023-10-16"))
	if got != nil || !errors.Is(err, ErrAPIVersion) || !strings.Contains(err.Error(), "2026-08-26.dahlia") {
		t.Errorf("handler ran = %v, err = %v; want the dahlia copy parked", got != nil, err)
	}
}
