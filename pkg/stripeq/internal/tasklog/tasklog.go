// Package tasklog gives a task's log lines its keys: task_id, task_type,
// queue, retry, stripe_event_id and stripe_event_type. Part of
// pkg/stripeq's engine: internal, no compatibility promise.
package tasklog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Logger returns log with the task's ID, type, queue and retry count.
func Logger(ctx context.Context, log *slog.Logger, t *asynq.Task) *slog.Logger {
	return slog.New(log.Handler().WithAttrs(attrs(ctx, t)))
}

// attrs are the keys Logger adds: task_id, task_type, queue,
// retry, stripe_event_id and stripe_event_type.
func attrs(ctx context.Context, t *asynq.Task) []slog.Attr {
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

// Lazy returns what Logger does, but adds the task's keys
// to log's handler (which formats them at once) only when a line is
// logged: most handlers log nothing, and stripeq.Meta.Log is made for
// each task.
func Lazy(ctx context.Context, log *slog.Logger, t *asynq.Task) *slog.Logger {
	return slog.New(&lazyAttrs{h: log.Handler(), attrs: attrs(ctx, t)})
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

// Asynq sends asynq's own log lines to slog.
type Asynq struct{ Log *slog.Logger }

func (l Asynq) Debug(args ...any) { l.Log.Debug(fmt.Sprint(args...)) }
func (l Asynq) Info(args ...any)  { l.Log.Info(fmt.Sprint(args...)) }
func (l Asynq) Warn(args ...any)  { l.Log.Warn(fmt.Sprint(args...)) }
func (l Asynq) Error(args ...any) { l.Log.Error(fmt.Sprint(args...)) }
func (l Asynq) Fatal(args ...any) { l.Log.Error(fmt.Sprint(args...)) }
