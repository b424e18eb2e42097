package main

import (
	"encoding/json"
	"fmt"
)

// The story at 2026-08-26.dahlia is built on stripe-mock v0.203.0's
// fixtures, pruned to its spec (2026-08-26.dahlia): each object is its
// resource's fixture with the story's values laid over it. A key both the
// fixture and the basil story have takes the story's value, so every field
// the versions share has the same value; a key only the story has stays (the
// checks in main fail if the dahlia spec lacks it); a key only the fixture
// has takes the story value dahliaOnly decides for it, and the generator
// fails on one it has no decision for, so no stripe-mock sample value
// (amount_overpaid 149300825, …) slips into the story.

// dahlia renders the basil story's objects at 2026-08-26.dahlia.
type dahlia struct {
	spec     *spec
	res      obj // stripe-mock v0.203.0's fixtures, pruned to spec
	problems []string
}

// newDahlia returns a dahlia on the fixtures res, pruning each resource the
// spec has a schema of to what the spec defines.
func newDahlia(sp *spec, res obj) *dahlia {
	for name, r := range res {
		if _, ok := sp.schemas[name]; ok {
			sp.prune(sp.schema(name), r)
		}
	}
	return &dahlia{spec: sp, res: res}
}

// object returns the basil object b at 2026-08-26.dahlia.
func (d *dahlia) object(b obj) obj {
	kind := b["object"].(string)
	return d.overlay(kind, d.spec.schema(kind), d.template(kind), b, b, false).(obj)
}

// previous returns the basil previous attributes prev of the object that is
// o at 2026-08-26.dahlia: each value laid over o's, so that what did not
// change (the other fields of a changed subscription item) has o's values.
func (d *dahlia) previous(o, prev obj) obj {
	if prev == nil {
		return nil
	}
	kind := o["object"].(string)
	props := d.spec.schema(kind)["properties"].(obj)
	out := obj{}
	for k, v := range prev {
		ps, _ := props[k].(obj)
		out[k] = d.overlay(kind+"."+k, ps, o[k], v, o, true)
	}
	return out
}

// template returns a copy of the fixture of the resource kind, or nil.
func (d *dahlia) template(kind string) obj {
	r, ok := d.res[kind].(obj)
	if !ok {
		return nil
	}
	return deepCopy(r).(obj)
}

// overlay lays story (a value of the basil story at path, whose schema is
// schema) over tmpl (the fixture's value there). root is the story's
// top-level object, for dahliaOnly's decisions. If decided, tmpl is a value
// of the dahlia story already, and a key only it has keeps its value.
func (d *dahlia) overlay(path string, schema obj, tmpl, story any, root obj, decided bool) any {
	switch sv := story.(type) {
	case obj:
		shape, ok := d.spec.objectFor(schema, sv)
		if !ok || shape.props == nil {
			return deepCopy(sv) // a free map (metadata), or no object at all: the checks report that
		}
		tm, _ := tmpl.(obj)
		if tm == nil && !decided {
			// The fixture has null or nothing here: a nested resource
			// (a price, a payment method) takes its own fixture.
			kind, _ := sv["object"].(string)
			tm = d.template(kind)
		}
		out := obj{}
		for k, v := range sv {
			ps, defined := shape.props[k]
			if !defined {
				out[k] = deepCopy(v) // the checks report it
				continue
			}
			out[k] = d.overlay(path+"."+k, ps.(obj), tm[k], v, root, decided)
		}
		for k, v := range tm {
			if _, ok := sv[k]; ok {
				continue
			}
			if decided {
				out[k] = deepCopy(v)
				continue
			}
			p := path + "." + k
			dec, ok := dahliaOnly[p]
			if !ok {
				d.problems = append(d.problems, fmt.Sprintf("%s: only stripe-mock's fixture has it (%s); give it the story's value in dahliaOnly", p, brief(v)))
				continue
			}
			if dec.keep {
				out[k] = v
			} else if x := dec.value(root); x != any(omitted) {
				out[k] = x
			}
		}
		return out
	case []any:
		var et any
		if tl, ok := tmpl.([]any); ok && len(tl) > 0 {
			et = tl[0]
		}
		it := d.spec.items(schema)
		out := make([]any, len(sv))
		for i, e := range sv {
			out[i] = d.overlay(path+"[]", it, et, e, root, decided)
		}
		return out
	default:
		return story
	}
}

// decision is the story's value of a key only the dahlia fixture has.
type decision struct {
	keep  bool               // keep the fixture's value
	value func(root obj) any // else the value, from the story's object; omitted leaves the key out
}

// omitted is a decision's value for a key the object leaves out.
var omitted = new(int)

func keep() decision                     { return decision{keep: true} }
func is(v any) decision                  { return decision{value: func(obj) any { return deepCopy(v) }} }
func from(f func(root obj) any) decision { return decision{value: f} }

// idOrNil is the story object's ID, or nil when it has none (the preview
// invoice of invoice.upcoming).
func idOrNil(root obj) any { return root["id"] }

