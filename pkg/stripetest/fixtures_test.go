package stripetest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

const eventsDir = "testdata/events"

// The IDs every fixture links to.
const (
	customerID      = "cus_stripeq_demo"
	subscriptionID  = "sub_stripeq_demo"
	invoiceID       = "in_stripeq_demo"
	paymentIntentID = "pi_stripeq_demo"
	chargeID        = "ch_stripeq_demo"
	disputeID       = "dp_stripeq_demo"
	sessionID       = "cs_stripeq_demo"
	amount          = int64(2000)
	currency        = stripe.CurrencyUSD
)

// lifecycle lists the event types with a fixture, in the order their
// created times follow.
var lifecycle = []string{
	"customer.created",
	"checkout.session.completed",
	"customer.subscription.created",
	"invoice.finalized",
	"invoice.upcoming",
	"invoice.payment_failed",
	"charge.failed",
	"payment_intent.payment_failed",
	"charge.dispute.created",
	"charge.dispute.funds_withdrawn",
	"invoice.paid",
	"charge.dispute.updated",
	"charge.dispute.closed",
	"charge.dispute.funds_reinstated",
	"customer.subscription.updated",
	"customer.updated",
	"customer.subscription.trial_will_end",
	"customer.subscription.paused",
	"customer.subscription.resumed",
	"customer.subscription.deleted",
	"customer.deleted",
}

