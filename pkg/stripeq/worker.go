package stripeq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/alerts"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/attempts"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/completion"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/destinations"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/stripecopy"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/tasklog"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/workermetrics"
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
	stripe   *stripecopy.Client // nil without StripeSecretKey
	slots    *slots.Slots       // global concurrency
	failures *failures.Store
	timeout  time.Duration
	metrics  *workermetrics.Metrics
	alerts   alerts.Alerter
	// completions is rdb as Run hands it to asynq's server: it carries
	// each successful attempt's writes in the task's completion.
	completions *completion.Client

	mu      sync.Mutex
	routes  map[string]*route // by Stripe event type
	served  *asynq.ServeMux   // of routes; nil until first used, and after Handle
	running bool
}

// NewWorker returns a worker for cfg, with no handler yet. It checks cfg
// as [ConfigFromEnv] does, failing closed on a setting that would send a
// credential in the clear or use the wrong kind of key, and returns every
// problem at once, each named by its Go field ("Config.RedisURL",
// "Config.Destinations[0].Secret"), or for a Config of ConfigFromEnv by
// its variable. It connects to Redis lazily: an
// unreachable Redis is logged and retried by Run, which closes the
// connections when it returns.
//
// NewWorker changes nothing outside the worker: stripe-go's log lines of
// the worker's Stripe client go to cfg.Logger, redacted, and go-redis's
// own log lines, which only a process-wide setting routes, go where the
// program sends them (the worker command calls redisconn.SetLogger).
func NewWorker(cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	env, destination := envconfig.Named(configFields), destinationField
	if cfg.fromEnv { // ConfigFromEnv's: its problems are named by variable
		env, destination = envconfig.New(func(string) string { return "" }), destinationVariable
	}
	redisOpt := cfg.check(env, destination)
	if err := env.Err(); err != nil {
		return nil, fmt.Errorf("stripeq: %w", err)
	}
	rdb := redisconn.NewClient(redisOpt)
	w := &Worker{
		cfg:      cfg,
		log:      cfg.Logger,
		rdb:      rdb,
		redisOpt: redisOpt,
		warnings: env.Warnings(),
		slots:    slots.New(rdb, cfg.Queue, max(cfg.GlobalConcurrency, 0)),
		failures: failures.New(rdb, cfg.FailedRetention),
		timeout:  cfg.HandlerTimeout,
		alerts: alerts.New(alerts.Config{WebhookURL: cfg.AlertWebhookURL, DashboardURL: cfg.DashboardURL,
			Queue: cfg.Queue, Interval: cfg.AlertInterval}, rdb),
		routes:      map[string]*route{},
		completions: completion.New(rdb),
	}
	w.metrics = workermetrics.New(asynq.NewInspectorFromRedisClient(rdb), workermetrics.NewStoreCollector(rdb, w.queues()))
	if cfg.StripeSecretKey != "" {
		w.stripe = stripecopy.New(cfg.StripeSecretKey, cfg.StripeAPIBase, cfg.Concurrency, cfg.Logger)
	}
	return w, nil
}

// queues are the queues the worker processes: Queue, or its shards.
func (w *Worker) queues() []string {
	return stripetask.Queues(stripetask.Options{Queue: w.cfg.Queue, Shards: w.cfg.Shards})
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
	return w.stripe.API
}

// Logger returns the worker's logger. In a handler, use the event's Log,
// which carries the task's keys.
func (w *Worker) Logger() *slog.Logger { return w.log }

// Handled returns the event types that have a handler, sorted.
func (w *Worker) Handled() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A loop, not maps.Keys: its generic dictionary would expose the
	// routes, and through them the Worker, to reflection, and the linker
	// would then keep every method of stripe-go's client in every
	// program (1.3 MB).
	types := make([]string, 0, len(w.routes))
	for t := range w.routes {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// ProcessTask runs the handlers of one task as the server would, without
// its retries, error handler, result writer or global concurrency slot:
// for tests, with tasks built by stripetask.New. It returns the handlers'
// error, marked as the server would see it (see [HandlerFunc]). The test
// kit, pkg/stripeq/stripeqtest, runs an event in one call and returns
// its outcome and what the worker would do next.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return w.mux().ProcessTask(ctx, t)
}

