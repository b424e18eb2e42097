package stripeq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// inlineReceiver is a destination that answers each webhook-id as its
// plan says: an event whose ID contains "_busy" gets a 503 with
// Retry-After: 1 the first time, one with "_slow" an answer after 4 s the
// first time; every other POST a 200 at once.
type inlineReceiver struct {
	mu    sync.Mutex
	posts map[string]int
}

func (r *inlineReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.posts[id]++
	n := r.posts[id]
	r.mu.Unlock()
	switch {
	case strings.Contains(id, "_busy") && n == 1:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	case strings.Contains(id, "_slow") && n == 1:
		select {
		case <-time.After(4 * time.Second):
		case <-req.Context().Done():
		}
	}
}

func (r *inlineReceiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts[id]
}

// TestInlineDelivery: a destination is delivered to in the event's own
// task while it is healthy, and the delivery is stored as asynq would
// have stored it as a completed task of its own; a destination not yet
// known healthy, one that answers 503, one that does not answer within
// InlineTimeout, and an event whose handler fails get their deliveries as
// tasks, as before, with the inline attempt recorded as the first.
//
// A delivery is inline when the worker never enqueued it: no command it
// sent names the delivery queue's pending or scheduled set.
func TestInlineDelivery(t *testing.T) {
	db := redistest.New(t)
	ctx := t.Context()
	rc := &inlineReceiver{posts: map[string]int{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w, err := NewWorker(Config{
		RedisURL: db.URL, Concurrency: 1, GlobalConcurrency: 5, RetryBaseDelay: time.Second, Logger: slog.New(slog.DiscardHandler),
		Destinations: []Destination{{Name: "app", URL: srv.URL, Secret: testDestSecret, Concurrency: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	enqueued := map[string]bool{}
	w.rdb.AddHook(roundTrips(func(cmds []redis.Cmder) {
		for _, c := range cmds {
			args := fmt.Sprint(c.Args()...)
			if strings.Contains(args, keyspace.Pending(delivery.Queue("app"))) || strings.Contains(args, keyspace.Scheduled(delivery.Queue("app"))) {
				for _, a := range c.Args() {
					if s, ok := a.(string); ok && strings.Contains(s, ":dest:") {
						mu.Lock()
						enqueued[s] = true
						mu.Unlock()
					}
				}
			}
		}
	}))
	Handle(w, "invoice.paid", func(context.Context, *Event[map[string]any]) error { return nil })
	Handle(w, "invoice.payment_failed", func(context.Context, *Event[map[string]any]) error { return errors.New("handler fails") })
	sw := &slotWorker{w: w}
	sw.start(t)
	defer sw.stop()

	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	dq := delivery.Queue("app")
	send := func(id, typ string) (*asynq.Task, time.Time) {
		t.Helper()
		body := stripetest.Edit(stripetest.Fixture(typ), func(e map[string]any) { e["id"] = id })
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
		return task, at
	}
	// delivered waits for the delivery of event id to complete and
	// returns it, whether it was inline, and its attempts, oldest first.
	delivered := func(id string) (*asynq.TaskInfo, bool, []map[string]any) {
		t.Helper()
		did := delivery.ID(id, "app")
		var info *asynq.TaskInfo
		poll.Until(t, 15*time.Second, "the delivery of "+id+" completed", func() bool {
			info, err = insp.GetTaskInfo(dq, did)
			return err == nil && info.State == asynq.TaskStateCompleted
		})
		mu.Lock()
		inline := !enqueued[did]
		mu.Unlock()
		// A delivery made as a task has its attempts list; one made inline
		// has none, and its one attempt in its task hash.
		list := db.Client.LRange(ctx, keyspace.DeliveryAttempts(did), 0, -1).Val()
		field := db.Client.HGet(ctx, keyspace.Task(dq, did), delivery.AttemptField).Val()
		if inline && (len(list) > 0 || field == "") || !inline && field != "" {
			t.Errorf("%s (inline %v): attempts list %v, field %q", did, inline, list, field)
		}
		if inline {
			list = []string{field}
		}
		var attempts []map[string]any
		for _, s := range list {
			var a map[string]any
			json.Unmarshal([]byte(s), &a)
			attempts = append(attempts, a)
		}
		return info, inline, attempts
	}

	// Not yet known healthy: a task.
	first, _ := send("evt_inline_first", "invoice.paid")
	asTask, inline, _ := delivered("evt_inline_first")
	if inline {
		t.Fatal("the first delivery, to a destination not yet known healthy, was made inline")
	}
	want := delivery.New(first, "evt_inline_first", "app", 0)
	if asTask.Type != want.Type() || !maps.Equal(asTask.Headers, want.Headers()) {
		t.Fatalf("the delivery task: %s %v, want %s %v", asTask.Type, asTask.Headers, want.Type(), want.Headers())
	}

	// Healthy: inline, stored as the task would have been.
	for _, id := range []string{"evt_inline_1", "evt_inline_2", "evt_inline_3"} {
		task, sent := send(id, "invoice.paid")
		info, inline, attempts := delivered(id)
		want := delivery.New(task, id, "app", 0)
		switch {
		case !inline:
			t.Errorf("%s: delivered as a task, want inline (the destination answered the last POST at once)", id)
		case info.Type != want.Type() || !maps.Equal(info.Headers, want.Headers()) || string(info.Payload) != string(task.Payload()):
			t.Errorf("%s: stored %s %v, want %s %v and the event's payload", id, info.Type, info.Headers, want.Type(), want.Headers())
		case info.MaxRetry != asTask.MaxRetry || info.Retention != asTask.Retention || info.Queue != dq || info.Retried != 0:
			t.Errorf("%s: max retry %d, retention %v, queue %s, retried %d; want as the task's: %d, %v, %s, 0",
				id, info.MaxRetry, info.Retention, info.Queue, info.Retried, asTask.MaxRetry, asTask.Retention, dq)
		case info.CompletedAt.Before(sent.Truncate(time.Second)) || info.CompletedAt.After(time.Now()):
			t.Errorf("%s: completed at %v, not within the test", id, info.CompletedAt)
		case len(attempts) != 1 || attempts[0]["status"] != 200.0:
			t.Errorf("%s: attempts %v, want one 200", id, attempts)
		case rc.count(id) != 1:
			t.Errorf("%s: %d POSTs, want 1", id, rc.count(id))
		}
	}
	if q, err := insp.GetQueueInfo(dq); err != nil || q.Completed != 4 || q.Processed != 4 {
		t.Errorf("the destination's queue: %+v, %v; want 4 completed and processed today", q, err)
	}

	// A 503 with Retry-After: the inline attempt is the first, the task
	// waits the Retry-After, delivers, and uses up no retry.
	_, sent := send("evt_inline_busy", "invoice.paid")
	poll.Until(t, 5*time.Second, "the busy event's task completed", func() bool {
		info, err := insp.GetTaskInfo(stripetask.DefaultQueue, "evt_inline_busy")
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	// A destination that just failed is unhealthy: the next delivery is a
	// task (whose success makes it healthy again).
	send("evt_inline_after", "invoice.paid")
	if _, inline, _ := delivered("evt_inline_after"); inline {
		t.Error("a delivery right after a 503 was made inline")
	}
	info, inline, attempts := delivered("evt_inline_busy")
	if inline || info.Retried != 0 || len(attempts) != 2 || attempts[0]["status"] != 503.0 || attempts[1]["status"] != 200.0 ||
		rc.count("evt_inline_busy") != 2 || info.CompletedAt.Sub(sent) < time.Second-10*time.Millisecond {
		t.Errorf("after a 503: inline %v, retried %d, attempts %v, %d POSTs, delivered after %v; want a task, 0, [503 200], 2, ≥ 1 s (Retry-After)",
			inline, info.Retried, attempts, rc.count("evt_inline_busy"), info.CompletedAt.Sub(sent))
	}

	// No answer within InlineTimeout: the event's task does not wait for
	// DESTINATION_TIMEOUT (30 s); the delivery is a task.
	send("evt_inline_2b", "invoice.paid") // healthy again, checked
	if _, inline, _ := delivered("evt_inline_2b"); !inline {
		t.Fatal("a delivery after a task's success was not inline")
	}
	_, sent = send("evt_inline_slow", "invoice.paid")
	var event *asynq.TaskInfo
	poll.Until(t, 10*time.Second, "the slow event's task completed", func() bool {
		event, err = insp.GetTaskInfo(stripetask.DefaultQueue, "evt_inline_slow")
		return err == nil && event.State == asynq.TaskStateCompleted
	})
	_, inline, attempts = delivered("evt_inline_slow")
	if took := event.CompletedAt.Sub(sent.Truncate(time.Second)); took > 3*time.Second {
		t.Errorf("the event's task completed %v after it was sent: the inline POST waited past InlineTimeout", took)
	}
	if inline || len(attempts) != 2 || !strings.Contains(fmt.Sprint(attempts[0]["error"]), "inline delivery's limit (1s)") || attempts[1]["status"] != 200.0 {
		t.Errorf("after no answer: inline %v, attempts %v; want a task, the inline attempt's timeout then a 200", inline, attempts)
	}

	// A handler that fails: the delivery does not wait for it, as a task.
	send("evt_inline_fails", "invoice.payment_failed")
	if _, inline, _ := delivered("evt_inline_fails"); inline || rc.count("evt_inline_fails") != 1 {
		t.Errorf("the delivery of an event whose handler failed: inline %v, %d POSTs; want a task, 1", inline, rc.count("evt_inline_fails"))
	}
}
