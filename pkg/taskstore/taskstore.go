// Package taskstore stores an asynq task, and the duplicate marker that
// goes with it, in one Redis round trip shared by concurrent callers.
//
// asynq's Client sends one EVALSHA of its enqueue script per task, on its
// own; the api then needs a second round trip for its duplicate marker.
// A [Store] runs one Lua script that does both (and, when asked, looks the
// marker up first), through a [redisbatch.Batcher], so the deliveries in
// flight share one pipeline. A Redis round trip costs a write and a read
// system call on both sides, and those dominate the api's work.
//
// The script writes what asynq v0.26's enqueue script writes (rdb.go's
// enqueueCmd: the task hash asynq:{<queue>}:t:<id> with its msg, state
// "pending" and pending_since, and the ID pushed on asynq:{<queue>}:pending),
// and the message is asynq's TaskMessage protobuf ([Encode]). Like
// asynq's RDB, a Store adds the queue to asynq:queues once per process,
// with an SADD in the same pipeline, before the script (that key has no
// hash tag, so it cannot be one of the script's keys on Redis Cluster).
// asynq does not export its encoder, so the layout is copied; the tests
// TestEncodeMatchesAsynq and TestStoreMatchesAsynq fail when an asynq
// upgrade changes it, and TestStoredTaskIsProcessed has an asynq.Server
// run a stored task. Every key the script touches carries the queue's hash
// tag {<queue>}, so it runs on Redis Cluster.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package taskstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redisbatch"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

// Result is what [Store.Store] did.
type Result int

const (
	// Stored means the task is new: it is now pending, and its marker,
	// if any, written.
	Stored Result = iota + 1
	// Conflict means a task with the ID already exists (asynq's
	// ErrTaskIDConflict): nothing was stored, and the marker, if any,
	// is written (or kept).
	Conflict
	// Seen means the marker looked up ([Marker.Lookup]) exists: nothing
	// was stored or written.
	Seen
)

// Errors of [Store.Store]; it also returns redisconn.ErrNotReplicated.
var (
	// ErrInvalid means the task lacks an ID, a type or a queue.
	ErrInvalid = errors.New("invalid task")
)

// Marker is one field of a Redis hash that says a task was stored, kept
// longer than the task itself (pkg/dedupe's duplicate markers).
type Marker struct {
	// Key is the hash's key. It must carry the task's queue's hash tag,
	// {<queue>}, so that it lives in the task's Redis Cluster slot.
	Key string
	// Field is the hash field, Value its value: an existing field keeps
	// its value (HSETNX).
	Field, Value string
	// ExpireAt is set as the key's expiry on every write.
	ExpireAt time.Time
	// Lookup makes Store answer Seen, without storing anything, when the
	// field exists.
	Lookup bool
	// Write makes Store write the field when the task is stored or
	// already exists, in the same script. It is the script's last write,
	// so a script that fails (Store returns an error) writes none. False
	// only looks it up.
	Write bool
}

// Store stores tasks in one Redis. It is safe for concurrent use; the zero
// value is not usable, use [New].
type Store struct {
	batch *redisbatch.Batcher
	// WaitReplicas, when above zero, ends each Store's commands with
	// Redis's WAIT for that many replicas, for at most WaitTimeout
	// (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT), and makes Store return
	// redisconn.ErrNotReplicated when fewer have its write. If zero, the
	// default, Store does not wait. Set them before the first Store.
	WaitReplicas int
	WaitTimeout  time.Duration

	published sync.Map // queue names already added to asynq:queues
}

// New returns a Store sending on batch's Redis.
func New(batch *redisbatch.Batcher) *Store { return &Store{batch: batch} }

// storeScript stores a task as asynq's enqueueCmd does, with its marker.
//
// KEYS[1] asynq:{<queue>}:t:<id>, KEYS[2] asynq:{<queue>}:pending,
// KEYS[3] the marker's hash, when ARGV[4] is not 0.
// ARGV[1] the task message, ARGV[2] the task ID, ARGV[3] now in unix
// nanoseconds, ARGV[4] the marker's mode (0 none, 1 write, 2 look up, 3
// look up then write), ARGV[5] its field, ARGV[6] its value, ARGV[7] its
// key's expiry in unix seconds.
//
// It returns 1 (stored), 0 (the task ID exists) or 2 (the marker exists).
var storeScript = redis.NewScript(`
local mode = tonumber(ARGV[4])
if mode >= 2 and redis.call("HEXISTS", KEYS[3], ARGV[5]) == 1 then
	return 2
end
local stored = 0
if redis.call("EXISTS", KEYS[1]) == 0 then
	redis.call("HSET", KEYS[1],
	           "msg", ARGV[1],
	           "state", "pending",
	           "pending_since", ARGV[3])
	redis.call("LPUSH", KEYS[2], ARGV[2])
	stored = 1
end
if mode % 2 == 1 then
	redis.call("HSETNX", KEYS[3], ARGV[5], ARGV[6])
	redis.call("EXPIREAT", KEYS[3], ARGV[7])
end
return stored
`)

