package main

import (
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// The story's values: the same at every API version.
const (
	base            = int64(1767225600) // 2026-01-01T00:00:00Z
	minute          = int64(60)
	hour            = 60 * minute
	day             = 24 * hour
	amount          = int64(2000)
	currency        = "usd"
	customerID      = "cus_stripeq_demo"
	customerEmail   = "jenny.rosen@example.com"
	customerName    = "Jenny Rosen"
	subscriptionID  = "sub_stripeq_demo"
	subItemID       = "si_stripeq_demo"
	priceID         = "price_stripeq_pro_monthly"
	productID       = "prod_stripeq_pro"
	invoiceID       = "in_stripeq_demo"
	lineItemID      = "il_stripeq_demo"
	paymentIntentID = "pi_stripeq_demo"
	chargeID        = "ch_stripeq_demo"
	paymentMethodID = "pm_stripeq_demo"
	disputeID       = "dp_stripeq_demo"
	sessionID       = "cs_stripeq_demo"
	clientRef       = "user_42"
	invoicePrefix   = "B4749BD"
)

// createdOffset lists the event types added to the lifecycle after the
// others: each is created offset seconds after the type that follows it, so
// that adding one never moves another event's created time (tests of the
// built-in handlers assert values derived from them).
var createdOffset = map[string]int64{
	// The invoice's payment intent succeeds on its retry, just before
	// Stripe marks the invoice paid.
	"payment_intent.succeeded": -30,
}

// at returns the created time of the event of type t: the i-th type of
// stripetest.Lifecycle, not counting those in createdOffset, is created at
// base + i minutes.
func at(t string) int64 {
	lifecycle := stripetest.Lifecycle()
	if off, ok := createdOffset[t]; ok {
		i := slices.Index(lifecycle, t)
		if i < 0 || i+1 == len(lifecycle) {
			panic("no event type after " + t)
		}
		return at(lifecycle[i+1]) + off
	}
	i := int64(0)
	for _, o := range lifecycle {
		if _, ok := createdOffset[o]; ok {
			continue
		}
		if o == t {
			return base + i*minute
		}
		i++
	}
	panic("unknown event type " + t)
}

type gen struct {
	res         obj
	markDeleted bool
}

// fixture returns a deep copy of stripe-mock's fixture of the resource.
func (g *gen) fixture(name string) obj {
	r, ok := g.res[name].(obj)
	if !ok {
		log.Fatalf("fixtures3.json has no resource %q", name)
	}
	return deepCopy(r).(obj)
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case obj:
		c := make(obj, len(v))
		for k, x := range v {
			c[k] = deepCopy(x)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = deepCopy(x)
		}
		return c
	default:
		return v
	}
}

// set sets the fields at dotted paths ("a.b.c") of o; every segment must
// already exist in o, so that no field the fixture lacks is made up.
// kv alternates paths and values.
func set(o obj, kv ...any) {
	if len(kv)%2 != 0 {
		panic("set: odd argument count")
	}
	for i := 0; i < len(kv); i += 2 {
		path := kv[i].(string)
		segs := strings.Split(path, ".")
		m := o
		for j, s := range segs {
			cur, ok := m[s]
			if !ok {
				panic(fmt.Sprintf("set %s: no field %q in the fixture (object %v)", path, s, o["object"]))
			}
			if j == len(segs)-1 {
				m[s] = kv[i+1]
				break
			}
			if m, ok = cur.(obj); !ok {
				panic(fmt.Sprintf("set %s: %q is not an object", path, s))
			}
		}
	}
}

// add adds a field that stripe-mock's fixture leaves out but the 2023-10-16
// API has.
func add(o obj, key string, v any) {
	if _, ok := o[key]; ok {
		panic("add " + key + ": already present; use set")
	}
	o[key] = v
}

func get(o obj, path string) any {
	var v any = o
	for _, s := range strings.Split(path, ".") {
		v = v.(obj)[s]
	}
	return v
}

