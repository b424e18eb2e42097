package builtin

import (
	"context"
	"fmt"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/moved"
)

// chargeObject is what handleChargeFailed reads of a stripe.Charge.
type chargeObject struct {
	ID             string               `json:"id"`
	Customer       stripeq.ExpandableID `json:"customer"`
	PaymentIntent  stripeq.ExpandableID `json:"payment_intent"`
	Amount         int64                `json:"amount"`
	Currency       stripe.Currency      `json:"currency"`
	ReceiptEmail   string               `json:"receipt_email"`
	FailureCode    string               `json:"failure_code"`
	FailureMessage string               `json:"failure_message"`
	Outcome        *chargeOutcome       `json:"outcome"`
	// Its invoice, up to 2024-09-30.acacia.
	moved.Payment
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
	LatestCharge     stripeq.ExpandableID `json:"latest_charge"`
	Amount           int64                `json:"amount"`
	Currency         stripe.Currency      `json:"currency"`
	ReceiptEmail     string               `json:"receipt_email"`
	LastPaymentError *paymentError        `json:"last_payment_error"`
	// Its invoice, up to 2024-09-30.acacia.
	moved.Payment
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
// intent, else the charge). See paymentFailed for a charge whose event
// does not say whether it belongs to an invoice.
func (h *handlers) handleChargeFailed(ctx context.Context, e *stripeq.Event[chargeObject]) error {
	ch := e.Object
	p := failedPayment{
		customer: string(ch.Customer), invoice: ch.Invoice, paymentIntent: string(ch.PaymentIntent), charge: ch.ID,
		reason: ch.FailureMessage, amount: ch.Amount, currency: ch.Currency, receiptEmail: ch.ReceiptEmail,
	}
	switch {
	case ch.Outcome != nil && ch.Outcome.Reason != "":
		p.reason = ch.Outcome.Reason
	case ch.FailureCode != "":
		p.reason = ch.FailureCode
	}
	return h.paymentFailed(ctx, e.Meta, p)
}

// handlePaymentIntentFailed is handleChargeFailed for a payment intent: its
// last_payment_error gives the decline code, else the error code or message.
func (h *handlers) handlePaymentIntentFailed(ctx context.Context, e *stripeq.Event[paymentIntentObject]) error {
	pi := e.Object
	p := failedPayment{
		customer: string(pi.Customer), invoice: pi.Invoice, paymentIntent: pi.ID, charge: string(pi.LatestCharge),
		amount: pi.Amount, currency: pi.Currency, receiptEmail: pi.ReceiptEmail,
	}
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
	return h.paymentFailed(ctx, e.Meta, p)
}

// handlePaymentIntentSucceeded links the payment intent's charge to its
// customer (and, up to 2024-09-30.acacia, its invoice), so that a dispute
// of that charge finds its customer at every API version: up to acacia
// the paid invoice names its charge too, since 2025-03-31.basil only the
// payment's own events do.
func (h *handlers) handlePaymentIntentSucceeded(ctx context.Context, e *stripeq.Event[paymentIntentObject]) error {
	pi := e.Object
	b := h.batch(e.Meta)
	b.link(ctx, string(pi.LatestCharge), map[string]string{"customer": string(pi.Customer), "invoice": pi.Invoice.ID, "payment_intent": pi.ID})
	_, err := b.exec(ctx)
	return err
}

// failedPayment is what a charge or payment intent failure says.
type failedPayment struct {
	customer string
	reason   string // decline code, else failure code or message
	// invoice is the invoice the payment belongs to, "" for none; not
	// Known when the event does not say (API version basil or later).
	invoice       moved.ID
	paymentIntent string // "" for a charge without one
	charge        string // "" for a payment intent not yet charged
	amount        int64
	currency      stripe.Currency
	receiptEmail  string
}

// payment is the ID a failed payment is notified once by: its payment
// intent, else its charge.
func (p failedPayment) payment() string {
	if p.paymentIntent != "" {
		return p.paymentIntent
	}
	return p.charge
}

// paymentFailed marks the customer delinquent with the reason, links the
// charge, and notifies a failed payment that no invoice.payment_failed
// will notify. The writes and reads go out in one round trip.
//
// Since 2025-03-31.basil, a charge or payment intent no longer names its
// invoice, and no event of a failed payment does (an invoice's payments
// are InvoicePayment objects). With STRIPE_SECRET_KEY, the payment is
// then retrieved from Stripe at stripe-go's version, 2023-10-16, whose
// charge and payment intent still name their invoice. Without it, the
// invoice is unknown: the notice is left to invoice.payment_failed, which
// every failed invoice attempt sends, so a customer is never told twice;
// a failed payment outside any invoice then gets no notice, and its
// execution's outcome says why.
func (h *handlers) paymentFailed(ctx context.Context, m stripeq.Meta, p failedPayment) error {
	if err := h.resolveInvoice(ctx, m, &p); err != nil {
		return err
	}
	b := h.batch(m)
	b.link(ctx, p.charge, map[string]string{"customer": p.customer, "invoice": p.invoice.ID, "payment_intent": p.paymentIntent})
	if p.customer != "" && p.reason != "" {
		b.apply(ctx, stripeq.Record{Key: records.CustomerKey(p.customer), Clock: records.ClockPaymentError}, m, "last_payment_error", p.reason)
	}
	delinquent := b.markDelinquent(ctx, m, p.customer)
	notify := p.invoice.Known && p.invoice.ID == ""
	email := b.customerEmail(ctx, p.customer, p.receiptEmail, notify)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if settled(ctx, m, res, delinquent, p.customer) {
		return nil
	}
	switch {
	case !p.invoice.Known:
		m.Unknown("invoice", "the event, at API version "+orNone(m.APIVersion)+", does not say whether this payment belongs to an invoice, "+
			"and without STRIPE_SECRET_KEY Stripe cannot be asked; no notice from this event: an invoice's failed attempt is notified by its invoice.payment_failed")
		m.Notified(stripeq.Notice{Kind: records.KindPaymentFailed, Customer: p.customer, Status: stripeq.NoticeSkipped,
			Reason: "whether the payment belongs to an invoice is unknown at API version " + orNone(m.APIVersion)})
		return nil
	case !notify:
		m.Notified(stripeq.Notice{Kind: records.KindPaymentFailed, Customer: p.customer, Status: stripeq.NoticeSkipped,
			Reason: "a payment of invoice " + p.invoice.ID + ": its invoice.payment_failed sends the notice"})
		return nil
	}
	return h.notifier.send(ctx, m, notification{
		Kind: records.KindPaymentFailed, Customer: p.customer, Email: res.email(email), EventID: m.ID, DedupeID: p.payment(),
		Subject: "Your payment of " + money(p.amount, p.currency) + " failed",
		Body:    fmt.Sprintf("We could not collect %s (%s). Please update your payment method.", money(p.amount, p.currency), orNone(p.reason)),
	})
}

// resolveInvoice asks Stripe for the invoice of a failed payment whose
// event does not name it (API version basil or later), when an API key
// is set (moved.LookupInvoice). Without a key, p.invoice stays unknown.
func (h *handlers) resolveInvoice(ctx context.Context, m stripeq.Meta, p *failedPayment) error {
	if p.invoice.Known || h.stripe == nil || p.payment() == "" {
		return nil
	}
	inv, err := moved.LookupInvoice(ctx, h.stripe, m.Account, p.paymentIntent, p.charge)
	if err != nil {
		return stripeq.ClassifyStripe("retrieve payment "+p.payment()+" for its invoice", err)
	}
	p.invoice = inv
	m.Log.DebugContext(ctx, "asked Stripe for the invoice of a failed payment", "payment", p.payment(), "invoice", inv.ID)
	return nil
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
