package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Redis keys of the records the worker keeps. The braces are literal: a
// Redis Cluster hash tag, so that every key of one object lives in one slot.
func customerKey(id string) string { return "stripeq:customer:{" + id + "}" }

// Fields every record has: the event that last changed it, and that event's
// creation time (unix seconds), which orders events.
const (
	fieldLastEventID      = "last_event_id"
	fieldLastEventCreated = "last_event_created"
)

// applyIfNewer sets fields of a hash unless the hash already holds data from
// a newer event: Stripe delivers out of order, so an event created before
// the one last applied must not overwrite it. Events created in the same
// second are applied in arrival order. It returns 1 when applied, else 0.
//
// KEYS[1] the hash; ARGV[1] event ID; ARGV[2] event created; ARGV[3…]
// field, value pairs.
var applyIfNewer = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[1], 'last_event_created') or '0')
if tonumber(ARGV[2]) < last then return 0 end
redis.call('HSET', KEYS[1], 'last_event_id', ARGV[1], 'last_event_created', ARGV[2], unpack(ARGV, 3))
return 1
`)

// records writes the records to Redis.
type records struct {
	rdb redis.UniversalClient
}

// apply sets fields of the hash at key from the event (id, created), unless
// a newer event was applied. It reports whether it applied them.
func (r records) apply(ctx context.Context, key, eventID string, created int64, fields ...string) (bool, error) {
	args := make([]any, 0, 2+len(fields))
	args = append(args, eventID, strconv.FormatInt(created, 10))
	for _, f := range fields {
		args = append(args, f)
	}
	n, err := applyIfNewer.Run(ctx, r.rdb, []string{key}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("update %s: %w", key, err)
	}
	return n == 1, nil
}