func (g *gen) object(t string) (o, prev obj) {
	switch t {
	case "customer.created":
		return g.customer(false), nil
	case "customer.updated":
		return g.customer(true), obj{"phone": nil}
	case "customer.deleted":
		c := g.customer(true)
		if g.markDeleted {
			add(c, "deleted", true)
		}
		return c, nil

	case "checkout.session.completed":
		return g.checkoutSession(), nil

	case "customer.subscription.created":
		return g.subscription("active"), nil
	case "customer.subscription.updated":
		s := g.subscription("trialing")
		return s, obj{
			"current_period_end":     g.periodEnd(at("customer.subscription.created")),
			"current_period_start":   at("customer.subscription.created"),
			"default_payment_method": paymentMethodID,
			"status":                 "active",
			"trial_end":              nil,
			"trial_settings":         obj{"end_behavior": obj{"missing_payment_method": "create_invoice"}},
			"trial_start":            nil,
		}
	case "customer.subscription.trial_will_end":
		return g.subscription("trialing"), nil
	case "customer.subscription.paused":
		return g.subscription("paused"), nil
	case "customer.subscription.resumed":
		return g.subscription("resumed"), nil
	case "customer.subscription.deleted":
		return g.subscription("canceled"), nil

	case "invoice.finalized":
		return g.invoice("finalized"), nil
	case "invoice.upcoming":
		return g.invoice("upcoming"), nil
	case "invoice.payment_failed":
		return g.invoice("payment_failed"), nil
	case "invoice.paid":
		return g.invoice("paid"), nil

	case "charge.failed":
		return g.charge(), nil
	case "payment_intent.payment_failed":
		return g.paymentIntent(false), nil
	case "payment_intent.succeeded":
		return g.paymentIntent(true), nil

	case "charge.dispute.created", "charge.dispute.funds_withdrawn":
		return g.dispute("needs_response"), nil
	case "charge.dispute.updated":
		return g.dispute("under_review"), obj{
			"evidence": obj{
				"customer_email_address": nil,
				"customer_name":          nil,
				"uncategorized_text":     nil,
			},
			"evidence_details": obj{"has_evidence": false, "submission_count": int64(0)},
			"status":           "needs_response",
		}
	case "charge.dispute.closed", "charge.dispute.funds_reinstated":
		return g.dispute("won"), nil
	}
	panic("no object for " + t)
}

// customer: created during checkout; updated adds a phone number.
func (g *gen) customer(updated bool) obj {
	c := g.fixture("customer")
	set(c,
		"id", customerID,
		"created", at("customer.created"),
		"email", customerEmail,
		"name", customerName,
		"invoice_prefix", invoicePrefix,
	)
	if updated {
		set(c,
			"phone", "+15555550123",
			"next_invoice_sequence", int64(2),
		)
	}
	return c
}

func (g *gen) paymentMethod() obj {
	pm := g.fixture("payment_method")
	set(pm,
		"id", paymentMethodID,
		"created", at("checkout.session.completed")-2*minute,
		"customer", customerID,
		"billing_details.email", customerEmail,
		"billing_details.name", customerName,
		"billing_details.phone", nil,
		"card.exp_month", int64(12),
		"card.exp_year", int64(2030),
		// Stripe's test card that is declined for insufficient funds.
		"card.last4", "9995",
		"card.fingerprint", "stripeqDemoFp9995",
		"metadata", obj{},
	)
	return pm
}

func (g *gen) checkoutSession() obj {
	s := g.fixture("checkout.session")
	created := at("customer.created") - 5*minute
	set(s,
		"id", sessionID,
		"created", created,
		"expires_at", created+day,
		"client_reference_id", clientRef,
		"customer", customerID,
		"customer_details.email", customerEmail,
		"customer_details.name", customerName,
		"customer_details.tax_ids", []any{},
		"currency", currency,
		"amount_subtotal", amount,
		"amount_total", amount,
		"total_details", obj{"amount_discount": int64(0), "amount_shipping": int64(0), "amount_tax": int64(0)},
		"mode", "subscription",
		"subscription", subscriptionID,
		"invoice", invoiceID,
		// A subscription-mode session has no payment intent of its own; the
		// subscription's first invoice has it.
		"payment_intent", nil,
		"payment_method_collection", "always",
		"payment_status", "paid",
		"status", "complete",
		"url", nil,
		"success_url", "https://example.com/success?session_id={CHECKOUT_SESSION_ID}",
	)
	return s
}