func TestFixtureFilesAreTheHandledTypes(t *testing.T) {
	entries, err := os.ReadDir(eventsDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	var want []string
	for _, typ := range lifecycle {
		want = append(want, typ+".json")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files in %s:\n got %q\nwant %q", eventsDir, got, want)
	}
}

func TestFixtureCreatedTimesFollowTheLifecycle(t *testing.T) {
	var prev int64
	for i, typ := range lifecycle {
		e := readEvent(t, typ)
		if i > 0 && e.Created <= prev {
			t.Errorf("%s created %d, not after the %s before it (%d)", typ, e.Created, lifecycle[i-1], prev)
		}
		prev = e.Created
	}
}

func TestFixtureEventIDsAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, typ := range lifecycle {
		id := readEvent(t, typ).ID
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share event ID %s", other, typ, id)
		}
		seen[id] = typ
	}
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		typ   string
		check func(t *testing.T, e *stripe.Event)
	}{
		{"customer.created", func(t *testing.T, e *stripe.Event) {
			c := checkCustomer(t, e)
			if c.Phone != "" {
				t.Errorf("phone = %q, want none before customer.updated", c.Phone)
			}
		}},
		{"customer.updated", func(t *testing.T, e *stripe.Event) {
			c := checkCustomer(t, e)
			if c.Phone == "" {
				t.Error("phone is empty; customer.updated adds one")
			}
			wantPrevious(t, e, "phone", nil)
		}},
		{"customer.deleted", func(t *testing.T, e *stripe.Event) {
			// Stripe sends the customer as it was before deletion: a full
			// object, without the "deleted": true that only the DELETE
			// API response carries. Handlers must go by the event type.
			checkCustomer(t, e)
			if _, ok := e.Data.Object["deleted"]; ok {
				t.Error(`object has "deleted"; real customer.deleted payloads do not`)
			}
		}},

		{"checkout.session.completed", func(t *testing.T, e *stripe.Event) {
			var s stripe.CheckoutSession
			decode(t, e, &s)
			eq(t, "id", s.ID, sessionID)
			eq(t, "client_reference_id", s.ClientReferenceID, "user_42")
			eq(t, "customer", idOf(s.Customer), customerID)
			eq(t, "subscription", idOf(s.Subscription), subscriptionID)
			eq(t, "invoice", idOf(s.Invoice), invoiceID)
			eq(t, "mode", s.Mode, stripe.CheckoutSessionModeSubscription)
			eq(t, "status", s.Status, stripe.CheckoutSessionStatusComplete)
			eq(t, "payment_status", s.PaymentStatus, stripe.CheckoutSessionPaymentStatusPaid)
			eq(t, "amount_total", s.AmountTotal, amount)
			eq(t, "currency", s.Currency, currency)
			eq(t, "customer_details.email", s.CustomerDetails.Email, "jenny.rosen@example.com")
		}},

		{"customer.subscription.created", func(t *testing.T, e *stripe.Event) {
			s := checkSubscription(t, e, stripe.SubscriptionStatusActive)
			eq(t, "trial_end", s.TrialEnd, 0)
		}},
		{"customer.subscription.updated", func(t *testing.T, e *stripe.Event) {
			s := checkSubscription(t, e, stripe.SubscriptionStatusTrialing)
			if s.TrialEnd <= e.Created {
				t.Errorf("trial_end %d is not after the event (%d)", s.TrialEnd, e.Created)
			}
			wantPrevious(t, e, "status", "active")
			wantPrevious(t, e, "trial_end", nil)
		}},
		{"customer.subscription.trial_will_end", func(t *testing.T, e *stripe.Event) {
			s := checkSubscription(t, e, stripe.SubscriptionStatusTrialing)
			if s.TrialEnd <= e.Created {
				t.Errorf("trial_end %d is not after the event (%d)", s.TrialEnd, e.Created)
			}
		}},
		{"customer.subscription.paused", func(t *testing.T, e *stripe.Event) {
			checkSubscription(t, e, stripe.SubscriptionStatusPaused)
		}},
		{"customer.subscription.resumed", func(t *testing.T, e *stripe.Event) {
			checkSubscription(t, e, stripe.SubscriptionStatusActive)
		}},
		{"customer.subscription.deleted", func(t *testing.T, e *stripe.Event) {
			s := checkSubscription(t, e, stripe.SubscriptionStatusCanceled)
			if s.CanceledAt == 0 || s.EndedAt == 0 {
				t.Errorf("canceled_at %d, ended_at %d: want both set", s.CanceledAt, s.EndedAt)
			}
		}},

		{"invoice.finalized", func(t *testing.T, e *stripe.Event) {
			in := checkInvoice(t, e, invoiceID, stripe.InvoiceStatusOpen)
			if in.HostedInvoiceURL == "" {
				t.Error("hosted_invoice_url is empty")
			}
			eq(t, "payment_intent", idOf(in.PaymentIntent), paymentIntentID)
			eq(t, "paid", in.Paid, false)
		}},
		{"invoice.upcoming", func(t *testing.T, e *stripe.Event) {
			checkInvoice(t, e, "", stripe.InvoiceStatusDraft)
			if _, ok := e.Data.Object["id"]; ok {
				t.Error(`upcoming invoice has an "id"; Stripe leaves it out`)
			}
		}},
		{"invoice.payment_failed", func(t *testing.T, e *stripe.Event) {
			in := checkInvoice(t, e, invoiceID, stripe.InvoiceStatusOpen)
			eq(t, "attempted", in.Attempted, true)
			eq(t, "attempt_count", in.AttemptCount, 1)
			eq(t, "paid", in.Paid, false)
			eq(t, "charge", idOf(in.Charge), chargeID)
			eq(t, "payment_intent", idOf(in.PaymentIntent), paymentIntentID)
			if in.LastFinalizationError != nil {
				t.Errorf("last_finalization_error = %+v, want null", in.LastFinalizationError)
			}
			if v, ok := e.Data.Object["last_finalization_error"]; !ok || v != nil {
				t.Errorf("raw last_finalization_error = %v (present %v), want null", v, ok)
			}
			if in.NextPaymentAttempt <= e.Created {
				t.Errorf("next_payment_attempt %d is not after the event (%d)", in.NextPaymentAttempt, e.Created)
			}
		}},
		{"invoice.paid", func(t *testing.T, e *stripe.Event) {
			in := checkInvoice(t, e, invoiceID, stripe.InvoiceStatusPaid)
			eq(t, "paid", in.Paid, true)
			eq(t, "amount_paid", in.AmountPaid, amount)
			eq(t, "amount_remaining", in.AmountRemaining, 0)
			eq(t, "charge", idOf(in.Charge), chargeID)
			eq(t, "payment_intent", idOf(in.PaymentIntent), paymentIntentID)
		}},

		{"charge.failed", func(t *testing.T, e *stripe.Event) {
			var c stripe.Charge
			decode(t, e, &c)
			eq(t, "id", c.ID, chargeID)
			eq(t, "status", c.Status, stripe.ChargeStatusFailed)
			eq(t, "paid", c.Paid, false)
			eq(t, "amount", c.Amount, amount)
			eq(t, "currency", c.Currency, currency)
			eq(t, "failure_code", c.FailureCode, "card_declined")
			eq(t, "failure_message", c.FailureMessage, "Your card was declined.")
			eq(t, "customer", idOf(c.Customer), customerID)
			eq(t, "invoice", idOf(c.Invoice), invoiceID)
			eq(t, "payment_intent", idOf(c.PaymentIntent), paymentIntentID)
			if c.Outcome == nil {
				t.Fatal("outcome is null")
			}
			eq(t, "outcome.type", c.Outcome.Type, "issuer_declined")
			eq(t, "outcome.reason", c.Outcome.Reason, "insufficient_funds")
		}},
		{"payment_intent.payment_failed", func(t *testing.T, e *stripe.Event) {
			var pi stripe.PaymentIntent
			decode(t, e, &pi)
			eq(t, "id", pi.ID, paymentIntentID)
			eq(t, "status", pi.Status, stripe.PaymentIntentStatusRequiresPaymentMethod)
			eq(t, "amount", pi.Amount, amount)
			eq(t, "currency", pi.Currency, currency)
			eq(t, "customer", idOf(pi.Customer), customerID)
			eq(t, "invoice", idOf(pi.Invoice), invoiceID)
			eq(t, "latest_charge", idOf(pi.LatestCharge), chargeID)
			lpe := pi.LastPaymentError
			if lpe == nil {
				t.Fatal("last_payment_error is null")
			}
			eq(t, "last_payment_error.code", lpe.Code, stripe.ErrorCodeCardDeclined)
			eq(t, "last_payment_error.decline_code", lpe.DeclineCode, stripe.DeclineCodeInsufficientFunds)
			eq(t, "last_payment_error.message", lpe.Msg, "Your card has insufficient funds.")
			eq(t, "last_payment_error.type", lpe.Type, stripe.ErrorTypeCard)
			eq(t, "last_payment_error.charge", lpe.ChargeID, chargeID)
			if lpe.PaymentMethod == nil || lpe.PaymentMethod.Customer == nil {
				t.Fatal("last_payment_error.payment_method or its customer is null")
			}
			eq(t, "last_payment_error.payment_method.customer", lpe.PaymentMethod.Customer.ID, customerID)
		}},

		{"charge.dispute.created", func(t *testing.T, e *stripe.Event) {
			d := checkDispute(t, e, stripe.DisputeStatusNeedsResponse)
			if d.EvidenceDetails.DueBy <= e.Created {
				t.Errorf("evidence_details.due_by %d is not after the event (%d)", d.EvidenceDetails.DueBy, e.Created)
			}
			eq(t, "evidence_details.has_evidence", d.EvidenceDetails.HasEvidence, false)
		}},
		{"charge.dispute.funds_withdrawn", func(t *testing.T, e *stripe.Event) {
			d := checkDispute(t, e, stripe.DisputeStatusNeedsResponse)
			eq(t, "len(balance_transactions)", len(d.BalanceTransactions), 1)
			eq(t, "balance_transactions[0].amount", d.BalanceTransactions[0].Amount, -amount)
		}},
		{"charge.dispute.updated", func(t *testing.T, e *stripe.Event) {
			d := checkDispute(t, e, stripe.DisputeStatusUnderReview)
			eq(t, "evidence_details.has_evidence", d.EvidenceDetails.HasEvidence, true)
			wantPrevious(t, e, "status", "needs_response")
		}},
		{"charge.dispute.closed", func(t *testing.T, e *stripe.Event) {
			checkDispute(t, e, stripe.DisputeStatusWon)
		}},
		{"charge.dispute.funds_reinstated", func(t *testing.T, e *stripe.Event) {
			d := checkDispute(t, e, stripe.DisputeStatusWon)
			eq(t, "len(balance_transactions)", len(d.BalanceTransactions), 2)
			var net int64
			for _, bt := range d.BalanceTransactions {
				net += bt.Amount
			}
			eq(t, "sum of balance_transactions amounts", net, 0)
		}},
	}

	if len(tests) != len(lifecycle) {
		t.Errorf("%d cases for %d fixtures", len(tests), len(lifecycle))
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			e := readEvent(t, tc.typ)
			eq(t, "event id", e.ID, "evt_stripeq_"+strings.ReplaceAll(tc.typ, ".", "_"))
			eq(t, "event object", e.Object, "event")
			eq(t, "event type", string(e.Type), tc.typ)
			eq(t, "event api_version", e.APIVersion, stripe.APIVersion)
			eq(t, "event livemode", e.Livemode, false)
			if e.Request == nil {
				t.Error("event request is null; Stripe sends {id, idempotency_key}")
			}
			if e.Data == nil || len(e.Data.Raw) == 0 {
				t.Fatal("event has no data.object")
			}
			if obj, _ := e.Data.Object["livemode"].(bool); obj {
				t.Error("data.object is livemode")
			}
			if updated := strings.HasSuffix(tc.typ, ".updated"); updated != (e.Data.PreviousAttributes != nil) {
				t.Errorf("previous_attributes present = %v, want %v", e.Data.PreviousAttributes != nil, updated)
			}
			tc.check(t, e)
		})
	}
}

