// Package failures is stripeq's own store of failed executions: every
// Stripe task asynq gives up on is kept here, with its payload as stored,
// its headers and each attempt's error, until an operator re-runs it (and
// the re-run completes or fails again, written anew) or discards it, or
// an optional retention expires.
//
// asynq's archive is not enough: archiving one more task trims the
// archive of its queue to 10,000 tasks and drops tasks older than 90 days,
// deleting their task hashes silently. The worker writes a record here
// before asynq archives the task (inside the handler's middleware: when
// the write fails, the task is retried without counting instead of
// archived), so a task trimmed from asynq's archive is still here.
//
// # Keys
//
// Every key of a queue shares the queue's hash tag, which is also the hash
// tag of asynq's keys and of the Console's index (pkg/execindex), so the
// index's scripts read them together on Redis Cluster. With queue "stripe":
//
//	stripeq:fail:{stripe}:all          ZSET task ID → when it failed for good (unix ms)
//	stripeq:fail:{stripe}:t:<task ID>  HASH type, payload, headers (JSON), attempts (JSON), failed, retried, max_retry, err
//	stripeq:fail:{stripe}:att:<task ID> LIST the task's attempt history (JSON each, the latest MaxAttempts): each failed
//	                                   attempt, and a retry's that succeeded; expires 7 days after a failed attempt,
//	                                   the task's retention after it completes
//
// An execution that succeeds on its first attempt (Retry 0) has no list:
// its attempt is the field AttemptField ("stripeq_attempt", compact JSON:
// at and start in unix ns, ms, worker, and outcome true when the
// attempt's outcome line is the Line of the task's result) of asynq's own
// task hash, asynq:{stripe}:t:<task ID>, beside the result: it lives and
// dies with the task (asynq's janitor deletes the hash past the task's
// retention). [Store.Attempts] reads both places.
//
// The worker writes a completed attempt, its outcome (the result field of
// asynq's task hash) and the resolution of a kept failure in one pipeline
// ([Store.CompleteIn]) that also carries the release of the task's global
// concurrency slot: one round trip per execution. It is not a MULTI: the
// slot's key has another hash tag than the queue's with QUEUE_SHARDS, and
// a MULTI across hash slots fails on Redis Cluster. Nothing needs one:
// while the task is active only its own worker writes its history, result
// and kept failure, and a reader that runs between the commands sees the
// attempt a moment before its result. A connection lost in the middle of
// the pipeline can leave a prefix of it applied: at worst an attempt
// pushed to a new list that then lacks its TTL (kept until a later
// attempt, Keep or Resolve of the task; the list is written RPUSH,
// PEXPIRE, LTRIM to keep that window to one command). A first attempt's
// field and result are one HSET, whole or absent.
//
// With QUEUE_SHARDS each shard queue has its own keys under its own tag.
// Key and field names are permanent once deployed.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package failures

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// MaxAttempts is how many attempts a record keeps, the latest ones.
const MaxAttempts = 20

// MaxError is the longest attempt error kept, in bytes.
const MaxError = 2000

// attemptsTTL is how long the attempts of a task that still has retries
// are kept: far longer than its retries take.
const attemptsTTL = 7 * 24 * time.Hour

// KeyPrefix returns the prefix of every key of queue's failures:
// "stripeq:fail:{queue}:".
func KeyPrefix(queue string) string { return keyspace.Fail(queue) }

// AllKey returns the ZSET of queue's kept failures.
func AllKey(queue string) string { return keyspace.FailAll(queue) }

// RecordKey returns the HASH of one kept failure.
func RecordKey(queue, id string) string { return keyspace.FailRecord(queue, id) }

func attemptsKey(queue, id string) string { return keyspace.FailAttempts(queue, id) }

