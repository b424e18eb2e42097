// Package builtin is stripeq's built-in handlers, registered through the
// public stripeq API: customer, subscription, dispute and charge records
// in Redis (layout in pkg/records), and notifications to customers (a
// Redis stream, and email with SMTP_URL). The worker command registers
// them; a program of its own includes them with [Register], or leaves them
// out.
//
// Records are kept with apply-if-newer clocks (stripeq.Record), and every
// notification goes out once per (kind, event), however often an event is
// delivered, retried or re-run.
//
// It is a supported public API, covered by the module's compatibility
// promise (worker/README.md, "What counts as a breaking change").
package builtin

import (
	"slices"

	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
)

// Options are the settings of the built-in handlers.
type Options struct {
	// Mailer sends notifications by email. If nil, notifications are only
	// appended to the stream records.NotificationsStream.
	Mailer *Mailer
}

// OptionsFromEnv reads Options through getenv (os.Getenv): SMTP_URL
// (smtp://[user:password@]host[:port], port 587 by default; unset: no
// email) and NOTIFY_FROM (default "stripeq <billing@localhost>"). It
// reports every invalid value at once, by variable name, in an error
// wrapping envconfig.ErrInvalid that never quotes the password.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	env := envconfig.New(getenv)
	var o Options
	if smtpURL := env.Lookup("SMTP_URL"); smtpURL != "" {
		var err error
		if o.Mailer, err = ParseMailer(smtpURL, env.String("NOTIFY_FROM", "stripeq <billing@localhost>")); err != nil {
			env.Fail("SMTP_URL", err.Error())
		}
	}
	return o, env.Err()
}

// Types returns the Stripe event types Register handles: those of
// events.Handled, which the api permits by default (STRIPE_EVENTS).
func Types() []string { return events.Handled() }

// Name is the name of every built-in handler (stripeq.Name), as the
// Console shows its part of an execution.
const Name = "builtin"

// Register registers the built-in handler of every type of [Types] on w,
// each named [Name]. A handler of your own for one of these types runs
// beside it, in the order registered: register yours after Register to
// run it after the built-in one (see stripeq.Handle for what a retry runs
// again). Like stripeq.Handle, it panics when called twice on w.
func Register(w *stripeq.Worker, o Options) {
	h := &handlers{rdb: w.Redis(), stripe: w.Stripe(), notifier: notifier{rdb: w.Redis()}}
	named := stripeq.Name(Name)
	if o.Mailer != nil {
		h.notifier.mail = o.Mailer.m
	}
	for _, t := range []string{events.CustomerCreated, events.CustomerUpdated, events.CustomerDeleted} {
		stripeq.Handle(w, t, h.handleCustomer, named)
	}
	for _, t := range []string{
		events.SubscriptionCreated, events.SubscriptionUpdated, events.SubscriptionDeleted,
		events.SubscriptionPaused, events.SubscriptionResumed, events.SubscriptionTrialWillEnd,
	} {
		stripeq.Handle(w, t, h.handleSubscription, named)
	}
	for _, t := range []string{events.InvoicePaymentFailed, events.InvoicePaid, events.InvoiceFinalized, events.InvoiceUpcoming} {
		stripeq.Handle(w, t, h.handleInvoice, named)
	}
	stripeq.Handle(w, events.ChargeFailed, h.handleChargeFailed, named)
	stripeq.Handle(w, events.PaymentIntentPaymentFailed, h.handlePaymentIntentFailed, named)
	stripeq.Handle(w, events.PaymentIntentSucceeded, h.handlePaymentIntentSucceeded, named)
	for _, t := range []string{
		events.DisputeCreated, events.DisputeUpdated, events.DisputeClosed,
		events.DisputeFundsWithdrawn, events.DisputeFundsReinstated,
	} {
		stripeq.Handle(w, t, h.handleDispute, named)
	}
	stripeq.Handle(w, events.CheckoutSessionCompleted, h.handleCheckoutCompleted, named)
	handled := w.Handled()
	for _, t := range Types() {
		if !slices.Contains(handled, t) {
			panic("builtin: no handler for handled event type " + t)
		}
	}
}

// Mailer sends notifications by SMTP. Make one with [ParseMailer].
type Mailer struct{ m *mailer }

// ParseMailer reads an SMTP_URL (smtp://[user:password@]host[:port], port
// 587 by default) and a NOTIFY_FROM address. The mailer uses STARTTLS when
// the server offers it, and authenticates only over TLS or to a server on
// loopback. Its errors never quote the password.
func ParseMailer(smtpURL, from string) (*Mailer, error) {
	m, err := parseMailer(smtpURL, from)
	if err != nil {
		return nil, err
	}
	return &Mailer{m: m}, nil
}

// handlers holds the dependencies of every built-in handler.
type handlers struct {
	rdb      redis.UniversalClient
	notifier notifier
	stripe   *client.API // nil without STRIPE_SECRET_KEY
}
