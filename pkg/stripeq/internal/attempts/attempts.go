// Package attempts is the worker's middleware that records every attempt
// of a Stripe event's task in its attempt history (pkg/failures: start,
// duration, worker, error, outcome, each handler's part), keeps the task
// in the failure store before asynq archives it, writes the outcome of an
// attempt that succeeds as the task's result, and hands the task's global
// concurrency slot back, all in the round trip that records the attempt.
// Part of pkg/stripeq's engine: internal, no compatibility promise.
package attempts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/completion"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/execution"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/stack"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/tasklog"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// ErrNotKept means a task failed for good but its failure could not be
// written to the failure store: it is retried without counting instead of
// archived, so that asynq's archive never holds a failure the store lacks.
var ErrNotKept = errors.New("failure not kept: the failure store did not answer")

// Config is what the middleware records with, and how it reads a
// handler's error.
type Config struct {
	Store *failures.Store
	RDB   redis.UniversalClient
	Log   *slog.Logger
	// HistoryTTL is how long a completed task's attempt list is kept: its
	// retention (TASK_RETENTION).
	HistoryTTL time.Duration
	// IsFailure reports whether err counts against the task's retries, as
	// asynq's Config.IsFailure.
	IsFailure func(err error) bool
	// Wait returns how long err asks the task to wait without using up a
	// retry, when it is a wait to show in the attempt history (a rate
	// limit); false for any other error.
	Wait func(err error) (time.Duration, bool)
	// Completions, when set and active, carries the writes of an attempt
	// that succeeded in asynq's completion of the task; nil: they go in a
	// round trip of their own.
	Completions *completion.Client
}

// Middleware records each attempt (see the package doc). An attempt that
// succeeds is written with the handler's Outcome as the task's result,
// and the resolution of a kept failure, in one pipeline
// (failures.Store.CompleteIn) that also releases the task's global
// concurrency slot, or parks it for the process's next handler
// (pkg/stripeq/internal/slots), and, through Config.Completions, carries
// asynq's completion of the task: one Redis round trip per execution for
// both. A
// failed attempt with retries left, and a wait (a rate limit), are
// written, and the slot released or parked, the same way, with the
// handlers that succeeded so far in the execution (failures.DoneField),
// so that the next attempt does not run them again. (The slot of a task
// archived, or of a wait that is not shown, is released in a round trip of
// its own.) A handler's panic is turned into its error here, so that it
// too is kept.
//
// Without the middleware (stripeq.Worker.ProcessTask, outside the server)
// the handler releases its slot itself.
func Middleware(c Config) asynq.MiddlewareFunc {
	return func(h asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
			id, ok := asynq.GetTaskID(ctx)
			if !ok || c.Store == nil {
				return h.ProcessTask(ctx, t) // outside the server (Worker.ProcessTask)
			}
			stack.Grow() // asynq's new goroutine, once, not doubling as the handler goes deeper
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			ctx, exec := execution.With(ctx)
			ctx, handoff := slots.WithHandoff(ctx)
			start := time.Now()
			func() {
				defer func() {
					if x := recover(); x != nil {
						err = fmt.Errorf("panic in handler: %v", x)
					}
				}()
				err = h.ProcessTask(ctx, t)
			}()
			end := time.Now()
			held := handoff.Take() // released by the handler when it returned, even by a panic
			o := exec.Get()
			a := failures.Attempt{At: end.UTC(), Start: start.UTC(), MS: end.Sub(start).Milliseconds(), Retry: retried, Worker: workerName,
				Handlers: failures.HandlerAttempts(exec.Handlers())}
			if o.Noted() {
				a.Outcome = o.Line()
			}
			done, progressed, hadProgress := exec.Progress()
			r := recorder{c: c, ctx: ctx, t: t, queue: queue, id: id, held: held}
			// The store's writes must not be cut short by the handler's
			// deadline or a shutdown.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			r.sctx = sctx
			switch {
			case err == nil:
				var result []byte // nil: a handler that noted nothing keeps any result it wrote itself
				if a.Outcome != "" {
					result, _ = json.Marshal(o)
				}
				resolve := retried > 0 || t.Headers()[stripetask.HeaderRerunOf] != ""
				const what = "completed, but its outcome and attempt were not recorded"
				write := func(p redis.Pipeliner) {
					c.Store.CompleteIn(sctx, p, queue, id, a, result, resolve, c.HistoryTTL)
					if hadProgress {
						c.Store.SetDoneIn(sctx, p, queue, id, nil)
					}
				}
				if !r.leave(what, write) {
					r.write(what, write)
				}
				return nil
			case !c.IsFailure(err):
				wait, shown := c.Wait(err)
				if !shown && !progressed {
					slots.ReleaseAll(sctx, held)
					return err
				}
				r.write("wait not recorded", func(p redis.Pipeliner) {
					if shown {
						a.Error, a.Waiting, a.Until = err.Error(), true, a.At.Add(wait)
						c.Store.AddAttemptIn(sctx, p, queue, id, a)
					}
					if progressed {
						c.Store.SetDoneIn(sctx, p, queue, id, done)
					}
				})
				return err
			}
			a.Error = err.Error()
			if retried < maxRetry && !errors.Is(err, asynq.SkipRetry) {
				r.write("attempt's error not recorded", func(p redis.Pipeliner) {
					c.Store.AddAttemptIn(sctx, p, queue, id, a)
					if progressed {
						c.Store.SetDoneIn(sctx, p, queue, id, done)
					}
				})
				return err
			}
			slots.ReleaseAll(sctx, held)
			if progressed {
				// For the Console's run-now of the archived task: a
				// round trip of its own, on this rare path.
				r.write("handlers done not recorded", func(p redis.Pipeliner) { c.Store.SetDoneIn(sctx, p, queue, id, done) })
			}
			rec := failures.Record{
				ID: id, Queue: queue, TaskType: t.Type(), Payload: t.Payload(), Headers: t.Headers(),
				FailedAt: a.At, Retried: retried, MaxRetry: maxRetry, Err: err.Error(),
			}
			if kerr := c.Store.Keep(sctx, rec, a); kerr != nil {
				return fmt.Errorf("%w: %v (handler: %v)", ErrNotKept, kerr, err)
			}
			return err
		})
	}
}

