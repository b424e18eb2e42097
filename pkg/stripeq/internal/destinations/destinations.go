// Package destinations forwards Stripe events to the operator's own apps
// (DESTINATION_URL, DESTINATIONS_FILE), signed as Standard Webhooks: one
// delivery task per (event execution, destination) in the destination's
// own queue, processed by an asynq server of its own in every worker
// process; or, while the destination is healthy, the same delivery made
// in the event's own task and stored as that task, completed (inline.go).
// Part of pkg/stripeq's engine: internal, no compatibility promise;
// stripeq.Destination is its public configuration.
package destinations

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/alerts"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/backoff"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/completion"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/tasklog"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/workermetrics"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
)

// Errors of a delivery. Each reads well with the package name.
var (
	// ErrGone is a destination's 410 Gone: the delivery is
	// archived at once and alerted, without retrying.
	ErrGone = errors.New("destination answered 410 Gone: not retried")
	// ErrForbiddenAddress is a destination connection refused because it
	// would reach a link-local or cloud metadata address.
	ErrForbiddenAddress = errors.New("destination address is link-local or cloud metadata: refused")
	// errWaitTurn is a delivery of DESTINATION_ORDER=customer waiting for
	// an earlier one of its customer: retried in a second or two without
	// using up a retry.
	errWaitTurn = errors.New("an earlier delivery to this customer is not finished; waiting")
)

// permanent returns err marked as asynq's SkipRetry: archived at once.
func permanent(err error) error { return fmt.Errorf("%w: %w", asynq.SkipRetry, err) }

// Standard Webhooks headers of a delivery, and the event type's.
const (
	headerWebhookID        = delivery.SentWebhookID
	headerWebhookTimestamp = delivery.SentWebhookTimestamp
	headerWebhookSignature = delivery.SentWebhookSignature
	headerEventType        = delivery.SentEventType
)

// maxRetryAfter bounds a destination's Retry-After.
const maxRetryAfter = 24 * time.Hour

// retryAfterError is a destination's 429 or 503 with a Retry-After: the
// delivery is retried after that long. Like a handler's RateLimitError it
// is a wait the receiver asked for, not a failure, and uses up no retry,
// until the event is older than stripetask.DefaultRetention (72 h,
// Stripe's own days of redelivery): from then on each counts, so that a
// destination that always answers 503 has its deliveries archived in the
// end.
type retryAfterError struct {
	after  time.Duration
	counts bool // uses up a retry: the event is older than the retention
	err    error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v; retry after %v", e.err, e.after)
}

func (e *retryAfterError) Unwrap() error { return e.err }

// retryDelay is the retry policy of deliveries: a destination's
// Retry-After (plus padding), a second or two for a delivery waiting its
// turn, else exponential backoff from base.
func retryDelay(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		var ra *retryAfterError
		switch {
		case errors.As(err, &ra):
			return ra.after + backoff.Padding
		case errors.Is(err, errWaitTurn):
			return backoff.Turn()
		}
		return backoff.Exponential(base, n)
	}
}

// sign returns the Standard Webhooks signature of body for webhook-id id
// at unix seconds ts, with mac, a reset HMAC-SHA256 keyed with the
// base64-decoded part of a whsec_ secret: "v1," + base64(HMAC-SHA256(key,
// id + "." + ts + "." + body)).
func sign(mac hash.Hash, id string, ts int64, body []byte) string {
	var buf [96]byte
	prefix := append(strconv.AppendInt(append(append(buf[:0], id...), '.'), ts, 10), '.')
	mac.Write(prefix)
	mac.Write(body)
	var sum [sha256.Size]byte
	out := make([]byte, 3+base64.StdEncoding.EncodedLen(sha256.Size))
	copy(out, "v1,")
	base64.StdEncoding.Encode(out[3:], mac.Sum(sum[:0]))
	return string(out)
}

// sign returns the signature of a delivery, with an HMAC
// of the destination's key reused from an earlier delivery.
func (d *destination) sign(id string, ts int64, body []byte) string {
	mac, _ := d.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, d.key)
	}
	sig := sign(mac, id, ts, body)
	mac.Reset()
	d.macs.Put(mac)
	return sig
}

