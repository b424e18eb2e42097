// Package clock is the apply-if-newer script shared by stripeq.Record and
// the built-in handlers' pipelines.
//
// Part of pkg/stripeq's engine: internal, no compatibility promise.
package clock

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Script sets fields of a hash, and deletes others, unless the hash already
// holds data of that aspect from a newer event. Events created in the same
// second are applied in arrival order, and re-applying one event changes
// nothing. It returns 1 when it applied the fields, else 0.
//
// KEYS[1] the hash; ARGV[1] id field; ARGV[2] created field; ARGV[3] event
// ID; ARGV[4] event created; ARGV[5] the number k of fields to delete;
// ARGV[6…5+k] their names; then field, value pairs.
var Script = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if tonumber(ARGV[4]) < last then return 0 end
local k = tonumber(ARGV[5])
if k > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 6, 5 + k)) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[2], ARGV[4], unpack(ARGV, 6 + k))
return 1
`)

// Args are Script's ARGV for the clock named c ("<c>_id", "<c>_created"):
// set the field, value pairs fields and delete the fields unset.
func Args(c, eventID string, created int64, fields, unset []string) []any {
	args := make([]any, 0, 5+len(unset)+len(fields))
	args = append(args, c+"_id", c+"_created", eventID, strconv.FormatInt(created, 10), len(unset))
	for _, f := range unset {
		args = append(args, f)
	}
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}
