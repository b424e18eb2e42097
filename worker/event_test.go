package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"

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
		return subscriptionObject{s.ID, expandableID(idOf(s.Customer)), s.Status, s.CurrentPeriodEnd, s.CancelAtPeriodEnd, s.TrialEnd}
	case strings.HasPrefix(typ, "customer."):
		var c stripe.Customer
		decode(&c)
		return customerObject{c.ID, c.Email, c.Name, c.Deleted}
	case strings.HasPrefix(typ, "invoice."):
		var i stripe.Invoice
		decode(&i)
		return invoiceObject{
			i.ID, expandableID(idOf(i.Customer)), i.CustomerEmail, expandableID(idOf(i.Charge)), expandableID(idOf(i.PaymentIntent)),
			i.Number, i.AmountDue, i.AmountPaid, i.Currency, i.AttemptCount, i.NextPaymentAttempt, i.DueDate, i.PeriodEnd, i.HostedInvoiceURL,
		}
	case typ == stripetask.ChargeFailed:
		var c stripe.Charge
		decode(&c)
		o := chargeObject{
			c.ID, expandableID(idOf(c.Customer)), expandableID(idOf(c.Invoice)), expandableID(idOf(c.PaymentIntent)),
			c.Amount, c.Currency, c.ReceiptEmail, c.FailureCode, c.FailureMessage, nil,
		}
		if c.Outcome != nil {
			o.Outcome = &chargeOutcome{c.Outcome.Reason}
		}
		return o
	case typ == stripetask.PaymentIntentPaymentFailed:
		var p stripe.PaymentIntent
		decode(&p)
		o := paymentIntentObject{
			p.ID, expandableID(idOf(p.Customer)), expandableID(idOf(p.Invoice)), expandableID(idOf(p.LatestCharge)),
			p.Amount, p.Currency, p.ReceiptEmail, nil,
		}
		if e := p.LastPaymentError; e != nil {
			o.LastPaymentError = &paymentError{string(e.DeclineCode), string(e.Code), e.Msg}
		}
		return o
	case strings.HasPrefix(typ, "charge.dispute."):
		var d stripe.Dispute
		decode(&d)
		o := disputeObject{d.ID, expandableID(idOf(d.Charge)), d.Status, d.Amount, d.Currency, d.Reason, nil}
		if d.EvidenceDetails != nil {
			o.EvidenceDetails = &evidenceDetails{d.EvidenceDetails.DueBy}
		}
		return o
	case typ == stripetask.CheckoutSessionCompleted:
		var s stripe.CheckoutSession
		decode(&s)
		return checkoutSessionObject{s.ID, expandableID(idOf(s.Customer)), s.ClientReferenceID}
	}
	t.Fatalf("no stripe-go type for %s", typ)
	return nil
}

// viaWorker decodes body as the worker's handler of typ does.
func viaWorker(t *testing.T, typ string, body []byte) any {
	t.Helper()
	switch {
	case strings.HasPrefix(typ, "customer.subscription."):
		return decodeFor[subscriptionObject](t, typ, body)
	case strings.HasPrefix(typ, "customer."):
		return decodeFor[customerObject](t, typ, body)
	case strings.HasPrefix(typ, "invoice."):
		return decodeFor[invoiceObject](t, typ, body)
	case typ == stripetask.ChargeFailed:
		return decodeFor[chargeObject](t, typ, body)
	case typ == stripetask.PaymentIntentPaymentFailed:
		return decodeFor[paymentIntentObject](t, typ, body)
	case strings.HasPrefix(typ, "charge.dispute."):
		return decodeFor[disputeObject](t, typ, body)
	case typ == stripetask.CheckoutSessionCompleted:
		return decodeFor[checkoutSessionObject](t, typ, body)
	}
	t.Fatalf("no object type for %s", typ)
	return nil
}

