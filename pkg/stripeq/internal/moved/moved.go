// Package moved decodes the fields of Stripe objects that an API version
// moved or removed, wherever the event's version puts them. It is the one
// place that knows these places; stripeq's helpers (InvoiceSubscription,
// SubscriptionPeriod, PaymentInvoice) and the built-in handlers decode
// through it.
//
// Its types are embedded in the small structs a handler decodes
// data.object into: each reads its fields in one pass with the rest, and
// tells a field the object does not have (at this version) from one that
// is null.
//
// Since 2025-03-31.basil (Stripe's changelog):
//   - invoice.subscription is invoice.parent.subscription_details.subscription;
//   - invoice.charge, invoice.payment_intent and invoice.paid are removed,
//     and so are charge.invoice and payment_intent.invoice: an invoice's
//     payments are InvoicePayment objects, which no event of a failed
//     payment names;
//   - a subscription's current_period_start and current_period_end are on
//     each of its items.
//
// Part of pkg/stripeq's engine: internal, no compatibility promise.
package moved

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// ID is an expandable ID field (an ID, or the object when expanded) that
// an API version may leave out. Known is false when the object has no such
// field; a null is Known, with ID "".
type ID struct {
	ID    string
	Known bool
}

// UnmarshalJSON implements json.Unmarshaler. Any value but a string, an
// object with an "id" or null is an error.
func (x *ID) UnmarshalJSON(b []byte) error {
	x.Known = true
	switch b[0] {
	case '"':
		return stripetask.Unmarshal(b, &x.ID)
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := stripetask.Unmarshal(b, &o); err != nil {
			return err
		}
		x.ID = o.ID
		return nil
	case 'n':
		x.ID = ""
		return nil
	}
	return errors.New("an expandable ID is a string or an object")
}

// Invoice holds the fields of an invoice whose place changed in basil.
type Invoice struct {
	// Subscription is invoice.subscription, up to acacia.
	Subscription ID `json:"subscription"`
	// Charge and PaymentIntent are invoice.charge and
	// invoice.payment_intent, up to acacia.
	Charge        ID `json:"charge"`
	PaymentIntent ID `json:"payment_intent"`
	// Parent is invoice.parent, since basil.
	Parent *invoiceParent `json:"parent"`
}

type invoiceParent struct {
	SubscriptionDetails *struct {
		Subscription ID `json:"subscription"`
	} `json:"subscription_details"`
}

// SubscriptionID is the invoice's subscription: invoice.subscription up to
// acacia, invoice.parent.subscription_details.subscription since basil.
// An invoice of basil or later with no parent, or a parent of another
// kind (a quote), has none: Known, "". Known is false only for an object
// with neither field, which is not an invoice of any version.
func (i Invoice) SubscriptionID() ID {
	if i.Subscription.Known {
		return i.Subscription
	}
	if i.Parent != nil {
		if d := i.Parent.SubscriptionDetails; d != nil {
			return d.Subscription
		}
		return ID{Known: true}
	}
	return ID{}
}

// Payment holds the field of a charge or payment intent that basil
// removed.
type Payment struct {
	// Invoice is charge.invoice or payment_intent.invoice, up to acacia:
	// the invoice the payment belongs to, "" for none. Since basil it is
	// not Known: the event does not say.
	Invoice ID `json:"invoice"`
}

// Subscription holds the fields of a subscription whose place changed
// in basil.
type Subscription struct {
	// CurrentPeriodStart and CurrentPeriodEnd are the subscription's own,
	// up to acacia.
	CurrentPeriodStart *int64 `json:"current_period_start"`
	CurrentPeriodEnd   *int64 `json:"current_period_end"`
	// Items are its items, whose own current period is set since basil.
	Items *struct {
		Data []struct {
			CurrentPeriodStart *int64 `json:"current_period_start"`
			CurrentPeriodEnd   *int64 `json:"current_period_end"`
		} `json:"data"`
	} `json:"items"`
}

// ErrNoPeriod is Period's error for a subscription with neither a period
// of its own nor an item that has one.
var ErrNoPeriod = errors.New("the subscription has no current period: neither current_period_end nor an item's")

// Period is the subscription's current period, in unix seconds: its own up
// to acacia; since basil, its items'. When items' periods differ (a
// subscription that bills items on their own cycles), it is the one that
// ends first: the subscription's next renewal. It returns ErrNoPeriod when
// the object has none, rather than a zero that would look like a date.
func (s Subscription) Period() (start, end int64, err error) {
	if s.CurrentPeriodEnd != nil && *s.CurrentPeriodEnd > 0 {
		if s.CurrentPeriodStart != nil {
			start = *s.CurrentPeriodStart
		}
		return start, *s.CurrentPeriodEnd, nil
	}
	found := false
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it.CurrentPeriodEnd == nil || *it.CurrentPeriodEnd <= 0 {
				continue
			}
			if !found || *it.CurrentPeriodEnd < end {
				end, start = *it.CurrentPeriodEnd, 0
				if it.CurrentPeriodStart != nil {
					start = *it.CurrentPeriodStart
				}
			}
			found = true
		}
	}
	if !found {
		return 0, 0, ErrNoPeriod
	}
	return start, end, nil
}

// Object decodes data.object of the event JSON raw into v (a pointer to
// one of this package's types, or a struct embedding them).
func Object(raw []byte, v any) error {
	var e struct {
		Data struct {
			Object jsontext.Value `json:"object"`
		} `json:"data"`
	}
	if err := stripetask.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("decode the event: %w", err)
	}
	if len(bytes.TrimSpace(e.Data.Object)) == 0 {
		return errors.New("the event has no data.object")
	}
	return stripetask.Unmarshal(e.Data.Object, v)
}

// LookupInvoice retrieves from Stripe the invoice a payment belongs to,
// for an event that does not say (basil or later): the payment intent,
// else the charge, at stripe-go v76's pinned version (2023-10-16), whose
// payment intent and charge still name their invoice. account is the
// Connect account, "" for the platform. The error is stripe-go's, for the
// caller to classify.
func LookupInvoice(ctx context.Context, api *client.API, account, paymentIntent, charge string) (ID, error) {
	params := stripe.Params{Context: ctx}
	if account != "" {
		params.SetStripeAccount(account)
	}
	var invoice *stripe.Invoice
	switch {
	case paymentIntent != "":
		pi, err := api.PaymentIntents.Get(paymentIntent, &stripe.PaymentIntentParams{Params: params})
		if err != nil {
			return ID{}, err
		}
		invoice = pi.Invoice
	case charge != "":
		ch, err := api.Charges.Get(charge, &stripe.ChargeParams{Params: params})
		if err != nil {
			return ID{}, err
		}
		invoice = ch.Invoice
	default:
		return ID{}, errors.New("no payment intent or charge to look up")
	}
	if invoice == nil {
		return ID{Known: true}, nil
	}
	return ID{ID: invoice.ID, Known: true}, nil
}
