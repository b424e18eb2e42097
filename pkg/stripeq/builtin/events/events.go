// Package events names the Stripe event types the built-in handlers
// (pkg/stripeq/builtin) handle: the api permits exactly these by default
// (STRIPE_EVENTS, read by pkg/stripetask/taskenv), and builtin.Register
// registers a handler for each. It imports nothing of stripeq's, so that
// the api and the dashboard take their default from here without linking
// the handlers. Part of builtin's supported public API: the type names are
// Stripe's, permanent once deployed.
package events

import "slices"

// The Stripe event types the built-in handlers handle.
const (
	CustomerCreated = "customer.created"
	CustomerUpdated = "customer.updated"
	CustomerDeleted = "customer.deleted"

	SubscriptionCreated      = "customer.subscription.created"
	SubscriptionUpdated      = "customer.subscription.updated"
	SubscriptionDeleted      = "customer.subscription.deleted"
	SubscriptionPaused       = "customer.subscription.paused"
	SubscriptionResumed      = "customer.subscription.resumed"
	SubscriptionTrialWillEnd = "customer.subscription.trial_will_end"

	InvoicePaymentFailed       = "invoice.payment_failed"
	ChargeFailed               = "charge.failed"
	PaymentIntentPaymentFailed = "payment_intent.payment_failed"
	PaymentIntentSucceeded     = "payment_intent.succeeded"
	InvoicePaid                = "invoice.paid"
	InvoiceUpcoming            = "invoice.upcoming"
	InvoiceFinalized           = "invoice.finalized"

	DisputeCreated         = "charge.dispute.created"
	DisputeUpdated         = "charge.dispute.updated"
	DisputeClosed          = "charge.dispute.closed"
	DisputeFundsWithdrawn  = "charge.dispute.funds_withdrawn"
	DisputeFundsReinstated = "charge.dispute.funds_reinstated"

	CheckoutSessionCompleted = "checkout.session.completed"
)

// handled lists every type above, in a stable order.
var handled = []string{
	CustomerCreated, CustomerUpdated, CustomerDeleted,
	SubscriptionCreated, SubscriptionUpdated, SubscriptionDeleted,
	SubscriptionPaused, SubscriptionResumed, SubscriptionTrialWillEnd,
	InvoicePaymentFailed, ChargeFailed, PaymentIntentPaymentFailed, PaymentIntentSucceeded,
	InvoicePaid, InvoiceUpcoming, InvoiceFinalized,
	DisputeCreated, DisputeUpdated, DisputeClosed, DisputeFundsWithdrawn, DisputeFundsReinstated,
	CheckoutSessionCompleted,
}

// Handled returns the Stripe event types the built-in handlers handle, the
// default of STRIPE_EVENTS. The caller may modify the returned slice.
func Handled() []string { return slices.Clone(handled) }
