package stripeq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/apiversion"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/moved"
)

// Stripe renders each event at one API version (the webhook endpoint's,
// else the account's default), and [Event] decodes data.object into
// stripe-go v76's structs, which follow 2023-10-16. A field that a later
// version moved arrives in them as a zero value. The helpers below read
// the fields that 2025-03-31.basil moved, wherever the event's version
// puts them; [APIVersions] keeps a handler from events it was not written
// for.

// ErrNotAtVersion is returned by the helpers below for a field the
// event's API version does not carry, such as the invoice of a failed
// payment since 2025-03-31.basil, when nothing else can tell it.
var ErrNotAtVersion = errors.New("stripeq: the event does not carry this field at its API version")

// InvoiceSubscription returns the ID of the subscription the invoice of e
// (an invoice.* event) belongs to: invoice.subscription up to
// 2024-09-30.acacia, invoice.parent.subscription_details.subscription
// since 2025-03-31.basil. It returns "" for an invoice of no subscription,
// and an error wrapping ErrNotAtVersion when data.object is not an
// invoice of any version.
func InvoiceSubscription[O any](e *Event[O]) (string, error) {
	var inv moved.Invoice
	if err := moved.Object(e.Raw, &inv); err != nil {
		return "", fmt.Errorf("stripeq: the invoice's subscription: %w", err)
	}
	id := inv.SubscriptionID()
	if !id.Known {
		return "", notAtVersion(e.Meta, "invoice.subscription nor invoice.parent")
	}
	return id.ID, nil
}

// SubscriptionPeriod returns the current period of the subscription of e
// (a customer.subscription.* event): its current_period_start and
// current_period_end up to 2024-09-30.acacia; since 2025-03-31.basil,
// those of its items, the one that ends first when they differ. It
// returns an error wrapping ErrNotAtVersion, never a zero time, when the
// subscription has no period at all.
func SubscriptionPeriod[O any](e *Event[O]) (start, end time.Time, err error) {
	var s moved.Subscription
	if err := moved.Object(e.Raw, &s); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("stripeq: the subscription's period: %w", err)
	}
	from, to, err := s.Period()
	if err != nil {
		return time.Time{}, time.Time{}, notAtVersion(e.Meta, "current_period_end on the subscription or an item")
	}
	return time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC(), nil
}

// PaymentInvoice returns the ID of the invoice the charge or payment
// intent of e (a charge.* or payment_intent.* event) belongs to, "" for a
// payment outside any invoice. Up to 2024-09-30.acacia the object names
// it. Since 2025-03-31.basil no event of a payment does; with a
// StripeSecretKey, PaymentInvoice then retrieves the payment intent (else
// the charge) from Stripe at stripe-go's version, 2023-10-16, which still
// has the field; without one it returns an error wrapping
// ErrNotAtVersion. A Stripe error is classified as [ClassifyStripe] does.
func PaymentInvoice[O any](ctx context.Context, w *Worker, e *Event[O]) (string, error) {
	var p struct {
		ID            string       `json:"id"`
		Object        string       `json:"object"`
		PaymentIntent ExpandableID `json:"payment_intent"`
		moved.Payment
	}
	if err := moved.Object(e.Raw, &p); err != nil {
		return "", fmt.Errorf("stripeq: the payment's invoice: %w", err)
	}
	if p.Invoice.Known {
		return p.Invoice.ID, nil
	}
	if w.stripe == nil {
		return "", notAtVersion(e.Meta, "the invoice of a "+orUnknown(p.Object)+" (no StripeSecretKey to ask Stripe)")
	}
	pi, charge := string(p.PaymentIntent), ""
	switch p.Object {
	case "payment_intent":
		pi = p.ID
	case "charge":
		charge = p.ID
	}
	inv, err := moved.LookupInvoice(ctx, w.stripe.API, e.Account, pi, charge)
	if err != nil {
		return "", ClassifyStripe("retrieve payment "+p.ID+" for its invoice", err)
	}
	return inv.ID, nil
}

func notAtVersion(m Meta, what string) error {
	return fmt.Errorf("%w: %s at API version %s", ErrNotAtVersion, what, orUnknown(m.APIVersion))
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ErrAPIVersion is the permanent error of an event at an API version its
// handler was not declared for with [APIVersions]: the task is archived at
// once, kept with that reason in the Console, and re-run from there once
// a handler for that version is deployed.
var ErrAPIVersion = errors.New("stripeq: the event's API version is not one its handler supports")

// APIVersions declares the Stripe API versions a handler is written for,
// e.g. APIVersions("2023-10-16") for one that reads stripe-go v76's
// structs. An event at any other version is not handed to it: its task is
// archived at once with [ErrAPIVersion] and the reason, instead of being
// processed wrong, and is re-run from the Console once handled. A version
// with a release name ("2025-03-31.basil") also covers that release's
// later monthly versions ("2025-04-30.basil"), which add features only; a
// version without one covers only itself. Without this option a handler
// gets events of every version. With several handlers for one event type,
// each declares its own: an event at a version one of them does not
// support archives the execution with that handler's part failed, after
// the others ran (see [Handle]). It panics on a version that is not one
// Stripe writes (YYYY-MM-DD, optionally ".release").
func APIVersions(versions ...string) HandleOption {
	for _, v := range versions {
		if _, ok := apiversion.Parse(v); !ok {
			panic("stripeq: APIVersions: " + v + " is not a Stripe API version (YYYY-MM-DD or YYYY-MM-DD.release)")
		}
	}
	versions = slices.Clone(versions)
	return func(c *handleConfig) { c.versions = versions }
}

// checkVersion returns nil when the handler of eventType supports events
// at version v, else a permanent error wrapping ErrAPIVersion that says
// what to do.
func (c handleConfig) checkVersion(eventType, v string) error {
	if c.versions == nil || apiversion.Covers(c.versions, v) {
		return nil
	}
	return Permanent(fmt.Errorf("%w: the event is at %s; the handler of %s supports %s. "+
		"Pin the webhook endpoint to a supported version, or declare this one once the handler reads it, then re-run",
		ErrAPIVersion, orUnknown(v), eventType, strings.Join(c.versions, ", ")))
}