func (g *gen) periodEnd(start int64) int64 { return start + 31*day }

func (g *gen) price() obj {
	items := get(g.fixture("subscription"), "items.data").([]any)
	p := items[0].(obj)["price"].(obj)
	set(p,
		"id", priceID,
		"created", base-30*day,
		"product", productID,
		"nickname", "StripeQ Pro monthly",
		"unit_amount", amount,
		"unit_amount_decimal", strconv.FormatInt(amount, 10),
	)
	return p
}

// subscription states: active (created), trialing (a trial added by
// customer.subscription.updated; its end pauses the subscription because the
// default payment method was removed), paused, resumed, canceled.
func (g *gen) subscription(state string) obj {
	s := g.fixture("subscription")
	start := at("customer.subscription.created")
	set(s,
		"id", subscriptionID,
		"customer", customerID,
		"created", start,
		"start_date", start,
		"billing_cycle_anchor", start,
		"current_period_start", start,
		"current_period_end", g.periodEnd(start),
		"cancel_at", nil,
		"canceled_at", nil,
		"ended_at", nil,
		"trial_start", nil,
		"trial_end", nil,
		"next_pending_invoice_item_invoice", nil,
		"default_payment_method", paymentMethodID,
		"latest_invoice", invoiceID,
		"status", "active",
		"items.url", "/v1/subscription_items?subscription="+subscriptionID,
	)
	item := get(s, "items.data").([]any)[0].(obj)
	set(item,
		"id", subItemID,
		"created", start,
		"subscription", subscriptionID,
		"price", g.price(),
	)
	if state == "active" {
		return s
	}

	trialStart := at("customer.subscription.updated")
	trialEnd := at("customer.subscription.paused")
	set(s,
		"status", "trialing",
		"trial_start", trialStart,
		"trial_end", trialEnd,
		"current_period_start", trialStart,
		"current_period_end", trialEnd,
		"default_payment_method", nil,
		"trial_settings.end_behavior.missing_payment_method", "pause",
	)
	switch state {
	case "trialing":
	case "paused":
		set(s, "status", "paused")
	case "resumed", "canceled":
		resumed := at("customer.subscription.resumed")
		set(s,
			"status", "active",
			"billing_cycle_anchor", resumed,
			"current_period_start", resumed,
			"current_period_end", g.periodEnd(resumed),
			"default_payment_method", paymentMethodID,
		)
		if state == "canceled" {
			ended := at("customer.subscription.deleted")
			set(s,
				"status", "canceled",
				"canceled_at", ended,
				"ended_at", ended,
				"cancellation_details.reason", "cancellation_requested",
			)
		}
	default:
		panic("subscription state " + state)
	}
	return s
}

