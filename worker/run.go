package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// taskCheckInterval is how often an idle worker looks for new tasks. asynq's
// default of 1 s puts about half a second between an event's 200 and its
// handler; at 25 ms the bench measured a median of 15 ms (p99 38–67 ms) at
// 200 events/s, for one cheap Redis call per idle processor per interval.
const taskCheckInterval = 25 * time.Millisecond

// run processes tasks until ctx ends, then stops the server: handlers that
// do not finish within the shutdown timeout have their tasks returned to
// Redis, to be run again.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log, err := logging.New(stdout, getenv)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("unsafe setting: " + w)
	}
	redisconn.SetLogger(log)
	stripe.DefaultLeveledLogger = stripeLogger{log}
	rdb := redisconn.NewClient(cfg.Redis)
	defer rdb.Close()

	w := &worker{
		log:      log,
		records:  records{rdb: rdb},
		notifier: notifier{rdb: rdb, mail: cfg.Mailer},
		slots:    newSlots(cfg.Redis, cfg.Queue, cfg.GlobalConcurrency),
		timeout:  cfg.HandlerTimeout,
		metrics:  newMetrics(asynq.NewInspectorFromRedisClient(rdb)),
	}
	defer w.slots.close()
	if cfg.StripeKey != "" {
		w.stripe = newStripeAPI(cfg.StripeKey, cfg.StripeAPIBase, cfg.Concurrency)
	}
	alerts := alerter{webhookURL: cfg.AlertWebhookURL, dashboardURL: cfg.DashboardURL, client: alertClient()}
	srv := asynq.NewServerFromRedisClient(rdb, serverConfig(cfg, log, alerts, w.metrics))
	if err := srv.Start(w.mux()); err != nil {
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
	log.Info("worker running", "redis", cfg.RedisURL, "queue", cfg.Queue, "queue_shards", max(cfg.Shards, 1),
		"concurrency", cfg.Concurrency, "global_concurrency", cfg.GlobalConcurrency,
		"refetch_from_stripe", w.stripe != nil, "email", cfg.Mailer != nil, "alert_webhook", cfg.AlertWebhookURL != "",
		"handled_types", len(stripetask.Handled()))
	<-ctx.Done()
	log.Info("worker stopping; unfinished tasks return to Redis", "shutdown_timeout", cfg.ShutdownTimeout.String())
	srv.Shutdown()
	log.Info("worker stopped")
	return nil
}

// serverConfig is the asynq server's configuration. It processes every
// shard queue with equal weight.
func serverConfig(cfg config, log *slog.Logger, alerts alerter, m *metrics) asynq.Config {
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
		RetryDelayFunc:           retryDelay(cfg.RetryBase),
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
func errorHandler(log *slog.Logger, alerts alerter, m *metrics) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		l := taskLogger(ctx, log, t)
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		eventType, _ := stripetask.EventType(t.Type())
		switch {
		case retried >= maxRetry || errors.Is(err, asynq.SkipRetry):
			m.handled.WithLabelValues(eventType, "archived").Inc()
			alerts.archived(ctx, l, t, id, err)
		case !isFailure(err):
			m.handled.WithLabelValues(eventType, "waiting").Inc()
			l.DebugContext(ctx, "task waits; retried without counting", logging.Err(err))
		default:
			m.handled.WithLabelValues(eventType, "retry").Inc()
			l.WarnContext(ctx, "task failed; will retry", logging.Err(err), "retries_left", maxRetry-retried)
		}
	})
}

// taskLogger returns log with the task's ID, type, queue and retry count.
func taskLogger(ctx context.Context, log *slog.Logger, t *asynq.Task) *slog.Logger {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retry, _ := asynq.GetRetryCount(ctx)
	eventType, _ := stripetask.EventType(t.Type())
	return log.With(
		slog.String(logging.KeyTaskID, id),
		slog.String(logging.KeyTaskType, t.Type()),
		slog.String(logging.KeyQueue, queue),
		slog.Int(logging.KeyRetry, retry),
		slog.String(logging.KeyEventID, id),
		slog.String(logging.KeyEventType, eventType),
	)
}

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