// dahliaOnly decides the story's value of each key that stripe-mock
// v0.203.0's fixtures have and the basil story has not: fields added after
// 2025-03-31.basil (or that basil removed and a later release brought
// back), by their path, with [] for list elements. keep() keeps the
// fixture's value where it already fits the story: a null for a feature the
// story does not use, or a constant. Features the story does not use are
// null (nullable fields) or empty lists.
var dahliaOnly = map[string]decision{
	// Charge: the declined card payment.
	"charge.billing_details.tax_id":                             keep(),
	"charge.outcome.advice_code":                                keep(),
	"charge.outcome.network_advice_code":                        keep(),
	"charge.outcome.network_decline_code":                       keep(),
	"charge.payment_method_details.card.authorization_code":     keep(),
	"charge.payment_method_details.card.network_transaction_id": keep(),
	"charge.payment_method_details.card.regulated_status":       keep(),
	"charge.payment_method_details.card.transaction_link_id":    keep(),

	// Checkout session: subscription mode, no tax, no discount, no
	// shipping, no Managed Payments.
	"checkout.session.adaptive_pricing":                 keep(), // {"enabled": true}: prices are localized
	"checkout.session.automatic_tax.liability":          is(nil),
	"checkout.session.automatic_tax.provider":           keep(),
	"checkout.session.customer_account":                 keep(),
	"checkout.session.customer_details.business_name":   keep(),
	"checkout.session.customer_details.individual_name": keep(),
	"checkout.session.discounts":                        keep(),
	"checkout.session.integration_identifier":           keep(),
	"checkout.session.managed_payments":                 is(nil),
	"checkout.session.origin_context":                   keep(),
	"checkout.session.permissions":                      is(nil),
	"checkout.session.saved_payment_method_options":     is(nil),
	"checkout.session.wallet_options":                   is(nil),

	// Dispute: a Visa chargeback for fraud.
	"dispute.balance_transactions[].balance_type":   keep(), // "payments"
	"dispute.enhanced_eligibility_types":            is([]any{}),
	"dispute.evidence.enhanced_evidence":            keep(), // {}
	"dispute.evidence_details.enhanced_eligibility": keep(), // {}
	"dispute.payment_method_details.card.case_type": is("chargeback"),
	"dispute.payment_method_details.card.network":   keep(), // "visa", the card's brand
	"invoice.amount_paid_off_stripe":                keep(), // 0
	"invoice.automatic_tax.disabled_reason":         keep(),
	"invoice.automatic_tax.liability":               is(nil),
	"invoice.automatic_tax.provider":                keep(),
	"invoice.automatically_finalizes_at":            keep(),
	"invoice.customer_account":                      keep(),
	"invoice.id":                                    from(func(obj) any { return omitted }), // only invoice.upcoming's preview lacks one
	"invoice.issuer":                                keep(),                                 // {"type": "self"}
	"invoice.lines.data[].invoice":                  from(idOrNil),
	"invoice.lines.data[].pretax_credit_amounts":    is([]any{}),
	"invoice.lines.data[].quantity_decimal":         is("1"),
	"invoice.lines.data[].subtotal":                 is(amount),
	"invoice.total_pretax_credit_amounts":           is([]any{}),

	// Payment intent, and the payment method of its declined attempt.
	"payment_intent.allowed_payment_method_types":                             keep(),
	"payment_intent.customer_account":                                         keep(),
	"payment_intent.excluded_payment_method_types":                            keep(),
	"payment_intent.managed_payments":                                         is(nil),
	"payment_intent.last_payment_error.payment_method.allow_redisplay":        keep(), // "unspecified"
	"payment_intent.last_payment_error.payment_method.billing_details.tax_id": keep(),
	"payment_intent.last_payment_error.payment_method.card.display_brand":     keep(), // "visa"
	"payment_intent.last_payment_error.payment_method.card.regulated_status":  keep(),
	"payment_intent.last_payment_error.payment_method.customer_account":       keep(),

	// Subscription: classic billing mode, no tax, no thresholds, no
	// discount, no billing schedule, no Managed Payments.
	"subscription.automatic_tax.disabled_reason":        keep(),
	"subscription.automatic_tax.liability":              is(nil),
	"subscription.billing_cycle_anchor_config":          is(nil),
	"subscription.billing_mode":                         is(obj{"type": "classic", "flexible": nil}),
	"subscription.billing_schedules":                    is([]any{}),
	"subscription.billing_thresholds":                   is(nil),
	"subscription.cancellation_details.feedback_option": keep(),
	"subscription.customer_account":                     keep(),
	"subscription.invoice_settings":                     keep(), // {"issuer": {"type": "self"}, …: null}
	"subscription.items.data[].billing_thresholds":      is(nil),
	"subscription.items.data[].discounts":               is([]any{}),
	"subscription.items.data[].price.recurring.meter":   keep(),
	"subscription.managed_payments":                     is(nil),
}

// brief returns v as short JSON, for messages.
func brief(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "…"
	}
	return string(b)
}