// invoice: the subscription's first invoice (finalized, payment_failed, paid)
// or the preview of its next one (upcoming).
func (g *gen) invoice(state string) obj {
	in := g.fixture("invoice")
	created := at("customer.subscription.created")
	finalized := at("invoice.finalized")
	periodEnd := g.periodEnd(created)
	hosted := "https://invoice.stripe.com/i/acct_stripeq_demo/test_stripeq_demo_in"
	set(in,
		"id", invoiceID,
		"account_name", "StripeQ",
		"amount_due", amount,
		"amount_paid", int64(0),
		"amount_remaining", amount,
		"auto_advance", true,
		"billing_reason", "subscription_create",
		"created", created,
		"customer", customerID,
		"customer_email", customerEmail,
		"customer_name", customerName,
		"description", nil,
		"due_date", nil,
		"effective_at", finalized,
		"ending_balance", int64(0),
		"hosted_invoice_url", hosted,
		"invoice_pdf", hosted+"/pdf?s=ap",
		"number", invoicePrefix+"-0001",
		"next_payment_attempt", finalized+hour,
		"payment_intent", paymentIntentID,
		"period_start", created,
		"period_end", created,
		"status", "open",
		"status_transitions.finalized_at", finalized,
		"subscription", subscriptionID,
		"subscription_details.metadata", obj{},
		"subtotal", amount,
		"subtotal_excluding_tax", amount,
		"total", amount,
		"total_excluding_tax", amount,
		"webhooks_delivered_at", created,
		"lines.url", "/v1/invoices/"+invoiceID+"/lines",
	)
	line := get(in, "lines.data").([]any)[0].(obj)
	set(line,
		"id", lineItemID,
		"amount", amount,
		"amount_excluding_tax", amount,
		"description", "1 × StripeQ Pro (at $20.00 / month)",
		"period.start", created,
		"period.end", periodEnd,
		"price", g.price(),
		"subscription", subscriptionID,
		"type", "subscription",
		"unit_amount_excluding_tax", strconv.FormatInt(amount, 10),
	)
	// A subscription line has a subscription_item and no invoice_item; the
	// 2023-10-16 API leaves out (rather than nulls) the one that does not apply.
	delete(line, "invoice_item")
	add(line, "subscription_item", subItemID)

	switch state {
	case "finalized":
	case "upcoming":
		// Stripe sends the preview of the next invoice, which has no ID yet.
		delete(in, "id")
		set(in,
			"billing_reason", "upcoming",
			"created", periodEnd,
			"effective_at", nil,
			"ending_balance", nil,
			"hosted_invoice_url", nil,
			"invoice_pdf", nil,
			"number", nil,
			"next_payment_attempt", periodEnd+hour,
			"payment_intent", nil,
			"period_start", created,
			"period_end", periodEnd,
			"status", "draft",
			"status_transitions.finalized_at", nil,
			"webhooks_delivered_at", nil,
			"lines.url", "/v1/invoices/upcoming/lines?customer="+customerID+"&subscription="+subscriptionID,
		)
		set(line,
			"id", "il_tmp_stripeq_demo",
			"period.start", periodEnd,
			"period.end", g.periodEnd(periodEnd),
		)
	case "payment_failed":
		set(in,
			"attempted", true,
			"attempt_count", int64(1),
			"charge", chargeID,
			"next_payment_attempt", at("invoice.payment_failed")+3*day,
			"last_finalization_error", nil,
		)
	case "paid":
		paid := at("invoice.paid")
		set(in,
			"amount_paid", amount,
			"amount_remaining", int64(0),
			"attempted", true,
			"attempt_count", int64(2),
			"auto_advance", false,
			"charge", chargeID,
			"next_payment_attempt", nil,
			"paid", true,
			"status", "paid",
			"status_transitions.paid_at", paid,
		)
	default:
		panic("invoice state " + state)
	}
	return in
}

func (g *gen) charge() obj {
	c := g.fixture("charge")
	set(c,
		"id", chargeID,
		"amount", amount,
		"amount_captured", int64(0),
		"balance_transaction", nil,
		"billing_details.email", customerEmail,
		"billing_details.name", customerName,
		"calculated_statement_descriptor", "STRIPEQ",
		"captured", false,
		"created", at("invoice.payment_failed"),
		"currency", currency,
		"customer", customerID,
		"description", "Subscription creation",
		"failure_code", "card_declined",
		"failure_message", "Your card was declined.",
		"invoice", invoiceID,
		"outcome", obj{
			"network_status": "declined_by_network",
			"reason":         "insufficient_funds",
			"risk_level":     "normal",
			"risk_score":     int64(32),
			"seller_message": "The bank returned the decline code `insufficient_funds`.",
			"type":           "issuer_declined",
		},
		"paid", false,
		"payment_intent", paymentIntentID,
		"payment_method", paymentMethodID,
		"payment_method_details.card.exp_month", int64(12),
		"payment_method_details.card.exp_year", int64(2030),
		"payment_method_details.card.last4", "9995",
		"payment_method_details.card.fingerprint", "stripeqDemoFp9995",
		"payment_method_details.card.checks.cvc_check", nil,
		"payment_method_details.card.overcapture.maximum_amount_capturable", amount,
		"receipt_url", nil,
		"refunds.url", "/v1/charges/"+chargeID+"/refunds",
		"status", "failed",
	)
	return c
}

