package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the records the worker keeps. The braces are literal: a
// Redis Cluster hash tag, so that every key of one object lives in one slot
// and scripts may touch them together.
func customerKey(id string) string     { return "stripeq:customer:{" + id + "}" }
func subscriptionKey(id string) string { return "stripeq:subscription:{" + id + "}" }
func disputeKey(id string) string      { return "stripeq:dispute:{" + id + "}" }

// customerDisputesKey is the SET of a customer's open disputes, beside the
// customer record in the same slot.
func customerDisputesKey(id string) string { return "stripeq:customer:{" + id + "}:open_disputes" }

// customerDisputeClocksKey is the HASH, beside the customer record, of the
// creation time of the last event applied to the hold per dispute ID.
func customerDisputeClocksKey(id string) string {
	return "stripeq:customer:{" + id + "}:dispute_events"
}

// chargeKey is the HASH that links a charge to its customer, invoice and
// payment intent, learnt from charge, invoice and payment intent events,
// so that a dispute (which names only its charge) finds its customer.
func chargeKey(id string) string { return "stripeq:charge:{" + id + "}" }

// A clock names the pair of fields that order one aspect of a record: the
// ID and the creation time of the event that last changed that aspect.
// Stripe delivers out of order, so an event created before the one last
// applied to an aspect must not overwrite it; aspects of one record change
// independently (a late payment event still marks a customer delinquent
// after a newer customer.updated).
type clock string

const (
	// clockRecord orders a record's own object: last_event_id and
	// last_event_created.
	clockRecord clock = "last_event"
	// Aspects of the customer record that other objects' events change.
	clockSubscription clock = "subscription_event"  // subscription_status
	clockPayment      clock = "payment_event"       // delinquent: failures and payments
	clockPaymentError clock = "payment_error_event" // last_payment_error: failures only
	clockCheckout     clock = "checkout_event"      // client_reference_id
)

func (c clock) idField() string      { return string(c) + "_id" }
func (c clock) createdField() string { return string(c) + "_created" }

// applyIfNewer sets fields of a hash unless the hash already holds data of
// that aspect from a newer event. Events created in the same second are
// applied in arrival order, and re-applying one event changes nothing. It
// returns 1 when it applied the fields, else 0.
//
// KEYS[1] the hash; ARGV[1] id field; ARGV[2] created field; ARGV[3] event
// ID; ARGV[4] event created; ARGV[5…] field, value pairs.
var applyIfNewer = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if tonumber(ARGV[4]) < last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[2], ARGV[4], unpack(ARGV, 5))
return 1
`)

// records writes the records to Redis.
type records struct {
	rdb redis.UniversalClient
}

// apply sets fields of the hash at key for the event (id, created) under
// clock c, unless a newer event changed that aspect. It reports whether it
// applied them.
func (r records) apply(ctx context.Context, key string, c clock, eventID string, created int64, fields ...string) (bool, error) {
	n, err := applyIfNewer.Run(ctx, r.rdb, []string{key}, applyArgs(c, eventID, created, fields)...).Int()
	if err != nil {
		return false, fmt.Errorf("update %s: %w", key, err)
	}
	return n == 1, nil
}

// applyArgs are applyIfNewer's ARGV.
func applyArgs(c clock, eventID string, created int64, fields []string) []any {
	args := make([]any, 0, 4+len(fields))
	args = append(args, c.idField(), c.createdField(), eventID, strconv.FormatInt(created, 10))
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}

// batch sends record writes and reads to Redis in one round trip: a
// pipeline, which a Redis Cluster client splits by node. Its commands run
// in the order queued, but not atomically, as the same commands sent one
// by one would; each is safe to run again. Results are read after exec.
type batch struct {
	pipe redis.Pipeliner
	what []string // per queued command, for errors
}

func (r records) batch() *batch { return &batch{pipe: r.rdb.Pipeline()} }

// apply queues records.apply. After exec, the command's value is 1 when it
// applied the fields, else 0. It sends the script itself (EVAL): Redis
// caches it by its hash, and a pipeline cannot fall back from EVALSHA
// after a restart emptied the cache.
func (b *batch) apply(ctx context.Context, key string, c clock, eventID string, created int64, fields ...string) *redis.Cmd {
	b.what = append(b.what, "update "+key)
	return applyIfNewer.Eval(ctx, b.pipe, []string{key}, applyArgs(c, eventID, created, fields)...)
}

// script queues running s, described by what in errors (e.g. "update the
// hold of cus_1"). Like apply, it sends the script itself.
func (b *batch) script(ctx context.Context, what string, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	b.what = append(b.what, what)
	return s.Eval(ctx, b.pipe, keys, args...)
}

// link queues records.link.
func (b *batch) link(ctx context.Context, chargeID string, fields map[string]string) {
	if set := linkFields(fields); chargeID != "" && len(set) > 0 {
		b.what = append(b.what, "update "+chargeKey(chargeID))
		b.pipe.HSet(ctx, chargeKey(chargeID), set)
	}
}

// get queues reading a field of a hash. After exec, the command's value is
// "" when the field is absent.
func (b *batch) get(ctx context.Context, key, field string) *redis.StringCmd {
	b.what = append(b.what, "read "+key)
	return b.pipe.HGet(ctx, key, field)
}

// exec sends the queued commands and returns the first error of one, an
// absent field aside.
func (b *batch) exec(ctx context.Context) error {
	if len(b.what) == 0 {
		return nil
	}
	cmds, err := b.pipe.Exec(ctx)
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("%s: %w", b.what[i], err)
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("update records: %w", err)
	}
	return nil
}

// link records what is known about a charge (customer, invoice, payment
// intent), keeping fields already known when a value is empty.
func (r records) link(ctx context.Context, chargeID string, fields map[string]string) error {
	set := linkFields(fields)
	if chargeID == "" || len(set) == 0 {
		return nil
	}
	if err := r.rdb.HSet(ctx, chargeKey(chargeID), set).Err(); err != nil {
		return fmt.Errorf("update %s: %w", chargeKey(chargeID), err)
	}
	return nil
}

// linkFields are the fields of a charge link that have a value.
func linkFields(fields map[string]string) map[string]any {
	set := make(map[string]any, len(fields))
	for k, v := range fields {
		if v != "" {
			set[k] = v
		}
	}
	return set
}
