package stripeq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// taskCheckInterval is how often an idle worker looks for new tasks. asynq's
// default of 1 s puts about half a second between an event's 200 and its
// handler; at 25 ms the bench measured a median of 15 ms (p99 38–67 ms) at
// 200 events/s, for one cheap Redis call per idle processor per interval.
const taskCheckInterval = 25 * time.Millisecond

// Worker processes the Stripe events the api stores in Redis, one asynq
// task per event, with the handlers registered by [Handle]. Make one with
// [NewWorker], register handlers, then call [Worker.Run].
type Worker struct {
	cfg      Config
	log      *slog.Logger
	rdb      redis.UniversalClient
	redisOpt asynq.RedisConnOpt
	warnings []string
	stripe   *stripeAPI // nil without StripeSecretKey
	slots    *slots     // global concurrency
	failures *failures.Store
	timeout  time.Duration
	metrics  *workerMetrics
	alerts   alerter

	mu       sync.Mutex
	handlers map[string]asynq.Handler // by Stripe event type
	served   *asynq.ServeMux          // of handlers; nil until first used, and after Handle
	running  bool
}

// NewWorker returns a worker for cfg, with no handler yet. It checks cfg
// as [ConfigFromEnv] does, failing closed on a setting that would send a
// credential in the clear or use the wrong kind of key, and returns every
// problem at once, each named by its variable. It connects to Redis
// lazily: an unreachable Redis is logged and retried by Run, which closes
// the connections when it returns. It sends go-redis's own log lines to
// cfg.Logger (redis.SetLogger is process-wide), and stripe-go's,
// redacted (stripe.DefaultLeveledLogger is too).
func NewWorker(cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	env := envconfig.New(func(string) string { return "" })
	redisOpt := cfg.check(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	redisconn.SetLogger(cfg.Logger)
	stripe.DefaultLeveledLogger = stripeLogger{cfg.Logger}
	rdb := redisconn.NewClient(redisOpt)
	w := &Worker{
		cfg:      cfg,
		log:      cfg.Logger,
		rdb:      rdb,
		redisOpt: redisOpt,
		warnings: env.Warnings(),
		slots:    newSlots(rdb, cfg.Queue, max(cfg.GlobalConcurrency, 0)),
		failures: failures.New(rdb, cfg.FailedRetention),
		timeout:  cfg.HandlerTimeout,
		alerts:   newAlerter(cfg, rdb),
		handlers: map[string]asynq.Handler{},
	}
	w.metrics = newMetrics(asynq.NewInspectorFromRedisClient(rdb), newStoreCollector(rdb, cfg))
	if cfg.StripeSecretKey != "" {
		w.stripe = newStripeAPI(cfg.StripeSecretKey, cfg.StripeAPIBase, cfg.Concurrency)
	}
	return w, nil
}

// Redis returns the worker's Redis client, for handlers' own records
// ([Record], [Once]). It is closed when Run returns.
func (w *Worker) Redis() redis.UniversalClient { return w.rdb }

// Stripe returns a stripe-go client with the worker's StripeSecretKey and
// StripeAPIBase, whose own retries are off (the worker retries; see
// [ClassifyStripe]); nil without a key.
func (w *Worker) Stripe() *client.API {
	if w.stripe == nil {
		return nil
	}
	return w.stripe.client
}

// Logger returns the worker's logger. In a handler, use the event's Log,
// which carries the task's keys.
func (w *Worker) Logger() *slog.Logger { return w.log }

// Handled returns the event types that have a handler, sorted.
func (w *Worker) Handled() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.handlers))
}

// ProcessTask runs the handler of one task as the server would, without
// its retries, error handler, result writer or global concurrency slot:
// for tests, with tasks built by stripetask.New. It returns the handler's
// error, marked as the server would see it (see [HandlerFunc]).
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return w.mux().ProcessTask(ctx, t)
}

// mux routes each Stripe task to its event type's handler, and any other
// Stripe task to unhandled.
func (w *Worker) mux() *asynq.ServeMux {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.served != nil {
		return w.served
	}
	mux := asynq.NewServeMux()
	mux.Use(keepFailures(w.failures, w.rdb, w.log, w.cfg.TaskRetention))
	for t, h := range w.handlers {
		mux.Handle(stripetask.TaskType(t), h)
	}
	mux.HandleFunc(stripetask.TypePrefix, w.unhandled)
	w.served = mux
	return mux
}