func readEvent(t *testing.T, typ string) *stripe.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, typ+".json"))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields() // the envelope has no fields stripe.Event lacks
	var e stripe.Event
	if err := d.Decode(&e); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return &e
}

func decode(t *testing.T, e *stripe.Event, v any) {
	t.Helper()
	if err := json.Unmarshal(e.Data.Raw, v); err != nil {
		t.Fatalf("decoding data.object of %s into %T: %v", e.Type, v, err)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// idOf returns the ID of an expandable field, or "" when it is null.
func idOf[T any](p *T) string {
	if p == nil {
		return ""
	}
	switch v := any(p).(type) {
	case *stripe.Customer:
		return v.ID
	case *stripe.Subscription:
		return v.ID
	case *stripe.Invoice:
		return v.ID
	case *stripe.Charge:
		return v.ID
	case *stripe.PaymentIntent:
		return v.ID
	}
	panic("idOf: unhandled type")
}

func wantPrevious(t *testing.T, e *stripe.Event, key string, want any) {
	t.Helper()
	got, ok := e.Data.PreviousAttributes[key]
	if !ok {
		t.Errorf("previous_attributes has no %q", key)
		return
	}
	if got != want {
		t.Errorf("previous_attributes.%s = %v, want %v", key, got, want)
	}
}

func checkCustomer(t *testing.T, e *stripe.Event) *stripe.Customer {
	t.Helper()
	var c stripe.Customer
	decode(t, e, &c)
	eq(t, "id", c.ID, customerID)
	eq(t, "email", c.Email, "jenny.rosen@example.com")
	eq(t, "name", c.Name, "Jenny Rosen")
	eq(t, "deleted", c.Deleted, false)
	return &c
}

func checkSubscription(t *testing.T, e *stripe.Event, status stripe.SubscriptionStatus) *stripe.Subscription {
	t.Helper()
	var s stripe.Subscription
	decode(t, e, &s)
	eq(t, "id", s.ID, subscriptionID)
	eq(t, "status", s.Status, status)
	eq(t, "customer", idOf(s.Customer), customerID)
	eq(t, "latest_invoice", idOf(s.LatestInvoice), invoiceID)
	eq(t, "currency", s.Currency, currency)
	if s.Items == nil || len(s.Items.Data) != 1 {
		t.Fatalf("items = %+v, want one item", s.Items)
	}
	item := s.Items.Data[0]
	eq(t, "items[0].subscription", item.Subscription, subscriptionID)
	eq(t, "items[0].price.unit_amount", item.Price.UnitAmount, amount)
	return &s
}

func checkInvoice(t *testing.T, e *stripe.Event, id string, status stripe.InvoiceStatus) *stripe.Invoice {
	t.Helper()
	var in stripe.Invoice
	decode(t, e, &in)
	eq(t, "id", in.ID, id)
	eq(t, "status", in.Status, status)
	eq(t, "customer", idOf(in.Customer), customerID)
	eq(t, "subscription", idOf(in.Subscription), subscriptionID)
	eq(t, "amount_due", in.AmountDue, amount)
	eq(t, "currency", in.Currency, currency)
	if in.Lines == nil || len(in.Lines.Data) != 1 {
		t.Fatalf("lines = %+v, want one line", in.Lines)
	}
	eq(t, "lines[0].subscription", idOf(in.Lines.Data[0].Subscription), subscriptionID)
	return &in
}

func checkDispute(t *testing.T, e *stripe.Event, status stripe.DisputeStatus) *stripe.Dispute {
	t.Helper()
	var d stripe.Dispute
	decode(t, e, &d)
	eq(t, "id", d.ID, disputeID)
	eq(t, "status", d.Status, status)
	eq(t, "reason", d.Reason, stripe.DisputeReasonFraudulent)
	eq(t, "charge", idOf(d.Charge), chargeID)
	eq(t, "payment_intent", idOf(d.PaymentIntent), paymentIntentID)
	eq(t, "amount", d.Amount, amount)
	eq(t, "currency", d.Currency, currency)
	if d.EvidenceDetails == nil || d.EvidenceDetails.DueBy == 0 {
		t.Error("evidence_details.due_by is not set")
	}
	return &d
}