// paymentIntent: the invoice's payment intent after its first attempt was
// declined, or (succeeded) after its retry went through.
func (g *gen) paymentIntent(succeeded bool) obj {
	pi := g.fixture("payment_intent")
	set(pi,
		"id", paymentIntentID,
		"amount", amount,
		"canceled_at", nil,
		"client_secret", paymentIntentID+"_secret_stripeqDemoSecret",
		"created", at("invoice.finalized"),
		"currency", currency,
		"customer", customerID,
		"description", "Subscription creation",
		"invoice", invoiceID,
		"last_payment_error", obj{
			"charge":         chargeID,
			"code":           "card_declined",
			"decline_code":   "insufficient_funds",
			"doc_url":        "https://stripe.com/docs/error-codes/card-declined",
			"message":        "Your card has insufficient funds.",
			"payment_method": g.paymentMethod(),
			"type":           "card_error",
		},
		"latest_charge", chargeID,
		"payment_method", nil,
		"status", "requires_payment_method",
	)
	if succeeded {
		set(pi,
			"amount_received", amount,
			"last_payment_error", nil,
			"payment_method", paymentMethodID,
			"status", "succeeded",
		)
	}
	return pi
}

// dispute states: needs_response (created, funds_withdrawn), under_review
// (evidence submitted), won (closed, funds_reinstated).
func (g *gen) dispute(status string) obj {
	d := g.fixture("dispute")
	created := at("charge.dispute.created")
	// Evidence is due at the end of the day 9 days after the dispute.
	dueBy := created - created%day + 9*day - 1
	set(d,
		"id", disputeID,
		"amount", amount,
		"charge", chargeID,
		"created", created,
		"currency", currency,
		"evidence_details.due_by", dueBy,
		"is_charge_refundable", false,
		"payment_intent", paymentIntentID,
		"reason", "fraudulent",
		"status", status,
		"balance_transactions", []any{g.disputeTxn(false)},
	)
	if status == "needs_response" {
		return d
	}
	set(d,
		"evidence.customer_email_address", customerEmail,
		"evidence.customer_name", customerName,
		"evidence.uncategorized_text", "The customer signed up as user_42 and used the service after the charge.",
		"evidence_details.has_evidence", true,
		"evidence_details.submission_count", int64(1),
	)
	if status == "won" {
		set(d, "balance_transactions", []any{g.disputeTxn(false), g.disputeTxn(true)})
	}
	return d
}

// disputeTxn is the balance transaction that withdraws the disputed amount
// and fee, or (reversal) the one that gives them back.
func (g *gen) disputeTxn(reversal bool) obj {
	tx := g.fixture("balance_transaction")
	id, when, sign := "txn_stripeq_dispute_withdrawal", at("charge.dispute.created"), int64(-1)
	category, desc := "dispute", "Chargeback withdrawal for "+chargeID
	if reversal {
		id, when, sign = "txn_stripeq_dispute_reversal", at("charge.dispute.closed"), 1
		category, desc = "dispute_reversal", "Chargeback reversal for "+chargeID
	}
	fee := int64(1500)
	set(tx,
		"id", id,
		"amount", sign*amount,
		"available_on", when+2*day,
		"created", when,
		"currency", currency,
		"description", desc,
		"fee", -sign*fee,
		"fee_details", []any{obj{
			"amount":      -sign * fee,
			"application": nil,
			"currency":    currency,
			"description": "Dispute fee",
			"type":        "stripe_fee",
		}},
		"net", sign*(amount+fee),
		"reporting_category", category,
		"source", disputeID,
		"status", "pending",
		"type", "adjustment",
	)
	return tx
}
