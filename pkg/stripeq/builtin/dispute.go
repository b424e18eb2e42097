package builtin

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
)

// disputeObject is what handleDispute reads of a stripe.Dispute.
type disputeObject struct {
	ID              string               `json:"id"`
	Charge          stripeq.ExpandableID `json:"charge"`
	Status          stripe.DisputeStatus `json:"status"`
	Amount          int64                `json:"amount"`
	Currency        stripe.Currency      `json:"currency"`
	Reason          stripe.DisputeReason `json:"reason"`
	EvidenceDetails *evidenceDetails     `json:"evidence_details"`
}

// evidenceDetails is what handleDispute reads of a
// stripe.DisputeEvidenceDetails.
type evidenceDetails struct {
	DueBy int64 `json:"due_by"`
}

// handleDispute keeps the dispute record and the customer's hold for
// charge.dispute.* events:
//
//	HASH stripeq:dispute:{<dp id>}
//	  charge, customer, status, amount, currency, reason, evidence_due_by,
//	  last_event_id, last_event_created
//	SET  stripeq:customer:{<customer id>}:open_disputes
//	HASH stripeq:customer:{<customer id>}
//	  on_hold ("true" while any dispute is open), and when one closes:
//	  last_dispute_id, last_dispute_outcome (won, lost, warning_closed)
//
// A dispute names only its charge; its customer comes from what earlier
// charge, invoice and payment intent events said about that charge, else,
// with STRIPE_SECRET_KEY, from Stripe. created and closed send
// dispute_opened and dispute_closed notifications.
func (h *handlers) handleDispute(ctx context.Context, e *stripeq.Event[disputeObject]) error {
	d := e.Object
	if d.ID == "" {
		return stripeq.Permanent(errors.New("dispute without an id"))
	}
	charge := string(d.Charge)
	customer, err := h.chargeCustomer(ctx, e.Meta, charge, e.Account)
	if err != nil {
		return err
	}
	if customer == "" && charge != "" {
		// Stripe delivers out of order: the events that name the charge's
		// customer may still be on their way. Wait for them a few retries,
		// then record the dispute without a customer.
		if e.Retried < customerWaitRetries {
			return fmt.Errorf("the customer of charge %s is not known yet; retrying to wait for its events", charge)
		}
	}
	dueBy := ""
	if d.EvidenceDetails != nil && d.EvidenceDetails.DueBy > 0 {
		dueBy = strconv.FormatInt(d.EvidenceDetails.DueBy, 10)
	}
	// One round trip for the records, the hold and what the notice needs.
	b := h.batch(e.Meta)
	applied := b.apply(ctx, stripeq.Record{Key: records.DisputeKey(d.ID)}, e.Meta,
		"charge", charge, "customer", customer, "status", string(d.Status),
		"amount", strconv.FormatInt(d.Amount, 10), "currency", string(d.Currency),
		"reason", string(d.Reason), "evidence_due_by", dueBy,
	)
	status := noRef
	if e.Type == events.DisputeCreated {
		// The record's status after the apply: a newer event's when this
		// one did not apply.
		status = b.get(ctx, records.DisputeKey(d.ID), "status")
	}
	if customer == "" {
		e.Log.WarnContext(ctx, "dispute of a charge whose customer is unknown: no hold set", "charge", charge)
	} else {
		// Ordered by its own clock, beside the customer: two events of one
		// dispute handled at once must not let the older one's hold win.
		keys := []string{records.CustomerKey(customer), records.CustomerDisputesKey(customer), records.CustomerDisputeClocksKey(customer)}
		b.script(ctx, "update the hold of "+customer, holdScript, keys,
			d.ID, strconv.FormatBool(disputeOpen(d.Status)), string(d.Status), e.Created.Unix())
	}
	notify := e.Type == events.DisputeCreated || e.Type == events.DisputeClosed
	email := b.customerEmail(ctx, customer, "", notify)
	res, err := b.exec(ctx)
	if err != nil {
		return err
	}
	if !res.applied(applied) {
		e.Log.InfoContext(ctx, "older than the dispute record; skipped")
	}

	var kind, subject string
	switch e.Type {
	case events.DisputeCreated:
		if !res.applied(applied) && closed(res.value(status)) {
			e.Log.InfoContext(ctx, "the dispute closed before its opening was handled; no dispute_opened notice")
			e.Notified(stripeq.Notice{Kind: records.KindDisputeOpened, Customer: customer, Status: stripeq.NoticeSkipped,
				Reason: "the dispute closed before its opening was handled"})
			return nil
		}
		kind, subject = records.KindDisputeOpened, "A payment of "+money(d.Amount, d.Currency)+" is disputed"
	case events.DisputeClosed:
		kind, subject = records.KindDisputeClosed, "The dispute of "+money(d.Amount, d.Currency)+" is closed: "+string(d.Status)
	default:
		return nil
	}
	return h.notifier.send(ctx, e.Meta, notification{
		Kind: kind, Customer: customer, Email: res.email(email), EventID: e.ID, Subject: subject,
		Body: fmt.Sprintf("Dispute %s of charge %s (%s), reason %s: status %s.", d.ID, charge, money(d.Amount, d.Currency), d.Reason, d.Status),
	})
}

