package main

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"
)

// handleChargeFailed records a failed charge on the customer: delinquent
// and last_payment_error (the decline code, else the failure code or
// message). A charge of an invoice is notified by invoice.payment_failed;
// any other sends one payment_failed notice per payment (its payment
// intent, else the charge).
func (w *worker) handleChargeFailed(ctx context.Context, j job) error {
	var ch stripe.Charge
	if err := decodeObject(j.event, &ch); err != nil {
		return err
	}
	customer, invoice, pi := customerID(ch.Customer), invoiceID(ch.Invoice), paymentIntentID(ch.PaymentIntent)
	if err := w.records.link(ctx, ch.ID, map[string]string{"customer": customer, "invoice": invoice, "payment_intent": pi}); err != nil {
		return err
	}
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
	return w.paymentFailed(ctx, j, customer, reason, invoice, payment, ch.Amount, ch.Currency, ch.ReceiptEmail)
}

// handlePaymentIntentFailed is handleChargeFailed for a payment intent: its
// last_payment_error gives the decline code, else the error code or message.
func (w *worker) handlePaymentIntentFailed(ctx context.Context, j job) error {
	var pi stripe.PaymentIntent
	if err := decodeObject(j.event, &pi); err != nil {
		return err
	}
	customer, invoice := customerID(pi.Customer), invoiceID(pi.Invoice)
	if pi.LatestCharge != nil {
		if err := w.records.link(ctx, pi.LatestCharge.ID, map[string]string{"customer": customer, "invoice": invoice, "payment_intent": pi.ID}); err != nil {
			return err
		}
	}
	reason := ""
	if e := pi.LastPaymentError; e != nil {
		switch {
		case e.DeclineCode != "":
			reason = string(e.DeclineCode)
		case e.Code != "":
			reason = string(e.Code)
		default:
			reason = e.Msg
		}
	}
	return w.paymentFailed(ctx, j, customer, reason, invoice, pi.ID, pi.Amount, pi.Currency, pi.ReceiptEmail)
}

// paymentFailed marks the customer delinquent with the reason, and notifies
// a failed payment that no invoice.payment_failed will notify.
func (w *worker) paymentFailed(ctx context.Context, j job, customer, reason, invoice, payment string, amount int64, currency stripe.Currency, receiptEmail string) error {
	if customer != "" && reason != "" {
		if _, err := w.records.apply(ctx, customerKey(customer), clockPaymentError, j.event.ID, j.event.Created,
			"last_payment_error", reason); err != nil {
			return err
		}
	}
	if stale, err := w.markDelinquent(ctx, j, customer); err != nil || stale || invoice != "" {
		return err
	}
	email, err := w.customerEmail(ctx, customer, receiptEmail)
	if err != nil {
		return err
	}
	return w.notifier.send(ctx, notification{
		Kind: kindPaymentFailed, Customer: customer, Email: email, EventID: j.event.ID, DedupeID: payment,
		Subject: "Your payment of " + money(amount, currency) + " failed",
		Body:    fmt.Sprintf("We could not collect %s (%s). Please update your payment method.", money(amount, currency), orNone(reason)),
	})
}

// markDelinquent sets delinquent on the customer for a payment failure. It reports the failure stale when a newer payment
// event has since cleared delinquent (an invoice.paid handled first), so
// that no payment_failed notice goes out for a debt already settled.
func (w *worker) markDelinquent(ctx context.Context, j job, customer string) (stale bool, err error) {
	if customer == "" {
		return false, nil
	}
	applied, err := w.records.apply(ctx, customerKey(customer), clockPayment, j.event.ID, j.event.Created,
		"delinquent", "true")
	if err != nil || applied {
		return false, err
	}
	delinquent, err := w.records.rdb.HGet(ctx, customerKey(customer), "delinquent").Result()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", customerKey(customer), err)
	}
	if delinquent == "false" {
		j.log.InfoContext(ctx, "a newer payment settled this failure; no payment_failed notice")
		return true, nil
	}
	return false, nil
}