// destination is a configured Destination, ready to deliver.
type destination struct {
	Config
	key     []byte
	macs    sync.Pool // of hash.Hash: HMAC-SHA256s of key, reset
	client  *http.Client
	limiter *rate.Limiter // nil: unlimited
	rdb     redis.UniversalClient
	tasks   *asynq.Inspector       // for DESTINATION_ORDER: whether a delivery ahead still exists
	metrics *workermetrics.Metrics // nil in tests
	log     *slog.Logger
	// done carries a delivered attempt's record in the round trip of
	// asynq's completion of the delivery; nil in tests: written at once.
	done *completion.Client
	// sem holds one token per POST to d in progress in this process,
	// inline or not: at most Concurrency.
	sem chan struct{}
	// healthyUntil is until when (unix ns) d is delivered to inline: see
	// healthy.
	healthyUntil atomic.Int64
	// published: d's queue is in asynq's list of queues (see
	// inlineRecord.send).
	published atomic.Bool
	retryBase time.Duration // the first retry's delay (RETRY_BASE_DELAY)
}

func newDestination(d Config, allowLinkLocal bool, rdb redis.UniversalClient, log *slog.Logger) *destination {
	key, _ := secretKey(d.Secret) // checked by Check
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	if d.Concurrency <= 0 {
		d.Concurrency = DefaultConcurrency
	}
	dialer := &net.Dialer{Timeout: d.Timeout}
	if !allowLinkLocal {
		// Checked when dialled, so that a name resolving to a metadata
		// address later (DNS rebinding) is refused too.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err == nil && forbiddenAddr(ap.Addr()) {
				return ErrForbiddenAddress
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:               nil, // a proxy would hide the address dialled
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: d.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: d.Timeout,
	}
	dst := &destination{
		Config: d, key: key, rdb: rdb, sem: make(chan struct{}, d.Concurrency),
		log: log.With("destination", d.Name),
		client: &http.Client{
			Transport: transport,
			Timeout:   d.Timeout,
			// No redirect is followed, to any host: a 3xx is a failed
			// attempt, retried, and shown in the Console.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if d.Rate > 0 {
		dst.limiter = rate.NewLimiter(rate.Limit(d.Rate), max(1, int(d.Rate)))
	}
	return dst
}

// ProcessTask POSTs one delivery to the destination and records the
// attempt. A 2xx completes it; a 410 archives it; a 429 or 503 with
// Retry-After is retried after that long; anything else is retried with
// backoff.
func (d *destination) ProcessTask(ctx context.Context, t *asynq.Task) error {
	body, err := stripetask.Body(t.Payload())
	if err != nil {
		return permanent(err)
	}
	taskID, _ := asynq.GetTaskID(ctx)
	id := delivery.WebhookID(taskID, t.Headers())
	if err := d.waitTurn(ctx, t, taskID); err != nil {
		return err
	}
	if d.limiter != nil {
		if err := d.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("destination %s: waiting for DESTINATION_RATE: %w", d.Name, err)
		}
	}
	select { // the process's POSTs to d, inline ones included
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	a, outcome, sent := d.post(ctx, id, t.Headers()[stripetask.HeaderType], eventCreated(t), body, d.Timeout, "DESTINATION_TIMEOUT")
	<-d.sem
	if !sent {
		return outcome
	}
	// The attempts are the delivery's result: no second write. A
	// delivery that is done leaves its customer's order in the same
	// round trip.
	d.record(ctx, t, a, outcome == nil || errors.Is(outcome, asynq.SkipRetry))
	d.observe(a, outcome)
	return outcome
}

// post signs body as webhook id and POSTs it, waiting at most timeout
// (named limit in the attempt's error), and returns the attempt and what
// its response means (see outcome): nil for a 2xx. sent is false when no
// request could be made (an invalid URL): nothing to record. Each POST
// tells d's health (see healthy).
func (d *destination) post(ctx context.Context, id, eventType string, created time.Time, body []byte, timeout time.Duration, limit string) (a delivery.Attempt, outcome error, sent bool) {
	at := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return a, permanent(fmt.Errorf("destination %s: invalid URL", d.Name)), false
	}
	req.Header.Set("Content-Type", delivery.SentContentType)
	req.Header.Set("User-Agent", delivery.SentUserAgent)
	req.Header.Set(headerWebhookID, id)
	req.Header.Set(headerWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(headerWebhookSignature, d.sign(id, at.Unix(), body))
	req.Header.Set(headerEventType, eventType)
	resp, err := d.client.Do(req)
	a.At = at
	if err != nil {
		a.LatencyMS = time.Since(at).Milliseconds()
		a.Error = describeDeliveryError(err, limit, timeout)
		d.health(a, false)
		return a, fmt.Errorf("destination %s: %s", d.Name, a.Error), true
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, delivery.MaxAttemptResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	a.LatencyMS = time.Since(at).Milliseconds()
	a.Status, a.Response = resp.StatusCode, string(excerpt)
	outcome = d.outcome(resp, created)
	if outcome != nil {
		a.Error = outcome.Error()
	}
	d.health(a, outcome == nil)
	return a, outcome, true
}

// observe counts a successful attempt and times every POST; failures are
// counted by the error handler, which knows whether one is archived.
func (d *destination) observe(a delivery.Attempt, err error) {
	if d.metrics == nil {
		return
	}
	d.metrics.DeliverySeconds.WithLabelValues(d.Name).Observe(float64(a.LatencyMS) / 1000)
	if err == nil {
		d.metrics.Delivered.WithLabelValues(d.Name, "delivered").Inc()
	}
}

// outcome is what a response means: nil for a 2xx, else the error the
// retry policy reads.
//
// A 429 or 503 with Retry-After waits without using up a retry while the
// event, created at created, is younger than the retention.
func (d *destination) outcome(resp *http.Response, created time.Time) error {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return permanent(fmt.Errorf("destination %s: %w", d.Name, ErrGone))
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		err := fmt.Errorf("destination %s answered %d", d.Name, code)
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryAfterError{after: after, counts: time.Since(created) > stripetask.DefaultRetention, err: err}
		}
		return err
	case code >= 300 && code < 400:
		return fmt.Errorf("destination %s answered %d, a redirect: not followed", d.Name, code)
	}
	return fmt.Errorf("destination %s answered %d", d.Name, code)
}

