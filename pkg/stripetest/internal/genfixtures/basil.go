package main

import "fmt"

// The story at 2025-03-31.basil is the 2023-10-16 story with the breaking
// changes Stripe's changelog lists between the two applied to its objects
// (customer, subscription and its items, invoice and its lines, charge,
// payment intent, dispute, checkout session). Each change below names its
// changelog entry.
//
// 2024-09-30.acacia's breaking changes (https://docs.stripe.com/changelog/acacia:
// Billing Alerts' usage_threshold_config and filter, Terminal's
// customer_consent_collected) touch none of these objects, so none is
// applied. That no key removed by 2024-04-10, 2024-06-20, acacia or basil is
// left over is checked: every key of the basil objects must be one the
// 2026-08-26.dahlia spec defines (main's checks).
//
// Each change drops keys with drop, which panics when a key is missing, so a
// change that no longer applies to the 2023-10-16 objects is noticed.

// toBasil returns o (an object of the 2023-10-16 story) and prev (its
// event's previous_attributes, or nil) as 2025-03-31.basil renders them.
func toBasil(o, prev obj) (obj, obj) {
	o, prev = deepCopy(o).(obj), copyOrNil(prev)
	switch o["object"] {
	case "invoice":
		invoiceParent(o)
		invoicePayments(o)
		invoiceTaxes(o)
		removeDiscount(o)
		for _, l := range get(o, "lines.data").([]any) {
			lineParent(l.(obj))
			linePricing(l.(obj))
			lineTaxes(l.(obj))
		}
	case "subscription":
		legacyUsageBilling(o)
		itemPeriods(o, prev)
		removeDiscount(o)
	case "charge", "payment_intent":
		// https://docs.stripe.com/changelog/basil/2025-03-31/add-support-for-multiple-partial-payments-on-invoices:
		// "Removed the invoice field from the PaymentIntent and Charge
		// objects." An invoice's payments are InvoicePayment objects now.
		drop(o, "invoice")
	case "checkout.session":
		checkoutShippingDetails(o)
	case "customer", "dispute":
		// No breaking change of acacia or basil applies.
	default:
		panic(fmt.Sprintf("toBasil: no changes known for a %v", o["object"]))
	}
	return o, prev
}

// invoiceParent: https://docs.stripe.com/changelog/basil/2025-03-31/adds-new-parent-field-to-invoicing-objects
// "On the Invoice object, we deprecated the quote, subscription,
// subscription_details, and subscription_proration_date fields", replaced by
// parent.subscription_details (or parent.quote_details).
func invoiceParent(in obj) {
	details := in["subscription_details"].(obj)
	in["parent"] = obj{
		"type":          "subscription_details",
		"quote_details": nil,
		"subscription_details": obj{
			"metadata":     details["metadata"],
			"subscription": in["subscription"],
		},
	}
	// subscription_proration_date is only set on previews of prorations;
	// the story's invoices have none.
	drop(in, "quote", "subscription", "subscription_details")
}

// lineParent: the same entry as invoiceParent. "On the Invoice Line Item
// object, we deprecated the type, subscription, subscription_item,
// invoice_item, proration, and proration_details fields", replaced by
// parent.subscription_item_details (or parent.invoice_item_details). The
// line keeps subscription: basil removed only the others (stripe-go
// v82.0.0's notes for basil; the 2026-08-26.dahlia spec still defines it).
func lineParent(l obj) {
	if l["type"] != "subscription" {
		panic(fmt.Sprintf("lineParent: a line of type %v", l["type"]))
	}
	l["parent"] = obj{
		"type":                 "subscription_item_details",
		"invoice_item_details": nil,
		"subscription_item_details": obj{
			"invoice_item":      nil,
			"proration":         l["proration"],
			"proration_details": l["proration_details"],
			"subscription":      l["subscription"],
			"subscription_item": l["subscription_item"],
		},
	}
	drop(l, "type", "subscription_item", "proration", "proration_details")
}

// linePricing: https://docs.stripe.com/changelog/basil/2025-03-31/invoice-pricing-configurations
// "price and plan fields are no longer available on Invoice Items and
// Invoice Line Items"; a line's price is in pricing.price_details, its unit
// amount in pricing.unit_amount_decimal.
func linePricing(l obj) {
	p := l["price"].(obj)
	l["pricing"] = obj{
		"type":                "price_details",
		"price_details":       obj{"price": p["id"], "product": p["product"]},
		"unit_amount_decimal": p["unit_amount_decimal"],
	}
	drop(l, "price")
}

// lineTaxes: https://docs.stripe.com/changelog/basil/2025-03-31/invoice-tax-configurations
// "tax_rates and tax_amounts are no longer available on the Invoice Line
// Item", replaced by taxes. The same release removes the line's
// amount_excluding_tax and unit_amount_excluding_tax (listed with it in
// stripe-go v82.0.0's notes for basil).
func lineTaxes(l obj) {
	l["taxes"] = noTaxes(l["tax_amounts"], "line tax_amounts")
	if len(l["tax_rates"].([]any)) != 0 {
		panic("lineTaxes: the line has tax rates; move them to taxes")
	}
	drop(l, "tax_amounts", "tax_rates", "amount_excluding_tax", "unit_amount_excluding_tax")
}

