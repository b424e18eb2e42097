package stripetask

import "slices"

// Stripe event types that the worker handles. The api permits exactly these
// by default (STRIPE_EVENTS), and the worker registers a handler for each.
const (
	CustomerCreated = "customer.created"
	CustomerUpdated = "customer.updated"
	CustomerDeleted = "customer.deleted"
)

// handled lists every type above, in a stable order.
var handled = []string{
	CustomerCreated,
	CustomerUpdated,
	CustomerDeleted,
}

// Handled returns the Stripe event types the worker handles. The caller may
// modify the returned slice.
func Handled() []string { return slices.Clone(handled) }

// IsHandled reports whether the worker has a handler for eventType.
func IsHandled(eventType string) bool { return slices.Contains(handled, eventType) }