// parseRetryAfter reads a Retry-After of seconds or an HTTP date, bounded
// by maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// describeDeliveryError says why a POST got no response within timeout,
// the setting named limit, without the URL (it may hold a credential).
func describeDeliveryError(err error, limit string, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return ErrForbiddenAddress.Error()
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no response within %s (%v)", limit, timeout)
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		if _, ok := u.(*net.OpError); ok {
			return u.Error()
		}
	}
	return logging.RedactError(err)
}

// record appends an attempt to the delivery's attempts list, kept for the
// delivery's retention, and when leave is set takes the delivery out of
// its customer's order (see leaveTurn), in one round trip: for a delivery
// that succeeded, the round trip of asynq's completion of the delivery
// (pkg/stripeq/internal/completion). A Redis error is logged: the
// delivery's outcome does not depend on it.
func (d *destination) record(ctx context.Context, t *asynq.Task, a delivery.Attempt, leave bool) {
	taskID, _ := asynq.GetTaskID(ctx)
	if taskID == "" || d.rdb == nil {
		return
	}
	b, _ := json.Marshal(a)
	order := ""
	if leave {
		order = d.orderKey(t)
	}
	key := keyspace.DeliveryAttempts(taskID)
	warn := func(err error) {
		d.log.WarnContext(ctx, "delivery attempt not recorded", logging.Err(err), slog.String(logging.KeyTaskID, taskID))
	}
	write := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := writeAttempt(ctx, d.rdb, key, b, order, taskID); err != nil {
			warn(err)
		}
	}
	if a.Error != "" || !d.done.Leave(taskID, completion.Writes{
		Queue: delivery.Queue(d.Name),
		Send: func(ctx context.Context, p redis.Pipeliner) {
			appendAttemptScript.EvalSha(ctx, p, []string{key}, b, attemptTTL())
			if order != "" {
				p.ZRem(ctx, order, taskID)
			}
		},
		Done: func(cmds []redis.Cmder, err error) {
			if redis.HasErrorPrefix(err, "NOSCRIPT") { // Redis restarted, or failed over
				err = appendAttemptScript.Run(context.WithoutCancel(ctx), d.rdb, []string{key}, b, attemptTTL()).Err()
			}
			if err != nil {
				warn(err)
			}
		},
		Alone: write,
	}) {
		write()
	}
}

