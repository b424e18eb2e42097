package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestConcurrentDuplicates posts one event 50 times at once, each delivery
// signed anew as Stripe does, to an api with a worker running: exactly one
// is stored, the others are answered "duplicate", and the event has one
// task and one notification. 50 more once it is processed change nothing.
func TestConcurrentDuplicates(t *testing.T) {
	db := redistest.New(t)
	addr := proctest.FreeAddr(t)
	startAPI(t, "api", addr, db.URL, nil)
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
	waitFor(t, 20*time.Second, "the task to complete", func() bool {
		return taskStates(t, db.Client, []string{id})[id] == "completed"
	})
	second := burst()
	if second["duplicate"] != 50 {
		t.Errorf("50 deliveries after processing answered %v, want 50 duplicate", second)
	}
	time.Sleep(500 * time.Millisecond) // a second task would be running by now

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