// Run processes tasks until ctx ends, then stops the server: handlers that
// do not finish within the shutdown timeout have their tasks returned to
// Redis, to be run again. It serves metrics at MetricsAddr when set. It
// returns an error when the server cannot start or MetricsAddr cannot be
// listened on, and closes the worker's Redis client when it returns. Call
// it once.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("stripeq: Run called twice")
	}
	w.running = true
	w.mu.Unlock()
	defer w.rdb.Close()
	defer w.slots.close()
	cfg, log := w.cfg, w.log
	for _, warning := range w.warnings {
		log.Warn("unsafe setting: " + warning)
	}
	stopDestinations, err := w.startDestinations()
	if err != nil {
		return err
	}
	defer stopDestinations()
	var h asynq.Handler = w.mux()
	if len(cfg.Destinations) > 0 {
		client := asynq.NewClientFromRedisClient(w.rdb)
		h = w.withFanout(client, h)
	}
	srv := asynq.NewServerFromRedisClient(w.rdb, serverConfig(cfg, log, w.alerts, w.metrics))
	if err := srv.Start(h); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			srv.Shutdown()
			return fmt.Errorf("METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		go func() {
			if err := w.metrics.serve(ctx, l); err != nil {
				log.Error("metrics server stopped", logging.Err(err))
			}
		}()
		log.Info("metrics and health at http://" + l.Addr().String() + "/metrics and /healthz")
	}
	go w.alerts.run(ctx, log)
	log.Info("worker running", "redis", redisconn.Redacted(cfg.RedisURL), "queue", cfg.Queue, "queue_shards", cfg.Shards,
		"concurrency", cfg.Concurrency, "global_concurrency", max(cfg.GlobalConcurrency, 0),
		"refetch_from_stripe", w.stripe != nil, "alert_webhook", cfg.AlertWebhookURL != "",
		"handled_types", len(w.Handled()), "destinations", len(cfg.Destinations))
	<-ctx.Done()
	log.Info("worker stopping; unfinished tasks return to Redis", "shutdown_timeout", cfg.ShutdownTimeout.String())
	// The handlers and the destinations stop together, within one
	// ShutdownTimeout.
	var wg sync.WaitGroup
	wg.Go(srv.Shutdown)
	wg.Go(stopDestinations)
	wg.Wait()
	log.Info("worker stopped")
	return nil
}

// serverConfig is the asynq server's configuration. It processes every
// shard queue with equal weight.
func serverConfig(cfg Config, log *slog.Logger, alerts alerter, m *workerMetrics) asynq.Config {
	queues := map[string]int{}
	for _, q := range stripetask.Queues(stripetask.Options{Queue: cfg.Queue, Shards: cfg.Shards}) {
		queues[q] = 1
	}
	return asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            queues,
		TaskCheckInterval: taskCheckInterval,
		// Due retries move back to the queue within a second (asynq's
		// default is 5 s), so a Retry-After is honoured closely.
		DelayedTaskCheckInterval: time.Second,
		RetryDelayFunc:           retryDelay(cfg.RetryBaseDelay),
		IsFailure:                isFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		ErrorHandler:             errorHandler(log, alerts, m),
		Logger:                   asynqLogger{log.With("component", "asynq")},
		HealthCheckFunc: func(err error) {
			if err != nil {
				log.Error("Redis does not answer; retrying", logging.Err(err))
			}
		},
	}
}

// errorHandler logs each failed attempt once: a warning while retries are
// left, and an alert when the task is archived. Waits that do not count as
// failures (a Stripe rate limit, a full global concurrency limit) are
// logged at debug level.
func errorHandler(log *slog.Logger, alerts alerter, m *workerMetrics) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		l := taskLogger(ctx, log, t)
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		eventType, _ := stripetask.EventType(t.Type())
		switch {
		case errors.Is(err, errNotKept):
			m.handled.WithLabelValues(eventType, "waiting").Inc()
			l.ErrorContext(ctx, "task failed for good, but the failure store did not answer; retried without counting until it does", logging.Err(err))
		case !isFailure(err):
			m.handled.WithLabelValues(eventType, "waiting").Inc()
			l.DebugContext(ctx, "task waits; retried without counting", logging.Err(err))
		case retried >= maxRetry || errors.Is(err, ErrPermanent):
			m.handled.WithLabelValues(eventType, "archived").Inc()
			alerts.archived(ctx, l, t, id, err)
		default:
			m.handled.WithLabelValues(eventType, "retry").Inc()
			l.WarnContext(ctx, "task failed; will retry", logging.Err(err), "retries_left", maxRetry-retried)
		}
	})
}

// taskLogger returns log with the task's ID, type, queue and retry count.
func taskLogger(ctx context.Context, log *slog.Logger, t *asynq.Task) *slog.Logger {
	return slog.New(log.Handler().WithAttrs(taskAttrs(ctx, t)))
}

// taskAttrs are the keys taskLogger adds: task_id, task_type, queue,
// retry, stripe_event_id and stripe_event_type.
func taskAttrs(ctx context.Context, t *asynq.Task) []slog.Attr {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retry, _ := asynq.GetRetryCount(ctx)
	eventType, _ := stripetask.EventType(t.Type())
	return []slog.Attr{
		slog.String(logging.KeyTaskID, id),
		slog.String(logging.KeyTaskType, t.Type()),
		slog.String(logging.KeyQueue, queue),
		slog.Int(logging.KeyRetry, retry),
		slog.String(logging.KeyEventID, id),
		slog.String(logging.KeyEventType, eventType),
	}
}

// lazyTaskLogger returns what taskLogger does, but adds the task's keys
// to log's handler (which formats them at once) only when a line is
// logged: most handlers log nothing, and Meta.Log is made for each task.
func lazyTaskLogger(ctx context.Context, log *slog.Logger, t *asynq.Task) *slog.Logger {
	return slog.New(&lazyAttrs{h: log.Handler(), attrs: taskAttrs(ctx, t)})
}

// lazyAttrs is h with attrs, added by h.WithAttrs at the first use that
// needs them.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
	once  sync.Once
	with  slog.Handler
}

func (l *lazyAttrs) get() slog.Handler {
	l.once.Do(func() { l.with = l.h.WithAttrs(l.attrs) })
	return l.with
}

func (l *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error { return l.get().Handle(ctx, r) }

func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler { return l.get().WithAttrs(attrs) }

func (l *lazyAttrs) WithGroup(name string) slog.Handler { return l.get().WithGroup(name) }

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