// recorder writes an attempt's commands with the release or parking of
// the slots the task held, which it then no longer holds.
type recorder struct {
	c         Config
	ctx, sctx context.Context
	t         *asynq.Task
	queue, id string
	held      []slots.Held
}

// write sends write's commands with the slots' release in one pipeline,
// and logs what, with the error, when Redis does not take them.
func (r *recorder) write(what string, write func(redis.Pipeliner)) {
	err := slots.Pipelined(r.sctx, r.c.RDB, r.held, write)
	r.held = nil
	if err != nil {
		r.warn(what, err)
	}
}

// leave leaves write's commands, with the parking or release of the
// slots, to asynq's completion of the task (Config.Completions), and
// reports whether it did: false when there is none, and the caller
// writes.
func (r *recorder) leave(what string, write func(redis.Pipeliner)) bool {
	var sent func([]redis.Cmder, error) error
	return r.c.Completions.Leave(r.id, completion.Writes{
		Queue: r.queue,
		Send: func(ctx context.Context, p redis.Pipeliner) {
			write(p)
			sent = slots.ParkIn(ctx, p, r.held)
		},
		Done: func(cmds []redis.Cmder, err error) {
			r.held = nil
			if err = sent(cmds, err); err != nil {
				r.warn(what, err)
			}
		},
		Alone: func() {
			// The middleware's context ended with it.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
			defer cancel()
			r.sctx = ctx
			r.write(what, write)
		},
	})
}

// warn logs what, with err, for the task.
func (r *recorder) warn(what string, err error) {
	tasklog.Logger(r.ctx, r.c.Log, r.t).WarnContext(r.ctx, what, logging.Err(err))
}

// workerName is this process in the attempt history: "hostname:pid".
var workerName = func() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s:%d", h, os.Getpid())
}()
