// Package dedupe keeps the small marker that lets the api recognise a
// Stripe event it has already stored, long after the event's task is gone.
//
// asynq rejects a second task with the same ID only while the first one
// exists, and a finished task is kept for TASK_RETENTION (72 h by
// default). Stripe redelivers an event for up to three days, and an
// operator may resend it by hand later, so the api also keeps, for the
// duplicate-detection window (DEDUPE_WINDOW, 7 days by default), one hash
// field per event: a few dozen bytes instead of the whole task.
//
// # Keys
//
// Markers are grouped by the UTC day of the event's "created" time, which
// every delivery of an event carries unchanged, so one lookup finds the
// marker whatever day the redelivery comes:
//
//	stripeq:seen:{<queue>}:<yyyymmdd>   HASH event ID → unix seconds it was first stored
//
// The key expires at the end of that day plus the window. Its hash tag is
// the event's queue, the tag of asynq's own keys for it, so with Redis
// Cluster and QUEUE_SHARDS a marker lives on the node of its event's
// queue. An event created more than the window ago gets no marker: its
// task still catches a redelivery for TASK_RETENTION.
//
// For an engineer with redis-cli:
//
//	HGET stripeq:seen:{stripe}:20261128 evt_1Q…   # when the event was first stored
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package dedupe

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// DefaultWindow is how long after an event's creation a redelivery of it
// is still recognised: 7 days, longer than Stripe's 3 days of retries.
const DefaultWindow = 7 * 24 * time.Hour

// Marks reads and writes the markers of a Redis. It is safe for
// concurrent use.
type Marks struct {
	rdb    redis.UniversalClient
	window time.Duration
	now    func() time.Time
}

// New returns the markers of rdb kept for window after each event's
// creation (DefaultWindow when zero or less).
func New(rdb redis.UniversalClient, window time.Duration) *Marks {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Marks{rdb: rdb, window: window, now: time.Now}
}

// Key returns the key of the markers of the events of queue created on
// the UTC day of created (unix seconds): "stripeq:seen:{<queue>}:<yyyymmdd>".
func Key(queue string, created int64) string {
	return keyspace.Seen(queue, time.Unix(created, 0).UTC().Format("20060102"))
}

// expiry returns when the key of created's day expires: the end of that
// UTC day plus the window.
func (m *Marks) expiry(created int64) time.Time {
	y, mo, d := time.Unix(created, 0).UTC().Date()
	return time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC).Add(m.window)
}

// Check queues on p (a pipeline, or the client itself) the lookup of the
// marker of the event id of queue, created at created (unix seconds); its
// value is true when the event has one.
func (m *Marks) Check(ctx context.Context, p redis.Cmdable, queue, id string, created int64) *redis.BoolCmd {
	return p.HExists(ctx, Key(queue, created), id)
}

// Marks reports whether [Marks.Mark] writes a marker for an event created
// at created (unix seconds): false once its day is past the window.
func (m *Marks) Marks(created int64) bool { return m.expiry(created).After(m.now()) }

// Mark queues on p the writes that mark the event id of queue, created at
// created (unix seconds), as stored. It keeps an existing marker's time.
// It queues nothing for an event created more than the window ago, and
// returns the command whose error tells whether the marker was written
// (nil when nothing was queued). The key's expiry is set on every write,
// to the same instant, so it needs no separate check.
func (m *Marks) Mark(ctx context.Context, p redis.Pipeliner, queue, id string, created int64) redis.Cmder {
	exp := m.expiry(created)
	now := m.now()
	if !exp.After(now) {
		return nil
	}
	key := Key(queue, created)
	cmd := p.HSetNX(ctx, key, id, strconv.FormatInt(now.Unix(), 10))
	p.ExpireAt(ctx, key, exp)
	return cmd
}

// Marker returns the marker of the event id of queue, created at created
// (unix seconds), for taskstore.Store to write in the same script as the
// event's task: as [Marks.Mark] writes it, and only when [Marks.Marks].
// With lookup, the script first looks it up, as [Marks.Check], and stores
// nothing when it exists. It returns nil when there is nothing to write or
// look up.
func (m *Marks) Marker(queue, id string, created int64, lookup bool) *taskstore.Marker {
	exp := m.expiry(created)
	now := m.now()
	write := exp.After(now)
	if !write && !lookup {
		return nil
	}
	return &taskstore.Marker{
		Key:      Key(queue, created),
		Field:    id,
		Value:    strconv.FormatInt(now.Unix(), 10),
		ExpireAt: exp,
		Lookup:   lookup,
		Write:    write,
	}
}
