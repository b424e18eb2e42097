// Package records is the public Redis layout of the records stripeq's
// built-in handlers keep (pkg/stripeq/builtin): the key of each record,
// its fields, the clocks that order them, the notifications stream and the
// notification kinds. It is a supported public API, covered by the
// module's compatibility promise (worker/README.md, "What counts as a
// breaking change"): a program of your own reads the customer record
// through CustomerKey. The key names are spelled once, by pkg/keyspace,
// which owns stripeq's whole Redis layout; this package names the part a
// user reads.
//
// Key names and field names are permanent once deployed, like task types:
// records already in Redis carry them.
//
// The braces in a key are literal: a Redis Cluster hash tag, so that every
// key of one object lives in one slot and scripts may touch them together.
//
//	HASH   stripeq:customer:{<customer id>}       the customer record (see CustomerKey)
//	SET    stripeq:customer:{<customer id>}:open_disputes
//	HASH   stripeq:customer:{<customer id>}:dispute_events
//	HASH   stripeq:subscription:{<subscription id>}
//	HASH   stripeq:dispute:{<dispute id>}
//	HASH   stripeq:charge:{<charge id>}           customer, invoice, payment_intent
//	STREAM stripeq:notifications                  kind, customer, email, event_id, subject
//	HASH   stripeq:notified:{stripeq:notifications}:<kind>:<id>   stream_id, emailed
package records

import "github.com/stripeq/stripeq/pkg/keyspace"

// Prefix starts every key of a record.
const Prefix = keyspace.Prefix

// CustomerKey is the customer record, a HASH:
//
//	email, name, deleted ("true"/"false"), last_event_id, last_event_created   (customer.*)
//	subscription_id, subscription_status, subscription_event_id, subscription_event_created
//	delinquent, payment_event_id, payment_event_created
//	last_payment_error, payment_error_event_id, payment_error_event_created
//	client_reference_id, checkout_event_id, checkout_event_created
//	on_hold, last_dispute_id, last_dispute_outcome
func CustomerKey(id string) string { return keyspace.Customer(id) }

// CustomerDisputesKey is the SET of a customer's open disputes, beside the
// customer record in the same slot.
func CustomerDisputesKey(id string) string { return keyspace.CustomerOpenDisputes(id) }

// CustomerDisputeClocksKey is the HASH, beside the customer record, of the
// creation time of the last event applied to the hold per dispute ID.
func CustomerDisputeClocksKey(id string) string { return keyspace.CustomerDisputeEvents(id) }

// SubscriptionKey is the subscription record, a HASH: customer, status,
// current_period_end, cancel_at_period_end, last_event_id,
// last_event_created.
func SubscriptionKey(id string) string { return keyspace.Subscription(id) }

// DisputeKey is the dispute record, a HASH: charge, customer, status,
// amount, currency, reason, evidence_due_by, last_event_id,
// last_event_created.
func DisputeKey(id string) string { return keyspace.Dispute(id) }

// ChargeKey is the HASH that links a charge to its customer, invoice and
// payment intent (fields customer, invoice, payment_intent), learnt from
// charge, invoice and payment intent events, so that a dispute (which
// names only its charge) finds its customer.
func ChargeKey(id string) string { return keyspace.Charge(id) }

// NotificationsStream is the Redis STREAM every notification is appended
// to, with the fields kind, customer, email, event_id and subject.
const NotificationsStream = keyspace.Notifications

// NotifiedKey records that one notification went out: a HASH with the
// stream entry's ID (stream_id) and whether it was emailed (emailed, "0" or
// "1"). Its hash tag is the stream's name, so that it shares the stream's
// Cluster slot and one script can write both.
func NotifiedKey(kind, dedupeID string) string {
	return keyspace.Notified(kind, dedupeID)
}

// Clocks of the records: each names the pair of fields "<clock>_id" and
// "<clock>_created" that order one aspect of a record (see
// stripeq.Record). Aspects of one record change independently: a late
// payment event still marks a customer delinquent after a newer
// customer.updated.
const (
	// ClockRecord orders a record's own object: last_event_id and
	// last_event_created.
	ClockRecord = "last_event"
	// Aspects of the customer record that other objects' events change.
	ClockSubscription = "subscription_event"  // subscription_id, subscription_status
	ClockPayment      = "payment_event"       // delinquent: failures and payments
	ClockPaymentError = "payment_error_event" // last_payment_error: failures only
	ClockCheckout     = "checkout_event"      // client_reference_id
)

// Notification kinds. Like task types, they are stored in Redis and are
// permanent names.
const (
	KindPaymentFailed  = "payment_failed"
	KindUpcomingCharge = "upcoming_charge"
	KindInvoice        = "invoice"
	KindTrialWillEnd   = "trial_will_end"
	KindDisputeOpened  = "dispute_opened"
	KindDisputeClosed  = "dispute_closed"
)
