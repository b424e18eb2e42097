package stripeq_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRunRecordsOutcomeAndAttempts runs a worker whose handler fails once,
// then succeeds and records its outcome: the task, as the Console reads it,
// shows the retry and the outcome as its Result.
func TestRunRecordsOutcomeAndAttempts(t *testing.T) {
	db := redistest.New(t)
	w, err := stripeq.NewWorker(stripeq.Config{
		RedisURL: db.URL, GlobalConcurrency: 2, RetryBaseDelay: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		if attempts.Add(1) == 1 {
			return errors.New("the database is down")
		}
		if e.Retried != 1 || e.TaskID != e.ID || e.Queue != stripetask.DefaultQueue {
			t.Errorf("meta on the retry = %+v", e.Meta)
		}
		e.SetOutcome("granted to " + e.Object.Customer.ID)
		return nil
	})
	run(t, w)
	m := enqueue(t, db, stripetest.Fixture("invoice.paid"))
	info := waitState(t, db, m.ID, asynq.TaskStateCompleted)
	o, _ := outcome.Parse(info.Result)
	if o.Line() != "granted to cus_stripeq_demo" || info.Retried != 1 || info.LastErr != "the database is down" {
		t.Errorf("result %q, retried %d, last error %q", info.Result, info.Retried, info.LastErr)
	}
	// Both attempts, in order: the failure with its error, then the
	// success, each with its start, duration and worker.
	h, err := failures.New(db.Client, 0).Attempts(t.Context(), stripetask.DefaultQueue, m.ID)
	if err != nil || len(h) != 2 {
		t.Fatalf("history %+v, %v", h, err)
	}
	if h[0].Error != "the database is down" || h[0].Retry != 0 || h[1].Error != "" || h[1].Retry != 1 || h[1].Outcome != "granted to cus_stripeq_demo" {
		t.Errorf("history %+v", h)
	}
	for _, a := range h {
		if a.Start.IsZero() || a.At.Before(a.Start) || !strings.Contains(a.Worker, ":") {
			t.Errorf("attempt %+v", a)
		}
	}
	if ttl := db.Client.PTTL(t.Context(), keyspace.FailAttempts(stripetask.DefaultQueue, m.ID)).Val(); ttl < 71*time.Hour || ttl > 72*time.Hour {
		t.Errorf("history TTL %v, want TASK_RETENTION's 72h", ttl)
	}
}

// TestRateLimitWaitIsAnAttempt: a handler's RateLimitError is a wait, not
// a failure, and the attempt history shows it: waiting, until when, and
// why; the execution then succeeds on its first counted attempt.
func TestRateLimitWaitIsAnAttempt(t *testing.T) {
	db := redistest.New(t)
	w, err := stripeq.NewWorker(stripeq.Config{RedisURL: db.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	stripeq.Handle(w, "invoice.paid", func(context.Context, *stripeq.Event[stripe.Invoice]) error {
		if calls.Add(1) == 1 {
			return &stripeq.RateLimitError{After: time.Second, Err: errors.New("the CRM answered 429")}
		}
		return nil
	})
	run(t, w)
	m := enqueue(t, db, stripetest.Fixture("invoice.paid"))
	info := waitState(t, db, m.ID, asynq.TaskStateCompleted)
	h, err := failures.New(db.Client, 0).Attempts(t.Context(), stripetask.DefaultQueue, m.ID)
	if err != nil || len(h) != 2 || info.Retried != 0 {
		t.Fatalf("history %+v, %v; retried %d", h, err, info.Retried)
	}
	wait := h[0]
	if !wait.Waiting || !strings.Contains(wait.Error, "the CRM answered 429") || wait.Until.Sub(wait.At) != 2*time.Second || h[1].Waiting || h[1].Error != "" {
		t.Errorf("history %+v, want a wait of 1 s (2 s with padding) for the CRM's 429, then the success", h)
	}
	if ttl := db.Client.PTTL(t.Context(), keyspace.FailAttempts(stripetask.DefaultQueue, m.ID)).Val(); ttl < 71*time.Hour || ttl > 72*time.Hour {
		t.Errorf("the list of a first attempt after a wait expires in %v, want the task's retention", ttl)
	}
}
