package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestConcurrentDuplicates posts one event 50 times at once, each delivery
// signed anew as Stripe does, to an api with a worker running: exactly one
// is stored, the others are answered "duplicate", and the event has one
// task and one notification. 50 more once it is processed change nothing.
func TestConcurrentDuplicates(t *testing.T) {
	db := redistest.New(t)
	_, addr := startAPI(t, "api", db.URL, nil)
	startWorker(t, "worker", db.URL, nil)
	id := "evt_dup_concurrent"
	body := stripetest.Event("invoice.finalized", id, time.Now().Add(-time.Minute))
	client := loadClient()

	burst := func() map[string]int {
		start := make(chan struct{})
		var (
			mu      sync.Mutex
			answers = map[string]int{}
			wg      sync.WaitGroup
		)
		for range 50 {
			wg.Go(func() {
				<-start
				a := send(client, "http://"+addr, body)
				mu.Lock()
				defer mu.Unlock()
				if a.status != 200 {
					t.Errorf("answer %d %q %v", a.status, a.message, a.err)
				}
				answers[a.message]++
			})
		}
		close(start)
		wg.Wait()
		return answers
	}

	first := burst()
	if first["Received"] != 1 || first["duplicate"] != 49 {
		t.Errorf("50 concurrent deliveries answered %v, want 1 Received and 49 duplicate", first)
	}
	ctx := context.Background()
	poll.Until(t, 20*time.Second, "the task to complete", func() bool {
		return taskStates(t, db.Client, []string{id})[id] == "completed"
	})
	second := burst()
	if second["duplicate"] != 50 {
		t.Errorf("50 deliveries after processing answered %v, want 50 duplicate", second)
	}
	// The api answers once the task is stored or refused (one Lua script),
	// so the answers are the signal: a second task would be in Redis now.

	keys, err := db.Client.Keys(ctx, "asynq:{stripe}:t:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Errorf("tasks in Redis: %v, want one", keys)
	}
	msgs := notifications(t, db.Client)
	if len(msgs) != 1 || msgs[0].Values["event_id"] != id || msgs[0].Values["kind"] != "invoice" {
		t.Errorf("notifications = %v, want one invoice notification for %s", msgs, id)
	}
	t.Logf("100 deliveries of one event (50 at once, twice): %v then %v; 1 task, %d notification", first, second, len(msgs))
}

// TestRedeliveryAfterRetention runs the api with TASK_RETENTION=1s and a
// worker, whose asynq janitor deletes finished tasks past their retention.
// Once an event's task is gone, a redelivery within DEDUPE_WINDOW (7 days
// by default) of the event's creation is still answered "duplicate" from
// its marker, and nothing runs twice; an event created 8 days ago, past
// the window, is stored again, as api/README.md ("Duplicates") says.
func TestRedeliveryAfterRetention(t *testing.T) {
	db := redistest.New(t)
	_, addr := startAPI(t, "api", db.URL, map[string]string{"TASK_RETENTION": "1s"})
	startWorker(t, "worker", db.URL, nil)
	client := loadClient()
	base := "http://" + addr
	day6 := stripetest.Event("invoice.finalized", "evt_redelivered_day6", time.Now().Add(-6*24*time.Hour))
	day8 := stripetest.Event("invoice.finalized", "evt_redelivered_day8", time.Now().Add(-8*24*time.Hour))
	ids := []string{"evt_redelivered_day6", "evt_redelivered_day8"}
	for _, body := range [][]byte{day6, day8} {
		if a := send(client, base, body); a.status != 200 || a.message != "Received" {
			t.Fatalf("first delivery: %d %q %v", a.status, a.message, a.err)
		}
	}
	waited := poll.Until(t, 40*time.Second, "the janitor to delete both finished tasks", func() bool {
		states := taskStates(t, db.Client, ids)
		return states[ids[0]] == "" && states[ids[1]] == ""
	})
	if n := len(notifications(t, db.Client)); n != 2 {
		t.Fatalf("%d notifications after the first deliveries, want 2", n)
	}

	if a := send(client, base, day6); a.status != 200 || a.message != "duplicate" {
		t.Errorf("redelivery on day 6, its task gone: %d %q %v, want 200 duplicate", a.status, a.message, a.err)
	}
	if a := send(client, base, day8); a.status != 200 || a.message != "Received" {
		t.Errorf("redelivery on day 8, past the window: %d %q %v, want 200 Received", a.status, a.message, a.err)
	}
	poll.Until(t, 20*time.Second, "the day-8 event's second task to complete", func() bool {
		return taskStates(t, db.Client, ids[1:])[ids[1]] == "completed"
	})
	// The day-6 redelivery was answered "duplicate" before the day-8 one
	// was sent: had it stored a task, the task would be there.
	if s := taskStates(t, db.Client, ids[:1])[ids[0]]; s != "" {
		t.Errorf("the day-6 event has a task again (%s)", s)
	}
	// The day-8 event's second task runs the handler, but the invoice's
	// notification was sent once and is not sent again.
	if n := len(notifications(t, db.Client)); n != 2 {
		t.Errorf("%d notifications after the redeliveries, want still 2", n)
	}
	t.Logf("tasks deleted by the janitor %v after the first deliveries; redeliveries answered duplicate (day 6) and Received (day 8)", waited.Round(time.Second))
}
