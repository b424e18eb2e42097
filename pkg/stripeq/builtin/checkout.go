package builtin

import (
	"context"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
)

// checkoutSessionObject is what handleCheckoutCompleted reads of a
// stripe.CheckoutSession.
type checkoutSessionObject struct {
	ID                string               `json:"id"`
	Customer          stripeq.ExpandableID `json:"customer"`
	ClientReferenceID string               `json:"client_reference_id"`
}

// handleCheckoutCompleted links checkout.session.completed's
// client_reference_id (your own user ID, passed to Checkout) to the
// customer:
//
//	HASH stripeq:customer:{<customer id>}
//	  client_reference_id, checkout_event_id, checkout_event_created
func (h *handlers) handleCheckoutCompleted(ctx context.Context, e *stripeq.Event[checkoutSessionObject]) error {
	s := e.Object
	customer := string(s.Customer)
	if customer == "" || s.ClientReferenceID == "" {
		e.Log.InfoContext(ctx, "checkout session without a customer or client_reference_id; nothing to link", "session", s.ID)
		e.SetOutcome("nothing to link: the session has no customer or client_reference_id")
		return nil
	}
	b := h.batch(e.Meta)
	b.apply(ctx, stripeq.Record{Key: records.CustomerKey(customer), Clock: records.ClockCheckout}, e.Meta,
		"client_reference_id", s.ClientReferenceID)
	_, err := b.exec(ctx)
	return err
}