// Attempt is one attempt of an execution.
type Attempt struct {
	At    time.Time `json:"at"`    // when it ended
	Retry int       `json:"retry"` // retries before this attempt: 0 for the first
	// Error is the attempt's error, without asynq's "skip retry for the
	// task: " (see [Message]); "" for an attempt that succeeded.
	Error string `json:"error,omitempty"`
	// Start is when the handler started; zero for an attempt recorded by
	// an older worker.
	Start time.Time `json:"start,omitzero"`
	// MS is how long the handler ran, in milliseconds.
	MS int64 `json:"ms"`
	// Worker is the process that ran it, "hostname:pid".
	Worker string `json:"worker,omitempty"`
	// Outcome is the attempt's outcome in one line (outcome.Outcome's
	// Line), when it noted one.
	Outcome string `json:"outcome,omitempty"`
	// Waiting is true for an attempt that asked to wait without using up
	// a retry (a rate limit: stripeq.RateLimitError): Error says why, and
	// Until until when.
	Waiting bool      `json:"waiting,omitempty"`
	Until   time.Time `json:"until,omitzero"`
	// Handlers are, for an event type with more than one handler, each
	// one's part of the attempt, in the order they ran.
	Handlers []HandlerAttempt `json:"handlers,omitempty"`
}

// HandlerAttempt is one handler's part of an attempt.
type HandlerAttempt struct {
	Name string `json:"name"`
	// Status is one of outcome.Handler's: done, done_before, failed,
	// waiting.
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
	Outcome string `json:"outcome,omitempty"` // the line of what it noted
	MS      int64  `json:"ms,omitempty"`
}

// HandlerAttempts returns parts as the attempt history keeps them, each
// error without asynq's prefix and cut to MaxError.
func HandlerAttempts(parts []outcome.Handler) []HandlerAttempt {
	if len(parts) == 0 {
		return nil
	}
	out := make([]HandlerAttempt, len(parts))
	for i, h := range parts {
		out[i] = HandlerAttempt{Name: h.Name, Status: h.Status, Error: cut(Message(h.Error)), MS: h.MS}
		if o := h.Outcome(); o.Noted() {
			out[i].Outcome = o.Line()
		}
	}
	return out
}

// skipRetryPrefix is what asynq.SkipRetry puts before a permanent error.
var skipRetryPrefix = asynq.SkipRetry.Error() + ": "

// Message is an error as an operator reads it: without asynq's "skip
// retry for the task: ", which every permanent error starts with.
func Message(err string) string { return strings.TrimPrefix(err, skipRetryPrefix) }

// Record is one kept failure: what the task held when asynq gave up.
type Record struct {
	ID       string
	Queue    string
	TaskType string // asynq task type, "stripe:<event type>"
	Payload  []byte // as stored: compressed when PAYLOAD_COMPRESSION was on
	Headers  map[string]string
	Attempts []Attempt // oldest first; at most MaxAttempts
	FailedAt time.Time
	Retried  int
	MaxRetry int
	Err      string // the last attempt's error
}

// TaskInfo returns r as asynq would describe its archived task, for
// readers that handle both alike (rerun.New).
func (r Record) TaskInfo() *asynq.TaskInfo {
	return &asynq.TaskInfo{
		ID: r.ID, Queue: r.Queue, Type: r.TaskType, Payload: r.Payload, Headers: r.Headers,
		State: asynq.TaskStateArchived, MaxRetry: r.MaxRetry, Retried: r.Retried,
		LastErr: r.Err, LastFailedAt: r.FailedAt,
	}
}

// Permanent reports whether the execution info failed for good at once,
// with retries left: archived on a permanent error (stripeq.Permanent, a
// payload that does not parse, a Stripe 4xx), never retried. The
// Console's pages tag such an execution "permanent"; its JSON API says
// so in the field "permanent". A kept failure's is r.TaskInfo()'s.
func Permanent(info *asynq.TaskInfo) bool {
	return info.State == asynq.TaskStateArchived && info.LastErr != "" && info.Retried < info.MaxRetry
}

// Store reads and writes kept failures. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	retention time.Duration // 0: kept until resolved
}

// New returns the store in rdb. retention is FAILED_RETENTION: a record
// older than it expires; 0 keeps records until they are resolved.
func New(rdb redis.UniversalClient, retention time.Duration) *Store {
	return &Store{rdb: rdb, retention: retention}
}

func cut(s string) string {
	if len(s) > MaxError {
		return s[:MaxError] + "…"
	}
	return s
}

// AddAttempt records a failed attempt of task id that has retries left.
func (s *Store) AddAttempt(ctx context.Context, queue, id string, a Attempt) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.AddAttemptIn(ctx, p, queue, id, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failures: attempt of %s: %w", id, err)
	}
	return nil
}