// attemptTTL is how long a delivery's attempts are kept, in seconds: its
// retention.
func attemptTTL() int64 { return int64(stripetask.DefaultRetention / time.Second) }

// appendAttemptScript appends ARGV[1] to the list KEYS[1], keeps its last
// 50 entries and expires it in ARGV[2] seconds, in one atomic step.
var appendAttemptScript = redis.NewScript(`
redis.call("RPUSH", KEYS[1], ARGV[1])
redis.call("LTRIM", KEYS[1], -50, -1)
redis.call("EXPIRE", KEYS[1], ARGV[2])
return 1
`)

// writeAttempt appends attempt to the list key, trimmed to its last 50
// and expiring with the delivery's retention, and when order is set
// removes member from that sorted set, in one pipeline: the attempt is a
// script (atomic, one key), so that on a Redis Cluster the order set may
// live in another slot. Only the attempt's error is returned.
func writeAttempt(ctx context.Context, rdb redis.UniversalClient, key string, attempt []byte, order, member string) error {
	ttl := attemptTTL()
	if order == "" {
		return appendAttemptScript.Run(ctx, rdb, []string{key}, attempt, ttl).Err()
	}
	var add *redis.Cmd
	rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		add = appendAttemptScript.EvalSha(ctx, p, []string{key}, attempt, ttl)
		p.ZRem(ctx, order, member)
		return nil
	})
	if redis.HasErrorPrefix(add.Err(), "NOSCRIPT") { // Redis restarted, or failed over
		return appendAttemptScript.Eval(ctx, rdb, []string{key}, attempt, ttl).Err()
	}
	return add.Err()
}

// orderKey returns the order set of delivery t, or "" when its
// destination does not order deliveries or its event has no customer.
func (d *destination) orderKey(t *asynq.Task) string {
	customer := t.Headers()[stripetask.HeaderCustomer]
	if d.Order != OrderCustomer || customer == "" || d.rdb == nil {
		return ""
	}
	return keyspace.DeliveryOrder(d.Name, customer)
}

// waitTurn returns errWaitTurn while an earlier delivery of the same
// customer is unfinished. The delivery joins its customer's order set
// first (fanout added it already, but a crash may have come between the
// enqueue and that). A delivery ahead of it that no longer waits (deleted,
// expired, or archived or completed by a worker that died before leaving
// the set) is dropped from the set.
func (d *destination) waitTurn(ctx context.Context, t *asynq.Task, taskID string) error {
	key := d.orderKey(t)
	if key == "" || taskID == "" {
		return nil
	}
	created, _ := strconv.ParseFloat(t.Headers()[stripetask.HeaderCreated], 64)
	var join *redis.IntCmd
	var ahead *redis.StringSliceCmd
	d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		join = p.ZAddNX(ctx, key, redis.Z{Score: created, Member: taskID})
		p.Expire(ctx, key, stripetask.DefaultRetention)
		ahead = p.ZRange(ctx, key, 0, 0)
		return nil
	})
	if err := join.Err(); err != nil {
		return fmt.Errorf("destination %s: join the customer's order: %w", d.Name, err)
	}
	for range 10 {
		head, err := ahead.Result()
		if err != nil {
			return fmt.Errorf("destination %s: read the customer's order: %w", d.Name, err)
		}
		if len(head) == 0 || head[0] == taskID {
			return nil
		}
		info, err := d.tasks.GetTaskInfo(delivery.Queue(d.Name), head[0])
		if err == nil && info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted {
			return errWaitTurn
		}
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return fmt.Errorf("destination %s: read the delivery ahead: %w", d.Name, err)
		}
		d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, key, head[0])
			ahead = p.ZRange(ctx, key, 0, 0)
			return nil
		})
	}
	return errWaitTurn
}