// mux routes each Stripe task to its event type's handlers, and any other
// Stripe task to unhandled.
func (w *Worker) mux() *asynq.ServeMux {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.served != nil {
		return w.served
	}
	mux := asynq.NewServeMux()
	mux.Use(attempts.Middleware(attempts.Config{
		Store: w.failures, RDB: w.rdb, Log: w.log, HistoryTTL: w.cfg.TaskRetention,
		IsFailure: isFailure, Wait: shownWait, Completions: w.completions,
	}))
	for t, r := range w.routes {
		// A func, not the route itself: a *route in an interface would
		// expose its *Worker to reflection, as Handled says.
		mux.Handle(stripetask.TaskType(t), asynq.HandlerFunc(r.process))
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
	defer w.slots.Close()
	cfg, log := w.cfg, w.log
	for _, warning := range w.warnings {
		log.Warn("unsafe setting: " + warning)
	}
	ds := make([]destinations.Config, len(cfg.Destinations))
	for i, d := range cfg.Destinations {
		ds[i] = d.config()
	}
	forward := &destinations.Runner{
		RDB: w.rdb, Events: w.completions, Log: log, Metrics: w.metrics, Alerts: w.alerts, AllowLinkLocal: cfg.AllowLinkLocalDestinations,
		RetryBase: cfg.RetryBaseDelay, ShutdownTimeout: cfg.ShutdownTimeout, CheckInterval: taskCheckInterval, Destinations: ds,
	}
	stopDestinations, err := forward.Start()
	if err != nil {
		return err
	}
	defer stopDestinations()
	var h asynq.Handler = w.mux()
	if len(ds) > 0 {
		h = forward.WithFanout(asynq.NewClientFromRedisClient(w.rdb), h)
	}
	srv := asynq.NewServerFromRedisClient(w.completions, w.serverConfig())
	w.completions.Activate()
	defer w.completions.Flush() // after the server stopped, before Redis closes
	if err := srv.Start(h); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			srv.Shutdown()
			return fmt.Errorf("METRICS_ADDR (Config.MetricsAddr) %s: %w", cfg.MetricsAddr, err)
		}
		go func() {
			if err := w.metrics.Serve(ctx, l); err != nil {
				log.Error("metrics server stopped", logging.Err(err))
			}
		}()
		log.Info("metrics and health at http://" + l.Addr().String() + "/metrics and /healthz")
	}
	go w.alerts.Run(ctx, log)
	log.Info("worker running", "redis", redisconn.Redacted(cfg.RedisURL), "queue", cfg.Queue, "queue_shards", cfg.Shards,
		"concurrency", cfg.Concurrency, "global_concurrency", max(cfg.GlobalConcurrency, 0),
		"refetch_from_stripe", w.stripe != nil, "alert_webhook", cfg.AlertWebhookURL != "",
		"handled_types", len(w.Handled()), "destinations", len(ds))
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
func (w *Worker) serverConfig() asynq.Config {
	cfg, log := w.cfg, w.log
	queues := map[string]int{}
	for _, q := range w.queues() {
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
		ErrorHandler:             errorHandler(log, w.alerts, w.metrics),
		Logger:                   tasklog.Asynq{Log: log.With("component", "asynq")},
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
func errorHandler(log *slog.Logger, alerter alerts.Alerter, m *workermetrics.Metrics) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		l := tasklog.Logger(ctx, log, t)
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		eventType, _ := stripetask.EventType(t.Type())
		switch {
		case errors.Is(err, attempts.ErrNotKept):
			m.Handled.WithLabelValues(eventType, "waiting").Inc()
			l.ErrorContext(ctx, "task failed for good, but the failure store did not answer; retried without counting until it does", logging.Err(err))
		case !isFailure(err):
			m.Handled.WithLabelValues(eventType, "waiting").Inc()
			l.DebugContext(ctx, "task waits; retried without counting", logging.Err(err))
		case retried >= maxRetry || errors.Is(err, ErrPermanent):
			m.Handled.WithLabelValues(eventType, "archived").Inc()
			alerter.Archived(ctx, l, t, id, err)
		default:
			m.Handled.WithLabelValues(eventType, "retry").Inc()
			l.WarnContext(ctx, "task failed; will retry", logging.Err(err), "retries_left", maxRetry-retried)
		}
	})
}

// SetRedisLogger sends go-redis's own log lines (a failed dial, a broken
// pool connection) to log at warning level. go-redis has one logger for
// the whole process, so NewWorker leaves it alone: call SetRedisLogger from
// your program's main when you want those lines in your logs, as the
// worker command does.
func SetRedisLogger(log *slog.Logger) { redisconn.SetLogger(log) }