func decodeFor[O any](t *testing.T, typ string, body []byte) O {
	t.Helper()
	task, _, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var e event[O]
	m, err := parse(task, &e)
	if err != nil {
		t.Fatalf("parse %s: %v", typ, err)
	}
	want, _, _ := stripetask.Parse(task)
	if e.ID != want.ID || e.Created != want.Created || m.Type != typ {
		t.Errorf("event %s created %d type %s, want %s, %d, %s", e.ID, e.Created, m.Type, want.ID, want.Created, typ)
	}
	return *e.Data.Object
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
	for _, typ := range stripetask.Handled() {
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

func TestParseErrors(t *testing.T) {
	body := stripetest.Fixture(stripetask.ChargeFailed)
	good, _, _ := stripetask.New(body, stripetask.Options{})
	edit := func(fn func(e map[string]any)) *asynq.Task {
		return asynq.NewTaskWithHeaders(good.Type(), stripetest.Edit(body, fn), good.Headers())
	}
	tests := []struct {
		name   string
		task   *asynq.Task
		want   error  // errors.Is
		substr string // in the message
	}{
		{"not a stripe task", asynq.NewTask("email:send", body), stripetask.ErrNotStripeTask, ""},
		{"not JSON", asynq.NewTaskWithHeaders(good.Type(), []byte("{"), good.Headers()), stripetask.ErrMalformed, ""},
		{"an array", asynq.NewTaskWithHeaders(good.Type(), []byte("[]"), good.Headers()), stripetask.ErrMalformed, ""},
		{"created is a string", edit(func(e map[string]any) { e["created"] = "yesterday" }), stripetask.ErrMalformed, ""},
		{"no data.object", edit(func(e map[string]any) { e["data"] = map[string]any{} }), stripetask.ErrNotEvent, "data.object"},
		{"null data.object", edit(func(e map[string]any) { e["data"] = map[string]any{"object": nil} }), stripetask.ErrNotEvent, "data.object"},
		{"no id", edit(func(e map[string]any) { delete(e, "id") }), stripetask.ErrNotEvent, ""},
		{"type differs from the task's", edit(func(e map[string]any) { e["type"] = "charge.succeeded" }), stripetask.ErrNotEvent, "differs"},
		{"a field of the object has the wrong type", edit(func(e map[string]any) { stripetest.Object(e)["amount"] = "2000" }), nil,
			`JSON string into Go int64 within "/data/object/amount"`},
		{"an expandable field is a number", edit(func(e map[string]any) { stripetest.Object(e)["customer"] = 42 }), nil, "decode data.object of charge.failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e event[chargeObject]
			_, err := parse(tt.task, &e)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want %v containing %q", err, tt.want, tt.substr)
			}
			// Every parse error archives the task at once.
			w, _ := setup(t)
			if err := adapt(w, w.handleChargeFailed).ProcessTask(t.Context(), tt.task); !errors.Is(err, asynq.SkipRetry) {
				t.Errorf("handler: %v, want SkipRetry", err)
			}
		})
	}
}

func TestDecodeCopy(t *testing.T) {
	body := stripetest.Fixture(stripetask.ChargeFailed)
	tests := []struct {
		name      string
		body      []byte
		permanent bool
	}{
		{"no data.object", stripetest.Edit(body, func(e map[string]any) { delete(e, "data") }), true},
		{"an object that does not decode", stripetest.Edit(body, func(e map[string]any) { stripetest.Object(e)["amount"] = true }), true},
		{"an envelope that does not decode", stripetest.Edit(body, func(e map[string]any) { e["created"] = "now" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e event[chargeObject]
			err := decodeCopy(tt.body, stripetask.ChargeFailed, &e)
			if err == nil || errors.Is(err, asynq.SkipRetry) != tt.permanent {
				t.Errorf("err = %v, want permanent %v", err, tt.permanent)
			}
		})
	}
	var e event[chargeObject]
	if err := decodeCopy(body, stripetask.ChargeFailed, &e); err != nil || e.Data.Object.ID != "ch_stripeq_demo" {
		t.Errorf("decodeCopy = %v, object %+v", err, e.Data.Object)
	}
}