// customerWaitRetries is how many retries a dispute waits for its charge's
// customer to become known: with the default backoff, about 3.5 minutes.
const customerWaitRetries = 3

// closed reports whether a dispute record's status says closed.
func closed(status string) bool {
	return status != "" && !disputeOpen(stripe.DisputeStatus(status))
}

// disputeOpen reports whether a dispute still holds the customer.
func disputeOpen(s stripe.DisputeStatus) bool {
	switch s {
	case stripe.DisputeStatusWon, stripe.DisputeStatusLost, stripe.DisputeStatusWarningClosed:
		return false
	}
	return true
}

// holdScript keeps a customer's set of open disputes and on_hold together,
// ignoring an event of a dispute older than the last one applied to it.
//
// KEYS[1] customer record; KEYS[2] open disputes SET; KEYS[3] HASH dispute
// ID → created of its last applied event; ARGV[1] dispute ID; ARGV[2]
// "true" when open; ARGV[3] status; ARGV[4] event created.
var holdScript = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if tonumber(ARGV[4]) < last then return -1 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
if ARGV[2] == 'true' then
  redis.call('SADD', KEYS[2], ARGV[1])
else
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'last_dispute_id', ARGV[1], 'last_dispute_outcome', ARGV[3])
end
local open = redis.call('SCARD', KEYS[2])
redis.call('HSET', KEYS[1], 'on_hold', open > 0 and 'true' or 'false')
return open
`)

// chargeCustomer finds the customer of a charge: from the link earlier
// events recorded, else from Stripe when an API key is set, else "".
func (h *handlers) chargeCustomer(ctx context.Context, m stripeq.Meta, charge, account string) (string, error) {
	if charge == "" {
		return "", nil
	}
	b := h.batch(m)
	linked := b.get(ctx, records.ChargeKey(charge), "customer")
	res, err := b.exec(ctx)
	if err != nil {
		return "", err
	}
	customer := res.value(linked)
	if customer != "" || h.stripe == nil {
		return customer, nil
	}
	if customer, err = h.stripeChargeCustomer(ctx, charge, account); err != nil {
		return "", err
	}
	b = h.batch(m)
	b.link(ctx, charge, map[string]string{"customer": customer})
	_, err = b.exec(ctx)
	return customer, err
}

// stripeChargeCustomer retrieves a charge's customer ID from Stripe.
func (h *handlers) stripeChargeCustomer(ctx context.Context, chargeID, account string) (string, error) {
	p := &stripe.ChargeParams{}
	p.Context = ctx
	if account != "" {
		p.SetStripeAccount(account)
	}
	ch, err := h.stripe.Charges.Get(chargeID, p)
	if err != nil {
		return "", stripeq.ClassifyStripe("retrieve charge "+chargeID, err)
	}
	if ch.Customer == nil {
		return "", nil
	}
	return ch.Customer.ID, nil
}
