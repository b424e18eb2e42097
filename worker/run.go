package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// taskCheckInterval is how often an idle worker looks for new tasks. asynq's
// default of 1 s puts about half a second between an event's 200 and its
// handler; at 100 ms that is tens of milliseconds, for one cheap Redis
// call per idle processor per interval.
const taskCheckInterval = 100 * time.Millisecond

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
	redisconn.SetLogger(log)
	rdb := redisconn.NewClient(cfg.Redis)
	defer rdb.Close()

	w := &worker{log: log, records: records{rdb: rdb}}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            map[string]int{cfg.Queue: 1},
		TaskCheckInterval: taskCheckInterval,
		RetryDelayFunc:    backoff(cfg.RetryBase),
		ShutdownTimeout:   cfg.ShutdownTimeout,
		ErrorHandler:      errorHandler(log),
		Logger:            asynqLogger{log.With("component", "asynq")},
		HealthCheckFunc: func(err error) {
			if err != nil {
				log.Error("Redis does not answer; retrying", logging.Err(err))
			}
		},
	})
	if err := srv.Start(w.mux()); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("worker running", "redis", cfg.RedisURL, "queue", cfg.Queue,
		"concurrency", cfg.Concurrency, "handled_types", len(stripetask.Handled()))
	<-ctx.Done()
	log.Info("worker stopping; unfinished tasks return to Redis", "shutdown_timeout", cfg.ShutdownTimeout.String())
	srv.Shutdown()
	log.Info("worker stopped")
	return nil
}

// backoff returns the retry delay policy: base·2ⁿ after the n-th failure
// (n from 0), with ±20% jitter so that a burst of failures does not retry
// in lockstep. With the default base of 30 s and MaxRetry 7 the retries
// come about 30s, 1m, 2m, 4m, 8m, 16m and 32m apart: about 64 minutes from
// the first failure to the archive.
func backoff(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base << min(n, 20)
		jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
		return d + jitter
	}
}

// errorHandler logs each failed attempt once: a warning while retries are
// left, an error when the task is archived.
func errorHandler(log *slog.Logger) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		l := taskLogger(ctx, log, t)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if retried >= maxRetry || errors.Is(err, asynq.SkipRetry) {
			l.ErrorContext(ctx, "task failed and is archived; re-run it from the dashboard once fixed", logging.Err(err))
			return
		}
		l.WarnContext(ctx, "task failed; will retry", logging.Err(err), "retries_left", maxRetry-retried)
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