// invoiceTaxes: the same entry as lineTaxes. "total_tax_amounts is no longer
// available on the Invoice object", replaced by total_taxes; the invoice's
// tax goes with it (stripe-go v82.0.0's notes for basil).
func invoiceTaxes(in obj) {
	in["total_taxes"] = noTaxes(in["total_tax_amounts"], "invoice total_tax_amounts")
	if in["tax"] != nil {
		panic("invoiceTaxes: the invoice has tax; move it to total_taxes")
	}
	drop(in, "total_tax_amounts", "tax")
}

// noTaxes returns the story's (empty) list of taxes, panicking if the
// 2023-10-16 amounts it replaces are not empty.
func noTaxes(amounts any, what string) []any {
	if len(amounts.([]any)) != 0 {
		panic(what + " is not empty; convert it")
	}
	return []any{}
}

// invoicePayments: https://docs.stripe.com/changelog/basil/2025-03-31/add-support-for-multiple-partial-payments-on-invoices
// "Removed the payment_intent, charge, paid, and paid_out_of_band fields
// from the Invoice object" and "the application_fee_amount and
// transfer_data fields"; invoices "also track over-payments"
// (amount_overpaid). An invoice's payments are InvoicePayment objects.
func invoicePayments(in obj) {
	in["amount_overpaid"] = int64(0)
	drop(in, "payment_intent", "charge", "paid", "paid_out_of_band", "application_fee_amount", "transfer_data")
}

// removeDiscount: https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-singular-coupon-promotion-code
// replaces the singular coupon, promotion code and discount by the
// discounts list; the Invoice's and Subscription's discount field is gone
// ("Remove support for discount on Invoice and Subscription" in stripe-go
// v82.0.0's notes for basil); read "from discounts in the responses
// instead", which a 2023-10-16 subscription did not have yet. The story has
// no discount.
func removeDiscount(o obj) {
	if o["discount"] != nil {
		panic("removeDiscount: the object has a discount; move it to discounts")
	}
	drop(o, "discount")
	if _, ok := o["discounts"]; !ok {
		o["discounts"] = []any{}
	}
}

// itemPeriods: https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end
// "current_period_start and current_period_end fields are no longer
// available on the subscription resource"; each subscription item has its
// own (items.data.current_period_start and _end), and "previous_attributes
// on the customer.subscription.updated webhook now include that the
// subscription item's billing period has changed": the items as they were.
func itemPeriods(s, prev obj) {
	start, end := s["current_period_start"], s["current_period_end"]
	for _, it := range get(s, "items.data").([]any) {
		it.(obj)["current_period_start"], it.(obj)["current_period_end"] = start, end
	}
	drop(s, "current_period_start", "current_period_end")
	if prev == nil {
		return
	}
	pstart, okStart := prev["current_period_start"]
	pend, okEnd := prev["current_period_end"]
	if !okStart && !okEnd {
		return
	}
	items := deepCopy(s["items"]).(obj)
	for _, it := range items["data"].([]any) {
		if okStart {
			it.(obj)["current_period_start"] = pstart
		}
		if okEnd {
			it.(obj)["current_period_end"] = pend
		}
	}
	delete(prev, "current_period_start")
	delete(prev, "current_period_end")
	prev["items"] = items
}

// legacyUsageBilling: https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-legacy-usage-based-billing
// "We've removed billing_thresholds and aggregate_usage from all API
// endpoints": from the subscription, its items and their prices.
func legacyUsageBilling(s obj) {
	drop(s, "billing_thresholds")
	for _, it := range get(s, "items.data").([]any) {
		drop(it.(obj), "billing_thresholds")
		drop(get(it.(obj), "price.recurring").(obj), "aggregate_usage")
	}
}

// checkoutShippingDetails: https://docs.stripe.com/changelog/basil/2025-03-31/checkout-session-remove-shipping-details
// "the shipping_details top-level field has moved to the
// collected_information.shipping_details field". The story's session
// collected no shipping details, so it has no collected information.
func checkoutShippingDetails(s obj) {
	if sd := s["shipping_details"]; sd != nil {
		s["collected_information"] = obj{"shipping_details": sd}
	} else {
		s["collected_information"] = nil
	}
	drop(s, "shipping_details")
}

// drop deletes keys from o, panicking if one is missing.
func drop(o obj, keys ...string) {
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			panic(fmt.Sprintf("drop %s: no such key in the %v", k, o["object"]))
		}
		delete(o, k)
	}
}

func copyOrNil(o obj) obj {
	if o == nil {
		return nil
	}
	return deepCopy(o).(obj)
}
