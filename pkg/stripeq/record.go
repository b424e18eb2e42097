package stripeq

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripeq/internal/clock"
)

// DefaultClock is the clock of a [Record] whose Clock is empty: the fields
// last_event_id and last_event_created.
const DefaultClock = "last_event"

// A Record is one aspect of a Redis HASH kept up to date from Stripe
// events, written only by an event newer than the one that last wrote it
// (apply-if-newer). Stripe delivers events out of order and more than once,
// so a handler that simply writes what each event says ends with whatever
// arrived last; a Record ends with what the newest event said.
//
// The hash keeps, beside the fields written, the ID and creation time of
// the event that last wrote them, in the fields "<Clock>_id" and
// "<Clock>_created". Events created in the same second apply in arrival
// order, and applying one event again changes nothing. Several Records may
// share one Key with different clocks, for aspects that different objects'
// events change independently (a customer's own fields, and its
// subscription status).
type Record struct {
	// Key is the Redis HASH, e.g. "myapp:customer:{cus_123}". Required.
	Key string
	// Clock names the pair of fields that order this aspect of the hash.
	// If empty, DefaultClock.
	Clock string
}

// ErrNoKey is returned by [Record.Apply] for a Record without a Key.
var ErrNoKey = errors.New("stripeq: record without a key")

// Apply sets fields, name and value pairs, on the record for the event m
// unless the record holds this aspect from an event created after m, in
// one atomic script. It reports whether it applied them. rdb is any
// go-redis client (a [Worker.Redis], a Cluster client); the script is
// cached by Redis.
//
// It returns ErrNoKey, an error for an odd number of fields, or Redis's
// error, wrapped with the key.
func (r Record) Apply(ctx context.Context, rdb redis.Scripter, m Meta, fields ...string) (applied bool, err error) {
	if r.Key == "" {
		return false, ErrNoKey
	}
	if len(fields)%2 != 0 {
		return false, fmt.Errorf("stripeq: update %s: odd number of field, value arguments", r.Key)
	}
	c := r.Clock
	if c == "" {
		c = DefaultClock
	}
	n, err := clock.Script.Run(ctx, rdb, []string{r.Key}, clock.Args(c, m.ID, m.Created.Unix(), fields, nil)...).Int()
	if err != nil {
		return false, fmt.Errorf("update %s: %w", r.Key, err)
	}
	return n == 1, nil
}
