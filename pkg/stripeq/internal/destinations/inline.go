package destinations

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/backoff"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/completion"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// Inline deliveries. A delivery is a task of its destination's queue, so
// that a slow or failing destination never holds up the handlers. But
// while a destination is healthy, the worker delivers in the event's own
// task, after its handlers succeeded: one task an event instead of two.
// The POST is inline only when all of these hold, else the delivery is a
// task as before:
//
//   - the destination allows it (DESTINATION_INLINE, true by default);
//   - the destination is healthy: its last POST from this process
//     succeeded (2xx) within InlineFresh and took under half of
//     InlineTimeout;
//   - the event's task runs for the first time (a retry's earlier
//     attempt may have enqueued the delivery);
//   - the destination does not order its deliveries by customer
//     (DESTINATION_ORDER=customer), or the event has no customer;
//   - one of its DESTINATION_CONCURRENCY POSTs of this process is free
//     now, and DESTINATION_RATE allows one now: nothing waits.
//
// The POST waits at most InlineTimeout (or DESTINATION_TIMEOUT, when
// shorter). A 2xx is stored as the delivery's task, completed, in asynq's
// layout (the Console's Deliveries and asynqmon list it as any other),
// with its attempt, in the round trip of the event task's completion.
// Anything else (no answer in time, a non-2xx) is recorded as the
// delivery's first attempt, and the delivery is enqueued as a task: after
// the destination's Retry-After, or the first retry's backoff. It costs a
// worker slot (and the event's global slot, held until its completion)
// for the POST: a healthy destination's latency, and at most
// InlineTimeout once before a destination that turned slow or down is
// delivered to by tasks again.
const (
	// InlineTimeout is the longest an inline POST waits.
	InlineTimeout = time.Second
	// InlineFresh is how long a successful POST keeps its destination
	// healthy.
	InlineFresh = 30 * time.Second
)

// health tells d how a POST went: a 2xx in under half of InlineTimeout
// keeps it healthy for InlineFresh; anything else makes it unhealthy.
func (d *destination) health(a delivery.Attempt, ok bool) {
	if ok && time.Duration(a.LatencyMS)*time.Millisecond < InlineTimeout/2 {
		d.healthyUntil.Store(time.Now().Add(InlineFresh).UnixNano())
		return
	}
	d.healthyUntil.Store(0)
}

// healthy reports whether d is delivered to inline.
func (d *destination) healthy() bool { return time.Now().UnixNano() < d.healthyUntil.Load() }

// inlineOK reports whether the delivery of event task t to d may be tried
// inline, before its handlers run (see the conditions above).
func (r *Runner) inlineOK(ctx context.Context, t *asynq.Task, c Config) bool {
	d := r.dests[c.Name]
	if c.NoInline || d == nil || !d.healthy() || d.orderKey(t) != "" {
		return false
	}
	retried, _ := asynq.GetRetryCount(ctx)
	return retried == 0
}

// take takes one of d's POSTs and a token of its rate, without waiting.
func (d *destination) take() bool {
	select {
	case d.sem <- struct{}{}:
	default:
		return false
	}
	if d.limiter != nil && !d.limiter.Allow() {
		<-d.sem
		return false
	}
	return true
}

// WithFanout runs h with the deliveries of each task: those that may be
// inline are POSTed after h succeeds (or enqueued, when it fails or they
// cannot be); the others are enqueued before h, as tasks.
func (r *Runner) WithFanout(client *asynq.Client, h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		eventType, ok := stripetask.EventType(t.Type())
		if !ok {
			return h.ProcessTask(ctx, t)
		}
		inline := map[string]bool{}
		for _, c := range r.Destinations {
			if c.matches(eventType) && r.inlineOK(ctx, t, c) {
				inline[c.Name] = true
			}
		}
		if err := r.fanout(ctx, client, t, func(c Config) bool { return !inline[c.Name] }); err != nil {
			return err
		}
		if err := h.ProcessTask(ctx, t); err != nil {
			if len(inline) > 0 {
				if ferr := r.fanout(ctx, client, t, func(c Config) bool { return inline[c.Name] }); ferr != nil {
					return errors.Join(err, ferr)
				}
			}
			return err
		}
		if len(inline) == 0 {
			return nil
		}
		return r.deliverInline(ctx, client, t, inline)
	})
}