// AddAttemptIn queues in p the writes of [Store.AddAttempt], for a caller
// that sends them with its own commands in one round trip. p must not be
// a MULTI that spans other hash slots (see the package doc).
func (s *Store) AddAttemptIn(ctx context.Context, p redis.Pipeliner, queue, id string, a Attempt) {
	a.Error = cut(Message(a.Error))
	b, _ := json.Marshal(a)
	pushAttempt(ctx, p, attemptsKey(queue, id), b, attemptsTTL)
}

// pushAttempt appends the attempt b to the list k, keeping the latest
// MaxAttempts, which then expires after ttl.
func pushAttempt(ctx context.Context, p redis.Pipeliner, k string, b []byte, ttl time.Duration) {
	p.RPush(ctx, k, b)
	p.PExpire(ctx, k, ttl)
	p.LTrim(ctx, k, -MaxAttempts, -1)
}

// Complete records the attempt a of task id that succeeded, and in the same
// round trip writes result (when not nil) as the task's result in asynq's
// task hash (as asynq's ResultWriter does) and, with resolve, forgets its kept
// failure. When both are set, a.Outcome must be the Line of result (see
// outcome.Parse), as the worker writes them: the field below
// keeps only that it is. The attempt of a first attempt (a.Retry 0) is the field
// AttemptField of asynq's task hash, which must exist (the task is
// active), and goes with it; a later attempt is appended to the task's
// attempt list, which then expires after ttl (the task's retention,
// at least a minute), unless a later attempt renews it; so does the list
// of a first attempt that follows waits (see Attempt.Waiting).
func (s *Store) Complete(ctx context.Context, queue, id string, a Attempt, result []byte, resolve bool, ttl time.Duration) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.CompleteIn(ctx, p, queue, id, a, result, resolve, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failures: complete %s: %w", id, err)
	}
	return nil
}

// CompleteIn queues in p the writes of [Store.Complete], for a caller that
// sends them with its own commands in one round trip (the worker adds the
// release of the task's global concurrency slot). p must not be a MULTI
// that spans other hash slots (see the package doc).
func (s *Store) CompleteIn(ctx context.Context, p redis.Pipeliner, queue, id string, a Attempt, result []byte, resolve bool, ttl time.Duration) {
	tk := keyspace.Task(queue, id)
	if a.Retry == 0 {
		f := compactOf(a, result)
		if result != nil {
			p.HSet(ctx, tk, "result", result, AttemptField, f)
		} else {
			p.HSet(ctx, tk, AttemptField, f)
		}
		// Attempts that waited (a rate limit) do not count as retries,
		// so a first attempt's success may follow some in the list: it
		// expires with the task.
		p.PExpire(ctx, attemptsKey(queue, id), max(ttl, time.Minute))
	} else {
		b, _ := json.Marshal(a)
		pushAttempt(ctx, p, attemptsKey(queue, id), b, max(ttl, time.Minute))
		if result != nil {
			p.HSet(ctx, tk, "result", result)
		}
	}
	if resolve {
		p.Del(ctx, RecordKey(queue, id))
		p.ZRem(ctx, AllKey(queue), id)
	}
}

// DoneField is the field of asynq's task hash that holds, for an event
// type with several handlers, the part of each handler that succeeded in
// an attempt of the execution that failed or waited: a JSON array of
// outcome.Handler. A retry of the execution (asynq's, or the Console's
// run-now of an archived one) reads it, does not run those handlers
// again, and keeps their parts in its outcome; a re-run copy is a new
// task, with none. The name is permanent once deployed.
const DoneField = "stripeq_done"

// SetDoneIn queues in p the write of the parts of the handlers of task id
// that succeeded (DoneField), for the next attempt; none deletes the
// field.
func (s *Store) SetDoneIn(ctx context.Context, p redis.Pipeliner, queue, id string, done []outcome.Handler) {
	if len(done) == 0 {
		p.HDel(ctx, keyspace.Task(queue, id), DoneField)
		return
	}
	b, _ := json.Marshal(done)
	p.HSet(ctx, keyspace.Task(queue, id), DoneField, b)
}

// Done returns the parts of the handlers of task id that succeeded in an
// earlier attempt (DoneField); none when the field is absent.
func (s *Store) Done(ctx context.Context, queue, id string) ([]outcome.Handler, error) {
	b, err := s.rdb.HGet(ctx, keyspace.Task(queue, id), DoneField).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failures: handlers done of %s: %w", id, err)
	}
	var done []outcome.Handler
	if err := json.Unmarshal(b, &done); err != nil {
		return nil, fmt.Errorf("failures: handlers done of %s: %w", id, err)
	}
	return done, nil
}