// leaveTurn takes a finished delivery out of its customer's order set.
func (d *destination) leaveTurn(ctx context.Context, t *asynq.Task, taskID string) {
	if key := d.orderKey(t); key != "" && taskID != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		d.rdb.ZRem(ctx, key, taskID)
	}
}

// Runner runs the deliveries of a worker process.
type Runner struct {
	RDB            redis.UniversalClient
	Log            *slog.Logger
	Metrics        *workermetrics.Metrics
	Alerts         alerts.Alerter
	AllowLinkLocal bool
	// RetryBase is RETRY_BASE_DELAY: the first retry's delay.
	RetryBase time.Duration
	// ShutdownTimeout is how long a stopping server lets POSTs finish.
	ShutdownTimeout time.Duration
	// CheckInterval is asynq's TaskCheckInterval of each server.
	CheckInterval time.Duration
	Destinations  []Config
	// Events is the Redis client of the event tasks' server: an inline
	// delivery's record rides in the completion of its event's task. Nil:
	// written at once.
	Events *completion.Client

	dests map[string]*destination // by name, from Start
}

// Fanout enqueues the deliveries of the event task t to every destination
// that takes its type. A delivery already enqueued (this task's earlier
// attempt, after a crash or a handler's failure) is left as it is.
func (r *Runner) Fanout(ctx context.Context, client *asynq.Client, t *asynq.Task) error {
	return r.fanout(ctx, client, t, func(Config) bool { return true })
}