// deliverInline POSTs the delivery of event task t to each of dests whose
// POST and rate allow it now, and enqueues the others. The deliveries
// made are stored in the completion of t, or at once when t will not
// complete: when an enqueue failed, whose error is returned (t is
// retried, and its deliveries stored then are not made again).
func (r *Runner) deliverInline(ctx context.Context, client *asynq.Client, t *asynq.Task, dests map[string]bool) error {
	taskID, _ := asynq.GetTaskID(ctx)
	var made []inlineRecord
	var errs []error
	for _, c := range r.Destinations {
		if !dests[c.Name] {
			continue
		}
		d := r.dests[c.Name]
		if !d.healthy() || !d.take() {
			if err := r.enqueue(ctx, client, t, taskID, c, 0); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		rec, delay, err := d.inline(ctx, t, taskID)
		<-d.sem
		if err == nil {
			made = append(made, rec)
			continue
		}
		if err := r.enqueue(ctx, client, t, taskID, c, delay); err != nil {
			errs = append(errs, err)
		}
	}
	if len(made) == 0 {
		return errors.Join(errs...)
	}
	queue, _ := asynq.GetQueueName(ctx)
	var sent []*redis.Cmd // each record's script
	if len(errs) > 0 || !r.Events.Add(taskID, completion.Writes{
		Queue: queue,
		Send: func(ctx context.Context, p redis.Pipeliner) {
			sent = sent[:0]
			for _, rec := range made {
				sent = append(sent, rec.send(ctx, p))
			}
		},
		Done:  func([]redis.Cmder, error) { storeInline(ctx, r.Log, made, sent) },
		Alone: func() { storeInline(ctx, r.Log, made, nil) },
	}) {
		storeInline(ctx, r.Log, made, nil)
	}
	return errors.Join(errs...)
}

// inline POSTs the delivery of event task t (ID taskID) to d, within
// InlineTimeout. On a 2xx it returns the delivery's record, to store; else
// it records the attempt, as the delivery's first, and returns the error
// and the delay of the delivery's task.
func (d *destination) inline(ctx context.Context, t *asynq.Task, taskID string) (inlineRecord, time.Duration, error) {
	body, err := stripetask.Body(t.Payload())
	if err != nil {
		return inlineRecord{}, 0, err
	}
	timeout, limit := d.Timeout, "DESTINATION_TIMEOUT"
	if timeout > InlineTimeout {
		timeout, limit = InlineTimeout, "the inline delivery's limit"
	}
	id := stripetask.EventID(taskID)
	a, outcome, sent := d.post(ctx, id, t.Headers()[stripetask.HeaderType], eventCreated(t), body, timeout, limit)
	if !sent {
		return inlineRecord{}, 0, outcome
	}
	d.observe(a, outcome)
	msg := delivery.Message(t, taskID, d.Name, stripetask.DefaultRetention)
	attempt, _ := json.Marshal(a)
	if outcome != nil {
		if d.metrics != nil {
			d.metrics.Delivered.WithLabelValues(d.Name, "retry").Inc()
		}
		d.log.WarnContext(ctx, "inline delivery failed; enqueued as a task", logging.Err(outcome),
			slog.String(logging.KeyTaskID, msg.ID))
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := writeAttempt(wctx, d.rdb, keyspace.DeliveryAttempts(msg.ID), attempt, "", ""); err != nil {
			d.log.WarnContext(ctx, "delivery attempt not recorded", logging.Err(err), slog.String(logging.KeyTaskID, msg.ID))
		}
		delay := backoff.Exponential(d.retryBase, 0)
		var ra *retryAfterError
		if errors.As(outcome, &ra) {
			delay = ra.after + backoff.Padding
		}
		return inlineRecord{}, delay, outcome
	}
	msg.CompletedAt = a.At.Add(time.Duration(a.LatencyMS) * time.Millisecond)
	return inlineRecord{d: d, task: msg, attempt: attempt}, 0, nil
}

// inlineRecord is a delivery made inline, to store: its task, completed,
// and its attempt.
type inlineRecord struct {
	d       *destination
	task    taskstore.Task
	attempt []byte
}

// send queues the record's script on p, and returns it, and the
// destination's queue in asynq's list of queues until that was written
// once (as asynq's Client does at its first enqueue), so that the Console
// lists a destination whose deliveries were all made inline.
func (rec inlineRecord) send(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
	if !rec.d.published.Load() {
		p.SAdd(ctx, keyspace.AsynqQueues, rec.task.Queue)
	}
	keys, args := rec.completed()
	return completedScript.EvalSha(ctx, p, keys, args...)
}

// completed returns the keys and arguments of completedScript for rec.
func (rec inlineRecord) completed() ([]string, []any) {
	q, done := rec.task.Queue, rec.task.CompletedAt
	return []string{keyspace.Task(q, rec.task.ID), keyspace.Completed(q), keyspace.Queue(q) + "processed:" + done.UTC().Format("2006-01-02"), keyspace.Queue(q) + "processed"},
		[]any{taskstore.Encode(rec.task), rec.task.ID, done.Add(rec.task.Retention).Unix(), done.Add(statsTTL).Unix(), rec.attempt}
}

// storeInline finishes storing made: sent holds each record's script as
// a completion's pipeline sent it, nil when none was sent. A script not
// sent, or not run because Redis lacked it (restarted, or failed over),
// runs alone; any other error is logged: the deliveries were made, only
// the Console will not list them.
func storeInline(ctx context.Context, log *slog.Logger, made []inlineRecord, sent []*redis.Cmd) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	for i, rec := range made {
		alone := len(sent) != len(made)
		if alone && !rec.d.published.Load() {
			errs = append(errs, rec.d.rdb.SAdd(ctx, keyspace.AsynqQueues, rec.task.Queue).Err())
		}
		var err error
		if !alone {
			err = sent[i].Err()
		}
		if alone || redis.HasErrorPrefix(err, "NOSCRIPT") {
			keys, args := rec.completed()
			err = completedScript.Run(ctx, rec.d.rdb, keys, args...).Err()
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		log.WarnContext(ctx, "inline deliveries made but not recorded", logging.Err(err), "deliveries", len(made))
		return
	}
	for _, rec := range made {
		rec.d.published.Store(true)
	}
}

// statsTTL is how long asynq keeps a queue's daily counts: 90 days.
const statsTTL = 90 * 24 * time.Hour

// completedScript stores a delivery made inline as asynq v0.26's
// completion script leaves a task (its hash with msg and state
// "completed", the completed ZSET scored by the end of its retention, the
// queue's processed counts), with its attempt in the hash
// (delivery.AttemptField), unless its task exists already: then it
// returns 0 and changes nothing. KEYS: the task hash, the completed ZSET,
// the day's and the total processed counts; ARGV: msg, the task ID, the
// retention's end, the day's count's expiry (unix seconds), the attempt.
var completedScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
  return 0
end
redis.call("HSET", KEYS[1], "msg", ARGV[1], "state", "completed", "` + delivery.AttemptField + `", ARGV[5])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[2])
if redis.call("INCR", KEYS[3]) == 1 then
  redis.call("EXPIREAT", KEYS[3], ARGV[4])
end
redis.call("INCR", KEYS[4])
return 1
`)