// AttemptField is the field of asynq's task hash that holds the attempt
// of an execution that succeeded on its first attempt (see the package
// doc). The name is permanent once deployed.
const AttemptField = "stripeq_attempt"

// compact is an Attempt as the AttemptField keeps it. Its error is always
// "" (the attempt succeeded) and its outcome line is rebuilt from the
// task's result.
type compact struct {
	At int64 `json:"at"` // unix ns
	// Took is how long the handler ran, in µs: the attempt started Took
	// before At, and ran Took/1000 ms. Nil in what older workers wrote,
	// which gave Start and MS instead, and for an attempt whose start is
	// unknown (MS only).
	Took    *int64 `json:"took,omitempty"`
	Start   int64  `json:"start,omitempty"` // unix ns; 0 for none (older workers)
	MS      int64  `json:"ms,omitempty"`    // older workers, or without a start
	Retry   int    `json:"retry,omitempty"`
	Worker  string `json:"worker,omitempty"`
	Outcome bool   `json:"outcome,omitempty"` // the outcome line is the result's Line
	Line    string `json:"line,omitempty"`    // the outcome line, when the result does not give it
}

// compactOf returns a as the AttemptField keeps it, with result the
// task's result written with it (nil: none). A start and a duration go
// as one number (Took), which keeps every completed execution's field
// about 30 bytes shorter than a start in ns and the ms beside it.
func compactOf(a Attempt, result []byte) []byte {
	c := compact{At: a.At.UnixNano(), Retry: a.Retry, Worker: a.Worker}
	if a.Start.IsZero() || a.Start.After(a.At) {
		c.MS = a.MS
	} else {
		took := a.At.Sub(a.Start).Microseconds()
		c.Took = &took
	}
	switch {
	case a.Outcome != "" && result != nil:
		c.Outcome = true // the caller's promise: a.Outcome is result's Line
	case a.Outcome != "":
		c.Line = a.Outcome
	}
	b, _ := json.Marshal(c)
	return b
}

// attempt returns the Attempt that b, an AttemptField, keeps, with result
// the task's result.
func (c compact) attempt(result []byte) Attempt {
	a := Attempt{At: time.Unix(0, c.At).UTC(), MS: c.MS, Retry: c.Retry, Worker: c.Worker, Outcome: c.Line}
	switch {
	case c.Took != nil:
		took := time.Duration(*c.Took) * time.Microsecond
		a.Start, a.MS = a.At.Add(-took), took.Milliseconds()
	case c.Start != 0:
		a.Start = time.Unix(0, c.Start).UTC()
	}
	if c.Outcome {
		if o, ok := outcome.Parse(result); ok {
			a.Outcome = o.Line()
			a.Handlers = HandlerAttempts(o.Handlers)
		}
	}
	return a
}

// Keep stores r, whose last attempt is last, as a failure asynq gives up
// on. The attempts recorded by AddAttempt are moved into it. Keeping the
// same ID again replaces the record (a re-run that failed again) and
// keeps its earlier attempts. It also drops up to 100 records past the
// retention from the ZSET of the queue.
func (s *Store) Keep(ctx context.Context, r Record, last Attempt) error {
	last.Error = cut(Message(last.Error))
	b, _ := json.Marshal(last)
	headers, _ := json.Marshal(r.Headers)
	now := r.FailedAt
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := "-1"
	if s.retention > 0 {
		cutoff = strconv.FormatInt(now.Add(-s.retention).UnixMilli(), 10)
	}
	err := keepScript.Run(ctx, s.rdb,
		[]string{AllKey(r.Queue), RecordKey(r.Queue, r.ID), attemptsKey(r.Queue, r.ID)},
		r.ID, r.TaskType, r.Payload, headers, b, now.UnixMilli(), r.Retried, r.MaxRetry, cut(r.Err),
		MaxAttempts, s.retention.Milliseconds(), cutoff, keyspace.FailRecord(r.Queue, "")).Err()
	if err != nil {
		return fmt.Errorf("failures: keep %s: %w", r.ID, err)
	}
	return nil
}