// fanout is Fanout to the destinations that take t's type and for which
// only is true.
func (r *Runner) fanout(ctx context.Context, client *asynq.Client, t *asynq.Task, only func(Config) bool) error {
	eventType, ok := stripetask.EventType(t.Type())
	if !ok {
		return nil
	}
	taskID, _ := asynq.GetTaskID(ctx)
	var errs []error
	for _, d := range r.Destinations {
		if !d.matches(eventType) || !only(d) {
			continue
		}
		if err := r.enqueue(ctx, client, t, taskID, d, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enqueue enqueues the delivery of event task t (ID taskID) to d, to run
// after delay; one that exists already is left as it is.
func (r *Runner) enqueue(ctx context.Context, client *asynq.Client, t *asynq.Task, taskID string, d Config, delay time.Duration) error {
	dt := delivery.New(t, taskID, d.Name, stripetask.DefaultRetention)
	if customer := t.Headers()[stripetask.HeaderCustomer]; d.Order == OrderCustomer && customer != "" {
		// Joining the order before the enqueue keeps a later event's
		// delivery from overtaking it; a crash in between leaves a
		// member that waitTurn drops once it finds no such task.
		created, _ := strconv.ParseFloat(t.Headers()[stripetask.HeaderCreated], 64)
		key := keyspace.DeliveryOrder(d.Name, customer)
		var join *redis.IntCmd
		r.RDB.Pipelined(ctx, func(p redis.Pipeliner) error {
			join = p.ZAddNX(ctx, key, redis.Z{Score: created, Member: delivery.ID(taskID, d.Name)})
			p.Expire(ctx, key, stripetask.DefaultRetention)
			return nil
		})
		if err := join.Err(); err != nil {
			return fmt.Errorf("order delivery to %s: %w", d.Name, err)
		}
	}
	var opts []asynq.Option
	if delay > 0 {
		opts = append(opts, asynq.ProcessIn(delay))
	}
	_, err := client.EnqueueContext(ctx, dt, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue delivery to %s: %w", d.Name, err)
	}
	return nil
}

// Start starts one asynq server per destination, each
// processing only its destination's queue with its own concurrency, and
// returns a function that shuts them all down at once (each lets its
// POSTs finish for ShutdownTimeout); it may be called more than once.
func (r *Runner) Start() (stop func(), err error) {
	var servers []*asynq.Server
	var once sync.Once
	done := completion.New(r.RDB) // every destination's server's client
	done.Activate()
	stop = func() {
		once.Do(func() {
			var wg sync.WaitGroup
			for _, s := range servers {
				wg.Go(s.Shutdown)
			}
			wg.Wait()
			done.Flush()
		})
	}
	r.dests = map[string]*destination{}
	for _, d := range r.Destinations {
		dst := newDestination(d, r.AllowLinkLocal, r.RDB, r.Log)
		r.dests[d.Name] = dst
		dst.tasks = asynq.NewInspectorFromRedisClient(r.RDB)
		dst.metrics = r.Metrics
		dst.done = done
		dst.retryBase = r.RetryBase
		log := r.Log.With("destination", d.Name)
		srv := asynq.NewServerFromRedisClient(done, asynq.Config{
			Concurrency:              dst.Concurrency,
			Queues:                   map[string]int{delivery.Queue(d.Name): 1},
			TaskCheckInterval:        r.CheckInterval,
			DelayedTaskCheckInterval: time.Second,
			RetryDelayFunc:           retryDelay(r.RetryBase),
			IsFailure:                isFailure,
			ShutdownTimeout:          r.ShutdownTimeout,
			ErrorHandler:             errorHandler(log, r.Alerts, dst),
			Logger:                   tasklog.Asynq{Log: log.With("component", "asynq")},
		})
		if err := startLabelled(srv, dst, d.Name); err != nil {
			stop()
			return nil, fmt.Errorf("start destination %s: %w", d.Name, err)
		}
		servers = append(servers, srv)
		r.Log.Info("destination running", "destination", d.Name, "queue", delivery.Queue(d.Name),
			"url", logging.RedactURL(d.URL), "events", len(d.Events), "concurrency", dst.Concurrency,
			"rate", d.Rate, "timeout", dst.Timeout.String(), "order", d.Order)
	}
	return stop, nil
}

// isFailure tells asynq which errors of a delivery count against its
// retries: all but a wait for the customer's earlier delivery, and a
// destination's Retry-After while the event is younger than the
// retention.
func isFailure(err error) bool {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.counts
	}
	return !errors.Is(err, errWaitTurn)
}

// eventCreated is when the event of delivery t was created (its
// HeaderCreated); now when it does not say.
func eventCreated(t *asynq.Task) time.Time {
	s, err := strconv.ParseInt(t.Headers()[stripetask.HeaderCreated], 10, 64)
	if err != nil || s <= 0 {
		return time.Now()
	}
	return time.Unix(s, 0)
}

// startLabelled starts srv from a goroutine of its own labelled
// stripeq_destination=name, which the server's goroutines inherit: a CPU
// profile of the worker tells each destination's time from the event
// tasks'.
func startLabelled(srv *asynq.Server, h asynq.Handler, name string) error {
	errc := make(chan error, 1)
	go pprof.Do(context.Background(), pprof.Labels("stripeq_destination", name), func(context.Context) { errc <- srv.Start(h) })
	return <-errc
}

// errorHandler logs each failed delivery attempt once, and alerts
// when a delivery is archived (its retries used up, or a 410).
func errorHandler(log *slog.Logger, alerter alerts.Alerter, d *destination) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		id, _ := asynq.GetTaskID(ctx)
		queue, _ := asynq.GetQueueName(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		l := log.With(slog.String(logging.KeyTaskID, id), slog.String(logging.KeyTaskType, t.Type()),
			slog.String(logging.KeyQueue, queue), slog.Int(logging.KeyRetry, retried),
			slog.String(logging.KeyEventID, delivery.WebhookID(id, t.Headers())),
			slog.String(logging.KeyEventType, t.Headers()[stripetask.HeaderType]))
		count := func(outcome string) {
			if d.metrics != nil {
				d.metrics.Delivered.WithLabelValues(d.Name, outcome).Inc()
			}
		}
		switch {
		case errors.Is(err, errWaitTurn):
			count("waiting")
			l.DebugContext(ctx, "delivery waits for the customer's earlier one; retried without counting")
			return
		case !isFailure(err):
			count("waiting")
			l.InfoContext(ctx, "the destination asked the delivery to wait (Retry-After); retried without counting", logging.Err(err))
			return
		case retried >= maxRetry || errors.Is(err, asynq.SkipRetry):
			count("archived")
			d.leaveTurn(ctx, t, id)
			alerter.DeliveryArchived(ctx, l, t, id, d.Name, err)
			return
		}
		count("retry")
		l.WarnContext(ctx, "delivery failed; will retry", logging.Err(err), "retries_left", maxRetry-retried)
	})
}
