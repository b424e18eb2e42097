package builtin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/moved"
)

// subscriptionObject is what handleSubscription reads of a
// stripe.Subscription.
type subscriptionObject struct {
	ID                string                    `json:"id"`
	Customer          stripeq.ExpandableID      `json:"customer"`
	Status            stripe.SubscriptionStatus `json:"status"`
	CancelAtPeriodEnd bool                      `json:"cancel_at_period_end"`
	TrialEnd          int64                     `json:"trial_end"`
	// The current period: the subscription's own up to
	// 2024-09-30.acacia, its items' since 2025-03-31.basil.
	moved.Subscription
}

// handleSubscription keeps the subscription record, and the customer's
// subscription_status, for customer.subscription.* events:
//
//	HASH stripeq:subscription:{<sub id>}
//	  customer, status, current_period_end, cancel_at_period_end,
//	  last_event_id, last_event_created
//	HASH stripeq:customer:{<customer id>}
//	  subscription_id, subscription_status, subscription_event_id, subscription_event_created
//
// The customer's fields follow the subscription changed by the newest
// event. trial_will_end also sends a trial_will_end notification.
//
// current_period_end is the subscription's own up to 2024-09-30.acacia;
// since 2025-03-31.basil, the end of its items' current period (the
// earliest, when they differ). An event with neither leaves the field
// unset, never 0, and says so in the execution's outcome.
func (h *handlers) handleSubscription(ctx context.Context, e *stripeq.Event[subscriptionObject]) error {
	s := e.Object
	if s.ID == "" {
		return stripeq.Permanent(errors.New("subscription without an id"))
	}
	customer := string(s.Customer)
	// One round trip. The customer's fields are offered the event whether
	// or not the subscription record took it: an event older than the
	// record's is older than the customer's too, since the newer event that
	// the record holds was applied to the customer as well (or, when its
	// task failed in between, will be on its retry).
	b := h.batch(e.Meta)
	fields := []string{
		"customer", customer,
		"status", string(s.Status),
		"cancel_at_period_end", strconv.FormatBool(s.CancelAtPeriodEnd),
	}
	var unset []string
	if _, end, err := s.Period(); err != nil {
		unset = append(unset, "current_period_end")
		e.Unknown("current_period_end", err.Error()+" at API version "+orNone(e.APIVersion)+"; the record's field is left unset")
	} else {
		fields = append(fields, "current_period_end", strconv.FormatInt(end, 10))
	}
	applied := b.applyUnset(ctx, stripeq.Record{Key: records.SubscriptionKey(s.ID)}, e.Meta, unset, fields...)
	if customer != "" {
		b.apply(ctx, stripeq.Record{Key: records.CustomerKey(customer), Clock: records.ClockSubscription}, e.Meta,
			"subscription_id", s.ID, "subscription_status", string(s.Status))
	}
	trialEnds := e.Type == events.SubscriptionTrialWillEnd
	email := b.customerEmail(ctx, customer, "", trialEnds)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if !res.applied(applied) {
		e.Log.InfoContext(ctx, "older than the subscription record; skipped")
	}
	if trialEnds {
		end := time.Unix(s.TrialEnd, 0).UTC().Format("January 2, 2006")
		return h.notifier.send(ctx, e.Meta, notification{
			Kind: records.KindTrialWillEnd, Customer: customer, Email: res.email(email), EventID: e.ID,
			Subject: "Your trial ends on " + end,
			Body:    fmt.Sprintf("Your trial of subscription %s ends on %s. Your payment method will be charged then.", s.ID, end),
		})
	}
	return nil
}