// keepScript: KEYS all, record, attempts; ARGV id, type, payload, headers,
// last attempt, failed ms, retried, max retry, err, max attempts,
// retention ms (0: none), cutoff ms (-1: none), record key prefix.
var keepScript = redis.NewScript(`
local prev = {}
local old = redis.call("HGET", KEYS[2], "attempts")
if old then prev = cjson.decode(old) end
for _, a in ipairs(redis.call("LRANGE", KEYS[3], 0, -1)) do prev[#prev + 1] = cjson.decode(a) end
prev[#prev + 1] = cjson.decode(ARGV[5])
local max = tonumber(ARGV[10])
local keep = {}
for i = math.max(1, #prev - max + 1), #prev do keep[#keep + 1] = prev[i] end
local attempts = "[]"
if #keep > 0 then attempts = cjson.encode(keep) end
redis.call("HSET", KEYS[2], "type", ARGV[2], "payload", ARGV[3], "headers", ARGV[4], "attempts", attempts,
  "failed", ARGV[6], "retried", ARGV[7], "max_retry", ARGV[8], "err", ARGV[9])
redis.call("DEL", KEYS[3])
redis.call("ZADD", KEYS[1], ARGV[6], ARGV[1])
local ttl = tonumber(ARGV[11])
if ttl > 0 then redis.call("PEXPIRE", KEYS[2], ttl) else redis.call("PERSIST", KEYS[2]) end
if ARGV[12] ~= "-1" then
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[12], "LIMIT", 0, 100)) do
    redis.call("DEL", ARGV[13] .. id)
    redis.call("ZREM", KEYS[1], id)
  end
end
return 1
`)

// Resolve forgets task id's failure and attempt history: it was re-run
// (asynq holds it again) or discarded. (A completion resolves through
// Complete, which keeps the history.) It is not an error when
// nothing is kept.
func (s *Store) Resolve(ctx context.Context, queue, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, RecordKey(queue, id), attemptsKey(queue, id))
		p.HDel(ctx, keyspace.Task(queue, id), AttemptField, DoneField)
		p.ZRem(ctx, AllKey(queue), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failures: resolve %s: %w", id, err)
	}
	return nil
}

// KeptAt returns when task id's kept failure failed for good
// (Record.FailedAt, to the millisecond), and false when none is kept.
// [Store.Reopen] takes it to tell that failure from one kept later.
func (s *Store) KeptAt(ctx context.Context, queue, id string) (time.Time, bool, error) {
	v, err := s.rdb.HGet(ctx, RecordKey(queue, id), "failed").Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("failures: kept %s: %w", id, err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("failures: kept %s: failed time %q: %w", id, v, err)
	}
	return time.UnixMilli(ms), true, nil
}

// Reopen forgets task id's kept failure that failed at failed, because
// asynq runs the task again (an operator's "run now" of an archived task),
// and moves its attempts back into the task's attempt history, so the
// history goes on with the new attempts. failed is what [Store.KeptAt]
// read before the task was run: once it runs, a worker may fail it again
// and keep that failure (with the earlier attempts) before Reopen is
// called, and that failure stays. It is not an error when the failure is
// no longer kept, or another is.
func (s *Store) Reopen(ctx context.Context, queue, id string, failed time.Time) error {
	err := reopenScript.Run(ctx, s.rdb, []string{AllKey(queue), RecordKey(queue, id), attemptsKey(queue, id)},
		id, MaxAttempts, attemptsTTL.Milliseconds(), failed.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("failures: reopen %s: %w", id, err)
	}
	return nil
}

// reopenScript: KEYS all, record, attempts; ARGV id, max attempts, TTL ms,
// failed ms of the failure to reopen. Returns 1 when it reopened it, 0
// when that failure is not the one kept.
var reopenScript = redis.NewScript(`
if redis.call("HGET", KEYS[2], "failed") ~= ARGV[4] then return 0 end
local old = redis.call("HGET", KEYS[2], "attempts")
if old then
  local prev = cjson.decode(old)
  local later = redis.call("LRANGE", KEYS[3], 0, -1)
  redis.call("DEL", KEYS[3])
  for _, a in ipairs(prev) do redis.call("RPUSH", KEYS[3], cjson.encode(a)) end
  for _, a in ipairs(later) do redis.call("RPUSH", KEYS[3], a) end
  redis.call("LTRIM", KEYS[3], -tonumber(ARGV[2]), -1)
  redis.call("PEXPIRE", KEYS[3], ARGV[3])
end
redis.call("DEL", KEYS[2])
redis.call("ZREM", KEYS[1], ARGV[1])
return 1
`)

