package stripetask

import "slices"

// Stripe event types that the worker handles. The api permits exactly these
// by default (STRIPE_EVENTS), and the worker registers a handler for each.
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

// Handled returns the Stripe event types the worker handles. The caller may
// modify the returned slice.
func Handled() []string { return slices.Clone(handled) }
