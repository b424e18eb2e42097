package stripeq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestSeveralHandlers runs two handlers of invoice.paid, "a" then "b",
// through a real server, and checks what each outcome of theirs does to
// the execution: which of them run again, what the task becomes, and what
// the result and the attempt history say of each.
func TestSeveralHandlers(t *testing.T) {
	ok := func(int) error { return nil }
	tests := []struct {
		name       string
		a, b       func(run int) error // the n-th run of each handler
		bOpts      []stripeq.HandleOption
		state      asynq.TaskState
		runsA      int
		runsB      int
		retried    int
		lastErr    string   // in the task's last error
		attempts   []string // each attempt's handlers: "a done, b failed"
		doneRecord []string // the names stripeq_done holds at the end
	}{
		{
			name: "b fails once: a is not run again", a: ok,
			b:     func(n int) error { return errIf(n == 1, errors.New("crm down")) },
			state: asynq.TaskStateCompleted, runsA: 1, runsB: 2, retried: 1,
			attempts: []string{"a done, b failed", "a done_before, b done"},
		},
		{
			name: "a fails for good, b succeeds: archived at once, b kept done",
			a:    func(int) error { return stripeq.Permanent(errors.New("bad object")) }, b: ok,
			state: asynq.TaskStateArchived, runsA: 1, runsB: 1, lastErr: "a: bad object",
			attempts: []string{"a failed, b done"}, doneRecord: []string{"b"},
		},
		{
			name: "a waits for a rate limit: no retry used, b not run again",
			a:    func(n int) error { return errIf(n == 1, &stripeq.RateLimitError{After: 0, Err: errors.New("429")}) }, b: ok,
			state: asynq.TaskStateCompleted, runsA: 2, runsB: 1, retried: 0,
			attempts: []string{"a waiting, b done", "a done, b done_before"},
		},
		{
			name:  "a fails once, b fails for good: retried, then archived",
			a:     func(n int) error { return errIf(n == 1, errors.New("db down")) },
			b:     func(int) error { return stripeq.Permanent(errors.New("no such plan")) },
			state: asynq.TaskStateArchived, runsA: 2, runsB: 2, retried: 1, lastErr: "b: no such plan",
			attempts: []string{"a failed, b failed", "a done, b failed"}, doneRecord: []string{"a"},
		},
		{
			name: "b is written for another API version: only b's part is archived",
			a:    ok, b: ok, bOpts: []stripeq.HandleOption{stripeq.APIVersions("2025-03-31.basil")},
			state: asynq.TaskStateArchived, runsA: 1, runsB: 0, lastErr: "b: stripeq: the event's API version",
			attempts: []string{"a done, b failed"}, doneRecord: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			w, err := stripeq.NewWorker(stripeq.Config{RedisURL: db.URL, RetryBaseDelay: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			var runsA, runsB atomic.Int32
			stripeq.Handle(w, "invoice.paid", func(_ context.Context, e *stripeq.Event[stripe.Invoice]) error {
				e.SetOutcome("granted")
				return tt.a(int(runsA.Add(1)))
			}, stripeq.Name("a"))
			stripeq.Handle(w, "invoice.paid", func(_ context.Context, e *stripeq.Event[stripe.Invoice]) error {
				e.RecordChanged("crm:"+e.Object.ID, true, "")
				return tt.b(int(runsB.Add(1)))
			}, append([]stripeq.HandleOption{stripeq.Name("b")}, tt.bOpts...)...)
			run(t, w)
			m := enqueue(t, db, stripetest.Fixture("invoice.paid"))
			info := waitState(t, db, m.ID, tt.state)

			if int(runsA.Load()) != tt.runsA || int(runsB.Load()) != tt.runsB || info.Retried != tt.retried {
				t.Errorf("a ran %d times, b %d, retried %d; want %d, %d, %d", runsA.Load(), runsB.Load(), info.Retried, tt.runsA, tt.runsB, tt.retried)
			}
			if !strings.Contains(info.LastErr, tt.lastErr) {
				t.Errorf("last error %q, want it to hold %q", info.LastErr, tt.lastErr)
			}
			history, err := failures.New(db.Client, 0).Attempts(t.Context(), stripetask.DefaultQueue, m.ID)
			if tt.state == asynq.TaskStateArchived {
				rec, kerr := failures.New(db.Client, 0).Get(t.Context(), stripetask.DefaultQueue, m.ID)
				history, err = rec.Attempts, kerr
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range history {
				var parts []string
				for _, h := range a.Handlers {
					parts = append(parts, h.Name+" "+h.Status)
				}
				got = append(got, strings.Join(parts, ", "))
			}
			if strings.Join(got, " | ") != strings.Join(tt.attempts, " | ") {
				t.Errorf("attempts %q, want %q", got, tt.attempts)
			}
			var done []outcome.Handler
			if b, err := db.Client.HGet(t.Context(), keyspace.Task(stripetask.DefaultQueue, m.ID), failures.DoneField).Bytes(); err == nil {
				json.Unmarshal(b, &done)
			}
			var names []string
			for _, d := range done {
				names = append(names, d.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.doneRecord, ",") {
				t.Errorf("stripeq_done holds %v, want %v", names, tt.doneRecord)
			}
			if tt.state != asynq.TaskStateCompleted {
				return
			}
			o, _ := outcome.Parse(info.Result)
			if len(o.Handlers) != 2 || o.Handlers[0].Name != "a" || o.Handlers[1].Name != "b" ||
				o.Handlers[0].Summary != "granted" || len(o.Records) != 1 || !strings.HasPrefix(o.Line(), "a: granted") {
				t.Errorf("outcome %+v, line %q", o, o.Line())
			}
		})
	}
}

// TestSeveralHandlersRunNow archives an execution whose handler a fails
// for good while b succeeds, then runs it now, as the Console does once a
// is fixed: only a runs, and the outcome keeps b's part from the first
// attempt.
func TestSeveralHandlersRunNow(t *testing.T) {
	db := redistest.New(t)
	w, err := stripeq.NewWorker(stripeq.Config{RedisURL: db.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	var runsA, runsB atomic.Int32
	stripeq.Handle(w, "invoice.paid", func(context.Context, *stripeq.Event[stripe.Invoice]) error {
		runsA.Add(1)
		return errIf(!fixed.Load(), stripeq.Permanent(errors.New("bad object")))
	}, stripeq.Name("a"))
	stripeq.Handle(w, "invoice.paid", func(_ context.Context, e *stripeq.Event[stripe.Invoice]) error {
		runsB.Add(1)
		e.SetOutcome("emailed")
		return nil
	}, stripeq.Name("b"))
	run(t, w)
	m := enqueue(t, db, stripetest.Fixture("invoice.paid"))
	waitState(t, db, m.ID, asynq.TaskStateArchived)
	fixed.Store(true)
	if err := asynq.NewInspectorFromRedisClient(db.Client).RunTask(stripetask.DefaultQueue, m.ID); err != nil {
		t.Fatal(err)
	}
	info := waitState(t, db, m.ID, asynq.TaskStateCompleted)
	if runsA.Load() != 2 || runsB.Load() != 1 {
		t.Errorf("a ran %d times, b %d; want 2 and 1", runsA.Load(), runsB.Load())
	}
	o, _ := outcome.Parse(info.Result)
	if len(o.Handlers) != 2 || o.Handlers[1].Status != outcome.HandlerDoneBefore || o.Handlers[1].Summary != "emailed" {
		t.Errorf("outcome %+v", o)
	}
	if db.Client.HExists(t.Context(), keyspace.Task(stripetask.DefaultQueue, m.ID), failures.DoneField).Val() {
		t.Errorf("stripeq_done outlived the execution's completion")
	}
}

func errIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// run runs w until the test ends.
func run(t *testing.T, w *stripeq.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// enqueue stores the event body as the api does, and returns its metadata.
func enqueue(t *testing.T, db *redistest.DB, body []byte) stripetask.Metadata {
	t.Helper()
	task, m, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(db.Client).Enqueue(task); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitState waits up to 20 s for the task id to reach state.
func waitState(t *testing.T, db *redistest.DB, id string, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	return poll.Value(t, 20*time.Second, fmt.Sprintf("task %s %v", id, state), func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(insp, stripetask.DefaultQueue, id, state)
	})
}
