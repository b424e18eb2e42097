package main

import (
	"context"
)

// checkoutSessionObject is what handleCheckoutCompleted reads of a
// stripe.CheckoutSession.
type checkoutSessionObject struct {
	ID                string       `json:"id"`
	Customer          expandableID `json:"customer"`
	ClientReferenceID string       `json:"client_reference_id"`
}

// handleCheckoutCompleted links checkout.session.completed's
// client_reference_id (your own user ID, passed to Checkout) to the
// customer:
//
//	HASH stripeq:customer:{<customer id>}
//	  client_reference_id, checkout_event_id, checkout_event_created
func (w *worker) handleCheckoutCompleted(ctx context.Context, j job, s *checkoutSessionObject) error {
	customer := string(s.Customer)
	if customer == "" || s.ClientReferenceID == "" {
		j.log.InfoContext(ctx, "checkout session without a customer or client_reference_id; nothing to link", "session", s.ID)
		return nil
	}
	_, err := w.records.apply(ctx, customerKey(customer), clockCheckout, j.event.ID, j.event.Created,
		"client_reference_id", s.ClientReferenceID)
	return err
}
