package builtin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/moved"
)

// invoiceObject is what handleInvoice reads of a stripe.Invoice.
type invoiceObject struct {
	ID                 string               `json:"id"`
	Customer           stripeq.ExpandableID `json:"customer"`
	CustomerEmail      string               `json:"customer_email"`
	Number             string               `json:"number"`
	AmountDue          int64                `json:"amount_due"`
	AmountPaid         int64                `json:"amount_paid"`
	Currency           stripe.Currency      `json:"currency"`
	AttemptCount       int64                `json:"attempt_count"`
	NextPaymentAttempt int64                `json:"next_payment_attempt"`
	DueDate            int64                `json:"due_date"`
	PeriodEnd          int64                `json:"period_end"`
	HostedInvoiceURL   string               `json:"hosted_invoice_url"`
	// Its charge and payment intent, up to 2024-09-30.acacia.
	moved.Invoice
}

// handleInvoice handles invoice.payment_failed, invoice.paid,
// invoice.finalized and invoice.upcoming.
//
// payment_failed marks the customer delinquent and sends one
// payment_failed notification per invoice attempt; paid clears delinquent;
// paid and finalized send an invoice email with the amount and the hosted
// invoice URL; upcoming sends an upcoming_charge notice. The customer's
// payment fields follow the newest payment event:
//
//	HASH stripeq:customer:{<customer id>}
//	  delinquent, payment_event_id, payment_event_created
func (h *handlers) handleInvoice(ctx context.Context, e *stripeq.Event[invoiceObject]) error {
	inv := e.Object
	customer := string(inv.Customer)
	// One round trip for the records and the email.
	b := h.batch(e.Meta)
	// Up to acacia, the invoice names its charge, which a dispute may name
	// later; since basil it does not, and charge and payment intent events
	// link the charge instead.
	b.link(ctx, inv.Charge.ID, map[string]string{
		"customer": customer, "invoice": inv.ID, "payment_intent": inv.PaymentIntent.ID,
	})
	delinquent := noRef
	switch e.Type {
	case events.InvoicePaid:
		if customer != "" {
			b.apply(ctx, stripeq.Record{Key: records.CustomerKey(customer), Clock: records.ClockPayment}, e.Meta, "delinquent", "false")
		}
	case events.InvoicePaymentFailed:
		delinquent = b.markDelinquent(ctx, e.Meta, customer)
	}
	email := b.customerEmail(ctx, customer, inv.CustomerEmail, true)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if settled(ctx, e.Meta, res, delinquent, customer) {
		return nil
	}

	n := notification{Customer: customer, Email: res.email(email), EventID: e.ID}
	amount := money(inv.AmountDue, inv.Currency)
	switch e.Type {
	case events.InvoicePaymentFailed:
		// One notice per attempt, whichever event of it comes first.
		n.Kind, n.DedupeID = records.KindPaymentFailed, inv.ID+":attempt:"+strconv.FormatInt(inv.AttemptCount, 10)
		n.Subject = "Your payment of " + amount + " failed"
		n.Body = fmt.Sprintf("We could not collect %s for invoice %s (attempt %d).", amount, orNone(inv.Number), inv.AttemptCount)
		if inv.NextPaymentAttempt > 0 {
			n.Body += " We will try again on " + date(inv.NextPaymentAttempt) + "."
		}
		if inv.HostedInvoiceURL != "" {
			n.Body += "\nUpdate your payment method and pay here: " + inv.HostedInvoiceURL
		}
	case events.InvoicePaid, events.InvoiceFinalized:
		n.Kind = records.KindInvoice
		if e.Type == events.InvoicePaid {
			amount = money(inv.AmountPaid, inv.Currency)
			n.Subject = "Receipt: " + amount + " paid"
			n.Body = fmt.Sprintf("Thank you: invoice %s for %s is paid.", orNone(inv.Number), amount)
		} else {
			n.Subject = "Your invoice for " + amount
			n.Body = fmt.Sprintf("Invoice %s for %s is ready.", orNone(inv.Number), amount)
			if inv.DueDate > 0 {
				n.Body += " It is due on " + date(inv.DueDate) + "."
			}
		}
		if inv.HostedInvoiceURL != "" {
			n.Body += "\nView it: " + inv.HostedInvoiceURL
		}
	case events.InvoiceUpcoming:
		// The upcoming invoice has no ID yet: the event ID identifies it.
		when := inv.NextPaymentAttempt
		if when == 0 {
			when = inv.PeriodEnd
		}
		n.Kind = records.KindUpcomingCharge
		n.Subject = "Upcoming charge of " + amount + " on " + date(when)
		n.Body = fmt.Sprintf("Your next charge of %s will be on %s.", amount, date(when))
	default:
		return nil
	}
	return h.notifier.send(ctx, e.Meta, n)
}

// money renders an amount in the currency's minor unit, e.g. "20.00 USD".
// Zero-decimal currencies (JPY, KRW, …) have no minor unit.
func money(amount int64, currency stripe.Currency) string {
	c := strings.ToUpper(string(currency))
	switch c {
	case "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return fmt.Sprintf("%d %s", amount, c)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, c)
}

func date(unix int64) string { return time.Unix(unix, 0).UTC().Format("January 2, 2006") }
