// Package execindextest puts real, indexed Stripe executions in a chosen
// asynq state into a test's Redis, for the index's and the Console's tests.
//
// Tasks reach their state the way they would in production: a real asynq
// server completes, fails or holds them, and the Inspector archives them.
// After seeding, the queue is paused, so that the tasks stay where they
// are while the test looks at them; tasks seeded as active stay active
// until the test ends or cancels them.
//
// Test support internal to this module, with no compatibility promise;
// the supported test kit for your own handlers is pkg/stripeq/stripeqtest.
package execindextest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// Exec describes one execution to seed.
type Exec struct {
	ID   string // event ID, "evt_…"
	Type string // a type with a stripetest fixture, e.g. "invoice.payment_failed"
	// Livemode, Customer and Account override the fixture's; an empty
	// Customer keeps the fixture's customer.
	Livemode bool
	Customer string
	Account  string
	// APIVersion overrides the fixture's api_version when set.
	APIVersion string
	// State is one of execindex.States; empty means pending.
	State string
	// Permanent, with State archived, has the task archived by a handler's
	// permanent failure (an error wrapping asynq.SkipRetry, ErrFailed's
	// message) before its retries ran out, as the worker's would be,
	// instead of archived by the Inspector with no error.
	Permanent bool
	// ReceivedAt is the indexed received time; zero means now.
	ReceivedAt time.Time
	// Unchecked stores the task under ID even when ID is not a valid
	// Stripe ID, as a version of stripeq that did not validate IDs did: for
	// tests of what hostile data already in Redis does to the Console.
	Unchecked bool
}

// ErrFailed is the error a seeded retry or archived-by-failure task
// failed with.
var ErrFailed = errors.New("seeded failure: card_declined")

// Env is what Seed made.
type Env struct {
	Queue     string
	Client    *asynq.Client
	Inspector *asynq.Inspector
	Index     *execindex.Index
	// Bodies holds each seeded event body by ID.
	Bodies map[string][]byte

	rdb redis.UniversalClient
}