// ErrNotKept means no failure is kept for the task.
var ErrNotKept = errors.New("no failure kept")

// Get returns the kept failure of task id in queue, or ErrNotKept.
func (s *Store) Get(ctx context.Context, queue, id string) (Record, error) {
	h, err := s.rdb.HGetAll(ctx, RecordKey(queue, id)).Result()
	if err != nil {
		return Record{}, fmt.Errorf("failures: get %s: %w", id, err)
	}
	if len(h) == 0 {
		return Record{}, ErrNotKept
	}
	r := Record{ID: id, Queue: queue, TaskType: h["type"], Payload: []byte(h["payload"]), Err: h["err"]}
	_ = json.Unmarshal([]byte(h["headers"]), &r.Headers)
	_ = json.Unmarshal([]byte(h["attempts"]), &r.Attempts)
	ms, _ := strconv.ParseInt(h["failed"], 10, 64)
	r.FailedAt = time.UnixMilli(ms)
	r.Retried, _ = strconv.Atoi(h["retried"])
	r.MaxRetry, _ = strconv.Atoi(h["max_retry"])
	return r, nil
}

// Attempts returns the attempt history of task id, oldest first: every
// attempt so far of a task asynq holds (for the task's retention after it
// completed), from the attempt list and the AttemptField of asynq's task
// hash, in one round trip. A kept failure's attempts are in its Record.
func (s *Store) Attempts(ctx context.Context, queue, id string) ([]Attempt, error) {
	var raw *redis.StringSliceCmd
	var field *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		raw = p.LRange(ctx, attemptsKey(queue, id), 0, -1)
		field = p.HMGet(ctx, keyspace.Task(queue, id), AttemptField, "result")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failures: attempts of %s: %w", id, err)
	}
	out := make([]Attempt, 0, len(raw.Val())+1)
	for _, r := range raw.Val() {
		var a Attempt
		if json.Unmarshal([]byte(r), &a) == nil {
			out = append(out, a)
		}
	}
	if v := field.Val(); len(v) == 2 {
		if f, ok := v[0].(string); ok {
			var c compact
			if json.Unmarshal([]byte(f), &c) == nil {
				result, _ := v[1].(string)
				out = append(out, c.attempt([]byte(result)))
				// Both places hold attempts only after a run-now of a
				// failure (its attempts went back to the list) or a
				// completed task run again after its lease expired:
				// order them by when they ended.
				if len(out) > 1 {
					slices.SortStableFunc(out, func(x, y Attempt) int { return x.At.Compare(y.At) })
				}
			}
		}
	}
	return out, nil
}

// Count returns how many failures queue keeps.
func (s *Store) Count(ctx context.Context, queue string) (int64, error) {
	n, err := s.rdb.ZCard(ctx, AllKey(queue)).Result()
	if err != nil {
		return 0, fmt.Errorf("failures: count: %w", err)
	}
	return n, nil
}

// IDs returns the IDs of queue's kept failures at ranks [start, stop],
// oldest first, for walks in chunks.
func (s *Store) IDs(ctx context.Context, queue string, start, stop int64) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, AllKey(queue), start, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("failures: list: %w", err)
	}
	return ids, nil
}

// Prune drops from queue's ZSET every failure whose record expired
// (FAILED_RETENTION), in chunks of 1,000, and returns how many.
func (s *Store) Prune(ctx context.Context, queue string) (int, error) {
	const chunk = 1000
	dropped := 0
	for start := int64(0); ; {
		ids, err := s.IDs(ctx, queue, start, start+chunk-1)
		if err != nil || len(ids) == 0 {
			return dropped, err
		}
		cmds := make([]*redis.IntCmd, len(ids))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.Exists(ctx, RecordKey(queue, id))
			}
			return nil
		}); err != nil {
			return dropped, fmt.Errorf("failures: prune: %w", err)
		}
		var gone []any
		for i, id := range ids {
			if cmds[i].Val() == 0 {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			if err := s.rdb.ZRem(ctx, AllKey(queue), gone...).Err(); err != nil {
				return dropped, fmt.Errorf("failures: prune: %w", err)
			}
			dropped += len(gone)
		}
		start += int64(len(ids) - len(gone))
		if len(ids) < chunk {
			return dropped, nil
		}
	}
}
