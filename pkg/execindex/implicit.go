package execindex

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Implicit values. In most deployments one value of livemode and one
// API version are nearly every event's: an account's endpoint sends live
// events at its pinned version. A set that holds nearly every entry costs
// a ZADD and about 129 bytes an event, and narrows nothing. So each of
// these fields has an implicit value, the first the index saw, kept in
// the implicit hash (keyspace.IndexImplicit): an entry with that value is
// in no set of the field, and a filter on it is answered as "in none of
// the field's other values' sets" (the query script's exclusions; Scan
// does the same). Entries of older releases, which are in the implicit
// value's set too, answer alike: they are in no other value's set.
//
// Writers read the hash once and then every implicitTTL, and set a field
// that is missing to their entry's value (HSETNX: the first writer wins,
// and every writer then reads the winner). Deleting the hash while
// writers run would let a new first value differ from what they cached:
// delete the index's keys only with every api and dashboard stopped
// (pkg/keyspace/README.md).
var implicitFields = []string{"livemode", FieldAPIVersion}

// implicitTTL is how long a writer trusts the implicit values it read.
const implicitTTL = time.Minute

// implicitCache is a writer's copy of the implicit hash.
type implicitCache struct {
	mu   sync.Mutex
	vals map[string]string // field → value
	read time.Time
}

// implicit returns the implicit values of the index, setting those the
// hash lacks to m's. On a Redis error it returns nil: the entry then goes
// into every set of its values, which any reader answers correctly.
func (ix *Index) implicit(ctx context.Context, m stripetask.Metadata) map[string]string {
	c := &ix.impl
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vals != nil && len(c.vals) == len(implicitFields) && time.Since(c.read) < implicitTTL {
		return c.vals
	}
	key := keyspace.IndexImplicit(ix.queue)
	var all *redis.MapStringStringCmd
	_, err := ix.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, key, "livemode", strconv.FormatBool(m.Livemode))
		p.HSetNX(ctx, key, FieldAPIVersion, m.APIVersion)
		all = p.HGetAll(ctx, key)
		return nil
	})
	if err != nil {
		return nil
	}
	c.vals, c.read = all.Val(), time.Now()
	return c.vals
}
