package builtin

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
)

// chargeObject is what handleChargeFailed reads of a stripe.Charge.
type chargeObject struct {
	ID             string               `json:"id"`
	Customer       stripeq.ExpandableID `json:"customer"`
	Invoice        stripeq.ExpandableID `json:"invoice"`
	PaymentIntent  stripeq.ExpandableID `json:"payment_intent"`
	Amount         int64                `json:"amount"`
	Currency       stripe.Currency      `json:"currency"`
	ReceiptEmail   string               `json:"receipt_email"`
	FailureCode    string               `json:"failure_code"`
	FailureMessage string               `json:"failure_message"`
	Outcome        *chargeOutcome       `json:"outcome"`
}

// chargeOutcome is what handleChargeFailed reads of a
// stripe.ChargeOutcome.
type chargeOutcome struct {
	Reason string `json:"reason"`
}

// paymentIntentObject is what handlePaymentIntentFailed reads of a
// stripe.PaymentIntent.
type paymentIntentObject struct {
	ID               string               `json:"id"`
	Customer         stripeq.ExpandableID `json:"customer"`
	Invoice          stripeq.ExpandableID `json:"invoice"`
	LatestCharge     stripeq.ExpandableID `json:"latest_charge"`
	Amount           int64                `json:"amount"`
	Currency         stripe.Currency      `json:"currency"`
	ReceiptEmail     string               `json:"receipt_email"`
	LastPaymentError *paymentError        `json:"last_payment_error"`
}

// paymentError is what handlePaymentIntentFailed reads of a payment
// intent's last_payment_error (a stripe.Error).
type paymentError struct {
	DeclineCode string `json:"decline_code"`
	Code        string `json:"code"`
	Msg         string `json:"message"`
}

// handleChargeFailed records a failed charge on the customer: delinquent
// and last_payment_error (the decline code, else the failure code or
// message). A charge of an invoice is notified by invoice.payment_failed;
// any other sends one payment_failed notice per payment (its payment
// intent, else the charge).
func (h *handlers) handleChargeFailed(ctx context.Context, e *stripeq.Event[chargeObject]) error {
	ch := e.Object
	p := failedPayment{
		customer: string(ch.Customer), invoice: string(ch.Invoice), payment: string(ch.PaymentIntent),
		reason: ch.FailureMessage, amount: ch.Amount, currency: ch.Currency, receiptEmail: ch.ReceiptEmail,
	}
	b := h.batch(e.Meta)
	b.link(ctx, ch.ID, map[string]string{"customer": p.customer, "invoice": p.invoice, "payment_intent": p.payment})
	switch {
	case ch.Outcome != nil && ch.Outcome.Reason != "":
		p.reason = ch.Outcome.Reason
	case ch.FailureCode != "":
		p.reason = ch.FailureCode
	}
	if p.payment == "" {
		p.payment = ch.ID
	}
	return h.paymentFailed(ctx, e.Meta, b, p)
}

// handlePaymentIntentFailed is handleChargeFailed for a payment intent: its
// last_payment_error gives the decline code, else the error code or message.
func (h *handlers) handlePaymentIntentFailed(ctx context.Context, e *stripeq.Event[paymentIntentObject]) error {
	pi := e.Object
	p := failedPayment{
		customer: string(pi.Customer), invoice: string(pi.Invoice), payment: pi.ID,
		amount: pi.Amount, currency: pi.Currency, receiptEmail: pi.ReceiptEmail,
	}
	b := h.batch(e.Meta)
	b.link(ctx, string(pi.LatestCharge), map[string]string{"customer": p.customer, "invoice": p.invoice, "payment_intent": pi.ID})
	if pe := pi.LastPaymentError; pe != nil {
		switch {
		case pe.DeclineCode != "":
			p.reason = pe.DeclineCode
		case pe.Code != "":
			p.reason = pe.Code
		default:
			p.reason = pe.Msg
		}
	}
	return h.paymentFailed(ctx, e.Meta, b, p)
}

// failedPayment is what a charge or payment intent failure says.
type failedPayment struct {
	customer     string
	reason       string // decline code, else failure code or message
	invoice      string // "" for a payment outside an invoice
	payment      string // the payment intent, else the charge: one notice per payment
	amount       int64
	currency     stripe.Currency
	receiptEmail string
}

// paymentFailed marks the customer delinquent with the reason, and notifies
// a failed payment that no invoice.payment_failed will notify. The writes
// and reads go out in one round trip, with those already queued on b.
func (h *handlers) paymentFailed(ctx context.Context, m stripeq.Meta, b *batch, p failedPayment) error {
	if p.customer != "" && p.reason != "" {
		b.apply(ctx, stripeq.Record{Key: records.CustomerKey(p.customer), Clock: records.ClockPaymentError}, m, "last_payment_error", p.reason)
	}
	delinquent := b.markDelinquent(ctx, m, p.customer)
	notify := p.invoice == ""
	email := b.customerEmail(ctx, p.customer, p.receiptEmail, notify)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if settled(ctx, m, res, delinquent, p.customer) {
		return nil
	}
	if !notify {
		m.Notified(stripeq.Notice{Kind: records.KindPaymentFailed, Customer: p.customer, Status: stripeq.NoticeSkipped,
			Reason: "a payment of invoice " + p.invoice + ": its invoice.payment_failed sends the notice"})
		return nil
	}
	return h.notifier.send(ctx, m, notification{
		Kind: records.KindPaymentFailed, Customer: p.customer, Email: res.email(email), EventID: m.ID, DedupeID: p.payment,
		Subject: "Your payment of " + money(p.amount, p.currency) + " failed",
		Body:    fmt.Sprintf("We could not collect %s (%s). Please update your payment method.", money(p.amount, p.currency), orNone(p.reason)),
	})
}

// markDelinquent queues on b setting delinquent on the customer for the
// payment failure m, and reading delinquent back: "true" when the failure
// applied, a newer payment event's value if not. See settled.
func (b *batch) markDelinquent(ctx context.Context, m stripeq.Meta, customer string) ref {
	if customer == "" {
		return noRef
	}
	b.apply(ctx, stripeq.Record{Key: records.CustomerKey(customer), Clock: records.ClockPayment}, m, "delinquent", "true")
	return b.get(ctx, records.CustomerKey(customer), "delinquent")
}

// settled reports the payment failure m stale when a newer payment event
// has since cleared delinquent (an invoice.paid handled first), read by
// markDelinquent's ref, so that no payment_failed notice goes out for a
// debt already settled.
func settled(ctx context.Context, m stripeq.Meta, res result, delinquent ref, customer string) bool {
	if res.value(delinquent) == "false" {
		m.Log.InfoContext(ctx, "a newer payment settled this failure; no payment_failed notice")
		m.Notified(stripeq.Notice{Kind: records.KindPaymentFailed, Customer: customer, Status: stripeq.NoticeSkipped,
			Reason: "a newer payment settled it"})
		return true
	}
	return false
}

// orNone is s, or "(none)" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