// Store stores t as pending, unless a task with its ID exists, with the
// marker m (nil for none), in one round trip shared with the concurrent
// callers. It returns Stored, Conflict or Seen (see [Result]); an error
// means t may or may not be stored, and the marker is written only when
// the script ran to its end. It returns ErrInvalid for a task without an
// ID, type or queue, redisconn.ErrNotReplicated (with WaitReplicas) when the write
// is not confirmed, and otherwise Redis's error or ctx's.
func (s *Store) Store(ctx context.Context, t Task, m *Marker) (Result, error) {
	if strings.TrimSpace(t.ID) == "" || strings.TrimSpace(t.Type) == "" || strings.TrimSpace(t.Queue) == "" {
		return 0, fmt.Errorf("%w: ID %q, type %q, queue %q", ErrInvalid, t.ID, t.Type, t.Queue)
	}
	keys := []string{keyspace.Task(t.Queue, t.ID), keyspace.Pending(t.Queue)}
	args := []any{Encode(t), t.ID, time.Now().UnixNano(), 0}
	marks := m != nil && m.Write
	if m != nil && (m.Lookup || m.Write) {
		mode := 0
		if m.Write {
			mode |= 1
		}
		if m.Lookup {
			mode |= 2
		}
		keys = append(keys, m.Key)
		args[3] = mode
		args = append(args, m.Field, m.Value, m.ExpireAt.Unix())
	}
	res, err := s.run(ctx, t.Queue, keys, args, marks, false)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis lost its script cache (a restart, a failover, SCRIPT
		// FLUSH): send the script itself, which caches it again.
		res, err = s.run(ctx, t.Queue, keys, args, marks, true)
	}
	return res, err
}

// run sends, on the shared pipeline, the queue's SADD (the first time),
// the script (by its SHA1, or whole when eval) and the WAIT. marks tells
// whether the script writes a marker, which WAIT must then confirm.
func (s *Store) run(ctx context.Context, queue string, keys []string, args []any, marks, eval bool) (Result, error) {
	var sadd *redis.IntCmd
	var script, wait *redis.Cmd
	_, published := s.published.Load(queue)
	err := s.batch.Do(ctx, func(p redis.Pipeliner) {
		if !published {
			sadd = p.SAdd(ctx, keyspace.AsynqQueues, queue)
		}
		if eval {
			script = storeScript.Eval(ctx, p, keys, args...)
		} else {
			script = storeScript.EvalSha(ctx, p, keys, args...)
		}
		if s.WaitReplicas > 0 {
			// WAIT counts the writes of this connection, the script's
			// among them: the batch sends one caller's commands together,
			// in order, on one connection.
			wait = p.Do(ctx, "wait", s.WaitReplicas, s.WaitTimeout.Milliseconds())
		}
	})
	if err != nil {
		return 0, err
	}
	if sadd != nil {
		if err := sadd.Err(); err != nil {
			return 0, fmt.Errorf("sadd %s: %w", keyspace.AsynqQueues, err)
		}
		s.published.Store(queue, true)
	}
	n, err := script.Int64()
	if err != nil {
		return 0, err
	}
	var res Result
	switch n {
	case 1:
		res = Stored
	case 0:
		res = Conflict
	case 2:
		return Seen, nil // nothing written: nothing to wait for
	default:
		return 0, fmt.Errorf("taskstore: the script returned %d", n)
	}
	if wait != nil && (res == Stored || marks) {
		got, err := wait.Int64()
		if err != nil {
			return 0, err
		}
		if got < int64(s.WaitReplicas) {
			return 0, fmt.Errorf("%w: %d of %d within %v", redisconn.ErrNotReplicated, got, s.WaitReplicas, s.WaitTimeout)
		}
	}
	return res, nil
}