// Keep keeps a failure of the seeded execution id in the failure store,
// as the worker does when asynq gives up on it; with trim, it then
// deletes the task from asynq, as asynq's trimming of its archive does,
// so that only the failure store keeps it.
func (env *Env) Keep(t testing.TB, id string, trim bool) {
	t.Helper()
	info, err := env.Inspector.GetTaskInfo(env.Queue, id)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).UTC()
	r := failures.Record{ID: id, Queue: env.Queue, TaskType: info.Type, FailedAt: at, MaxRetry: info.MaxRetry, Err: "boom"}
	if err := failures.New(env.rdb, 0).Keep(context.Background(), r, failures.Attempt{At: at, Start: at.Add(-time.Second), MS: 1000, Worker: "w:1", Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if trim {
		if err := env.Inspector.DeleteTask(env.Queue, id); err != nil {
			t.Fatal(err)
		}
	}
}

// Body returns the event body of e, as stored in the task.
func Body(e Exec) []byte {
	created := e.ReceivedAt
	if created.IsZero() {
		created = time.Now()
	}
	return stripetest.Edit(stripetest.Event(e.Type, e.ID, created), func(m map[string]any) {
		m["livemode"] = e.Livemode
		if e.Account != "" {
			m["account"] = e.Account
		}
		if e.APIVersion != "" {
			m["api_version"] = e.APIVersion
		}
		if e.Customer != "" {
			o := stripetest.Object(m)
			if o["object"] == "customer" {
				o["id"] = e.Customer
			} else {
				o["customer"] = e.Customer
			}
		}
	})
}

// WithObjectField returns body, an event of e.g. [Body], with the raw JSON
// value added as field name of its data.object, first: for values
// stripetest.Edit cannot make, such as nesting thousands of levels deep.
func WithObjectField(body []byte, name, value string) []byte {
	i := bytes.Index(body, []byte(`"object":{`))
	if i < 0 {
		panic("execindextest: no data.object in the event")
	}
	i += len(`"object":{`)
	out := append([]byte{}, body[:i]...)
	out = append(out, strconv.Quote(name)+":"+value+","...)
	return append(out, body[i:]...)
}

// Store enqueues body, a signed-off event as the api would store it, in
// env's queue, pending, and indexes it now. It returns its metadata.
func (env *Env) Store(t testing.TB, body []byte) stripetask.Metadata {
	t.Helper()
	task, m, err := stripetask.New(body, stripetask.Options{Queue: env.Queue})
	if err != nil {
		t.Fatalf("execindextest: %v", err)
	}
	if _, err := env.Client.Enqueue(task); err != nil {
		t.Fatalf("execindextest: enqueue %s: %v", m.ID, err)
	}
	if err := env.Index.Add(context.Background(), m.ID, m, time.Now()); err != nil {
		t.Fatal(err)
	}
	env.Bodies[m.ID] = body
	return m
}

// Seed stores execs in queue of rdb, indexes them, and brings each to its
// State. It fails the test when a task does not reach its state within 10
// seconds.
func Seed(t testing.TB, rdb redis.UniversalClient, queue string, execs []Exec) *Env {
	t.Helper()
	ctx := context.Background()
	env := &Env{
		Queue:     queue,
		Client:    asynq.NewClientFromRedisClient(rdb),
		Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Index:     execindex.New(rdb, queue),
		Bodies:    map[string][]byte{},
		rdb:       rdb,
	}
	opts := stripetask.Options{Queue: queue}
	want := map[string]string{}
	enqueue := func(e Exec, extra ...asynq.Option) {
		t.Helper()
		body := Body(e)
		task, m, err := stripetask.New(body, opts)
		if err != nil && e.Unchecked {
			// Decode a copy with a valid ID, then store it under e.ID.
			valid := e
			valid.ID = "evt_unchecked"
			if _, m, err = stripetask.New(Body(valid), opts); err == nil {
				m.ID = e.ID
				task = stripetask.NewFromMetadata(body, m, opts)
			}
		}
		if err != nil {
			t.Fatalf("execindextest: %s: %v", e.ID, err)
		}
		if _, err := env.Client.EnqueueContext(ctx, task, extra...); err != nil {
			t.Fatalf("execindextest: enqueue %s: %v", e.ID, err)
		}
		at := e.ReceivedAt
		if at.IsZero() {
			at = time.Now()
		}
		if err := env.Index.Add(ctx, e.ID, m, at); err != nil {
			t.Fatal(err)
		}
		env.Bodies[e.ID] = body
	}

	// First the executions a server must touch.
	var served []Exec
	for _, e := range execs {
		switch e.State {
		case execindex.StateCompleted, execindex.StateRetry, execindex.StateActive:
			served = append(served, e)
			want[e.ID] = e.State
		case execindex.StateArchived:
			if e.Permanent {
				served = append(served, e)
				want[e.ID] = e.State
			}
		}
	}
	var mu sync.Mutex
	outcome := map[string]string{}
	read := map[string]bool{} // the tasks whose handler has read its outcome
	for _, e := range served {
		outcome[e.ID] = e.State
		enqueue(e)
	}
	if len(served) > 0 {
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Queues:            map[string]int{queue: 1},
			Concurrency:       max(len(served), 4),
			TaskCheckInterval: 20 * time.Millisecond,
			RetryDelayFunc:    func(int, error, *asynq.Task) time.Duration { return time.Hour },
			ShutdownTimeout:   time.Second,
			Logger:            quietLogger{},
			LogLevel:          asynq.FatalLevel,
		})
		err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			mu.Lock()
			o := outcome[id]
			read[id] = true
			mu.Unlock()
			switch o {
			case execindex.StateCompleted, "":
				return nil
			case execindex.StateActive:
				<-ctx.Done()
				return ctx.Err()
			case execindex.StateArchived:
				return fmt.Errorf("%w: %w", ErrFailed, asynq.SkipRetry)
			default:
				return ErrFailed
			}
		}))
		if err != nil {
			t.Fatalf("execindextest: start server: %v", err)
		}
		t.Cleanup(srv.Shutdown)
		waitStates(t, env, want)
		// Re-run copies and run-now tasks must stay put for the test.
		if err := env.Inspector.PauseQueue(queue); err != nil {
			t.Fatal(err)
		}
		// A task the server may already have dequeued finishes first.
		waitStates(t, env, want)
		// asynq lists a task as active once it is dequeued, before its
		// handler runs: an active one must have read its outcome before
		// the flip below, or, on a loaded machine, it would complete.
		poll.Until(t, 10*time.Second, "execindextest: every served task's handler started", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(read) == len(outcome)
		})
		mu.Lock()
		for id := range outcome {
			outcome[id] = execindex.StateCompleted // re-runs succeed
		}
		mu.Unlock()
	}

	for _, e := range execs {
		switch e.State {
		case "", execindex.StatePending:
			enqueue(e)
			want[e.ID] = execindex.StatePending
		case execindex.StateScheduled:
			enqueue(e, asynq.ProcessIn(time.Hour))
			want[e.ID] = execindex.StateScheduled
		case execindex.StateArchived:
			if e.Permanent {
				continue // failed for good above
			}
			enqueue(e)
			if err := env.Inspector.ArchiveTask(queue, e.ID); err != nil {
				t.Fatalf("execindextest: archive %s: %v", e.ID, err)
			}
			want[e.ID] = execindex.StateArchived
		}
	}
	waitStates(t, env, want)
	return env
}

func waitStates(t testing.TB, env *Env, want map[string]string) {
	t.Helper()
	poll.Check(t, 10*time.Second, "execindextest: the tasks' states", func() error {
		for id, state := range want {
			info, err := env.Inspector.GetTaskInfo(env.Queue, id)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			if info.State.String() != state {
				return fmt.Errorf("%s is %s, want %s", id, info.State, state)
			}
		}
		return nil
	})
}

type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(args ...any) {
	slog.Error("asynq server", "args", args)
}
