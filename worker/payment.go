package main

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
)

// chargeObject is what handleChargeFailed reads of a stripe.Charge.
type chargeObject struct {
	ID             string          `json:"id"`
	Customer       expandableID    `json:"customer"`
	Invoice        expandableID    `json:"invoice"`
	PaymentIntent  expandableID    `json:"payment_intent"`
	Amount         int64           `json:"amount"`
	Currency       stripe.Currency `json:"currency"`
	ReceiptEmail   string          `json:"receipt_email"`
	FailureCode    string          `json:"failure_code"`
	FailureMessage string          `json:"failure_message"`
	Outcome        *chargeOutcome  `json:"outcome"`
}

// chargeOutcome is what handleChargeFailed reads of a
// stripe.ChargeOutcome.
type chargeOutcome struct {
	Reason string `json:"reason"`
}

// paymentIntentObject is what handlePaymentIntentFailed reads of a
// stripe.PaymentIntent.
type paymentIntentObject struct {
	ID               string          `json:"id"`
	Customer         expandableID    `json:"customer"`
	Invoice          expandableID    `json:"invoice"`
	LatestCharge     expandableID    `json:"latest_charge"`
	Amount           int64           `json:"amount"`
	Currency         stripe.Currency `json:"currency"`
	ReceiptEmail     string          `json:"receipt_email"`
	LastPaymentError *paymentError   `json:"last_payment_error"`
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
func (w *worker) handleChargeFailed(ctx context.Context, j job, ch *chargeObject) error {
	customer, invoice, pi := string(ch.Customer), string(ch.Invoice), string(ch.PaymentIntent)
	b := w.records.batch()
	b.link(ctx, ch.ID, map[string]string{"customer": customer, "invoice": invoice, "payment_intent": pi})
	reason := ch.FailureMessage
	switch {
	case ch.Outcome != nil && ch.Outcome.Reason != "":
		reason = ch.Outcome.Reason
	case ch.FailureCode != "":
		reason = ch.FailureCode
	}
	payment := pi
	if payment == "" {
		payment = ch.ID
	}
	return w.paymentFailed(ctx, j, b, customer, reason, invoice, payment, ch.Amount, ch.Currency, ch.ReceiptEmail)
}

// handlePaymentIntentFailed is handleChargeFailed for a payment intent: its
// last_payment_error gives the decline code, else the error code or message.
func (w *worker) handlePaymentIntentFailed(ctx context.Context, j job, pi *paymentIntentObject) error {
	customer, invoice := string(pi.Customer), string(pi.Invoice)
	b := w.records.batch()
	b.link(ctx, string(pi.LatestCharge), map[string]string{"customer": customer, "invoice": invoice, "payment_intent": pi.ID})
	reason := ""
	if e := pi.LastPaymentError; e != nil {
		switch {
		case e.DeclineCode != "":
			reason = e.DeclineCode
		case e.Code != "":
			reason = e.Code
		default:
			reason = e.Msg
		}
	}
	return w.paymentFailed(ctx, j, b, customer, reason, invoice, pi.ID, pi.Amount, pi.Currency, pi.ReceiptEmail)
}

// paymentFailed marks the customer delinquent with the reason, and notifies
// a failed payment that no invoice.payment_failed will notify. The writes
// and reads go out in one round trip, with those already queued on b.
func (w *worker) paymentFailed(ctx context.Context, j job, b *batch, customer, reason, invoice, payment string, amount int64, currency stripe.Currency, receiptEmail string) error {
	if customer != "" && reason != "" {
		b.apply(ctx, customerKey(customer), clockPaymentError, j.event.ID, j.event.Created, "last_payment_error", reason)
	}
	stale := w.markDelinquent(ctx, j, b, customer)
	notify := invoice == ""
	email := w.customerEmail(ctx, b, customer, receiptEmail, notify)
	if err := b.exec(ctx); err != nil {
		return err
	}
	if stale() || !notify {
		return nil
	}
	return w.notifier.send(ctx, notification{
		Kind: kindPaymentFailed, Customer: customer, Email: email(), EventID: j.event.ID, DedupeID: payment,
		Subject: "Your payment of " + money(amount, currency) + " failed",
		Body:    fmt.Sprintf("We could not collect %s (%s). Please update your payment method.", money(amount, currency), orNone(reason)),
	})
}

// markDelinquent queues on b setting delinquent on the customer for a
// payment failure. After b runs, stale reports the failure stale when a
// newer payment event has since cleared delinquent (an invoice.paid
// handled first), so that no payment_failed notice goes out for a debt
// already settled.
func (w *worker) markDelinquent(ctx context.Context, j job, b *batch, customer string) (stale func() bool) {
	if customer == "" {
		return func() bool { return false }
	}
	b.apply(ctx, customerKey(customer), clockPayment, j.event.ID, j.event.Created, "delinquent", "true")
	// "true" when the failure applied; a newer payment event's value if not.
	delinquent := b.get(ctx, customerKey(customer), "delinquent")
	return func() bool {
		if delinquent.Val() == "false" {
			j.log.InfoContext(ctx, "a newer payment settled this failure; no payment_failed notice")
			return true
		}
		return false
	}
}
