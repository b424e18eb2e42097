package builtin

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/moved"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// idOf is the ID of a stripe-go expandable field, "" when it is nil.
func idOf[T any](p *T) string {
	if p == nil {
		return ""
	}
	return reflect.ValueOf(p).Elem().FieldByName("ID").String()
}

// subscriptionRead is what handleSubscription reads of a subscription,
// its period end as Period gives it.
type subscriptionRead struct {
	ID, Customer      string
	Status            stripe.SubscriptionStatus
	CancelAtPeriodEnd bool
	TrialEnd          int64
	CurrentPeriodEnd  int64
}

// known is a field present in the event, as every field is at 2023-10-16.
func known(id string) moved.ID { return moved.ID{ID: id, Known: true} }

// viaStripeGo decodes data.object of body as the worker did before it had
// its own small structs: stripe-go's stripe.Event, then the object's
// stripe-go type. It returns what the handler of typ reads of it.
func viaStripeGo(t *testing.T, typ string, body []byte) any {
	t.Helper()
	var e stripe.Event
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	decode := func(v any) {
		if err := json.Unmarshal(e.Data.Raw, v); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case strings.HasPrefix(typ, "customer.subscription."):
		var s stripe.Subscription
		decode(&s)
		return subscriptionRead{s.ID, idOf(s.Customer), s.Status, s.CancelAtPeriodEnd, s.TrialEnd, s.CurrentPeriodEnd}
	case strings.HasPrefix(typ, "customer."):
		var c stripe.Customer
		decode(&c)
		return customerObject{c.ID, c.Email, c.Name, c.Deleted}
	case strings.HasPrefix(typ, "invoice."):
		var i stripe.Invoice
		decode(&i)
		return invoiceObject{
			i.ID, stripeq.ExpandableID(idOf(i.Customer)), i.CustomerEmail,
			i.Number, i.AmountDue, i.AmountPaid, i.Currency, i.AttemptCount, i.NextPaymentAttempt, i.DueDate, i.PeriodEnd, i.HostedInvoiceURL,
			moved.Invoice{Subscription: known(idOf(i.Subscription)), Charge: known(idOf(i.Charge)), PaymentIntent: known(idOf(i.PaymentIntent))},
		}
	case typ == events.ChargeFailed:
		var c stripe.Charge
		decode(&c)
		o := chargeObject{
			c.ID, stripeq.ExpandableID(idOf(c.Customer)), stripeq.ExpandableID(idOf(c.PaymentIntent)),
			c.Amount, c.Currency, c.ReceiptEmail, c.FailureCode, c.FailureMessage, nil, moved.Payment{Invoice: known(idOf(c.Invoice))},
		}
		if c.Outcome != nil {
			o.Outcome = &chargeOutcome{c.Outcome.Reason}
		}
		return o
	case strings.HasPrefix(typ, "payment_intent."):
		var p stripe.PaymentIntent
		decode(&p)
		o := paymentIntentObject{
			p.ID, stripeq.ExpandableID(idOf(p.Customer)), stripeq.ExpandableID(idOf(p.LatestCharge)),
			p.Amount, p.Currency, p.ReceiptEmail, nil, moved.Payment{Invoice: known(idOf(p.Invoice))},
		}
		if e := p.LastPaymentError; e != nil {
			o.LastPaymentError = &paymentError{string(e.DeclineCode), string(e.Code), e.Msg}
		}
		return o
	case strings.HasPrefix(typ, "charge.dispute."):
		var d stripe.Dispute
		decode(&d)
		o := disputeObject{d.ID, stripeq.ExpandableID(idOf(d.Charge)), d.Status, d.Amount, d.Currency, d.Reason, nil}
		if d.EvidenceDetails != nil {
			o.EvidenceDetails = &evidenceDetails{d.EvidenceDetails.DueBy}
		}
		return o
	case typ == events.CheckoutSessionCompleted:
		var s stripe.CheckoutSession
		decode(&s)
		return checkoutSessionObject{s.ID, stripeq.ExpandableID(idOf(s.Customer)), s.ClientReferenceID}
	}
	t.Fatalf("no stripe-go type for %s", typ)
	return nil
}

// viaWorker decodes body as the worker's handler of typ does.
func viaWorker(t *testing.T, typ string, body []byte) any {
	t.Helper()
	switch {
	case strings.HasPrefix(typ, "customer.subscription."):
		s := decodeFor[subscriptionObject](t, typ, body)
		_, end, err := s.Period()
		if err != nil {
			t.Fatal(err)
		}
		return subscriptionRead{s.ID, string(s.Customer), s.Status, s.CancelAtPeriodEnd, s.TrialEnd, end}
	case strings.HasPrefix(typ, "customer."):
		return decodeFor[customerObject](t, typ, body)
	case strings.HasPrefix(typ, "invoice."):
		return decodeFor[invoiceObject](t, typ, body)
	case typ == events.ChargeFailed:
		return decodeFor[chargeObject](t, typ, body)
	case strings.HasPrefix(typ, "payment_intent."):
		return decodeFor[paymentIntentObject](t, typ, body)
	case strings.HasPrefix(typ, "charge.dispute."):
		return decodeFor[disputeObject](t, typ, body)
	case typ == events.CheckoutSessionCompleted:
		return decodeFor[checkoutSessionObject](t, typ, body)
	}
	t.Fatalf("no object type for %s", typ)
	return nil
}

// decodeFor decodes body as a handler of an O registered for typ gets it.
func decodeFor[O any](t *testing.T, typ string, body []byte) O {
	t.Helper()
	task, _, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Redis().Close()
	var got *stripeq.Event[O]
	stripeq.Handle(w, typ, func(_ context.Context, e *stripeq.Event[O]) error { got = e; return nil })
	if err := w.ProcessTask(t.Context(), task); err != nil {
		t.Fatalf("handle %s: %v", typ, err)
	}
	want, _, _ := stripetask.Parse(task)
	if got.ID != want.ID || got.Created.Unix() != want.Created || got.Type != typ || string(got.Raw) != string(body) {
		t.Errorf("event %s created %v type %s, want %s, %d, %s", got.ID, got.Created, got.Type, want.ID, want.Created, typ)
	}
	return *got.Object
}

// TestObjectsDecodeAsStripeGo checks, for every fixture, that each
// handler's small struct reads what stripe-go's full types read: the
// same IDs, statuses, amounts and times, with expandable fields sent as
// IDs or expanded as objects.
func TestObjectsDecodeAsStripeGo(t *testing.T) {
	expand := func(body []byte) []byte {
		return stripetest.Edit(body, func(e map[string]any) {
			o := stripetest.Object(e)
			for _, f := range []string{"customer", "charge", "invoice", "payment_intent", "latest_charge"} {
				if id, ok := o[f].(string); ok {
					o[f] = map[string]any{"id": id, "object": f, "metadata": map[string]any{}}
				}
			}
		})
	}
	for _, typ := range events.Handled() {
		for name, body := range map[string][]byte{"ids": stripetest.Fixture(typ), "expanded": expand(stripetest.Fixture(typ))} {
			t.Run(typ+"/"+name, func(t *testing.T) {
				got, want := viaWorker(t, typ, body), viaStripeGo(t, typ, body)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("worker reads  %+v\nstripe-go reads %+v", got, want)
				}
				if reflect.ValueOf(got).IsZero() {
					t.Errorf("nothing read: %+v", got)
				}
			})
		}
	}
}
