package stripeq

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// completionTrips counts the round trips that take a task out of asynq's
// active list (its completion, by the script's hash), with the attempt's
// writes or alone, and those that write an attempt alone.
type completionTrips struct {
	active string
	mu     sync.Mutex
	with   int // the completion and the attempt's writes in one round trip
	alone  int // a completion alone
	writes int // the attempt's writes alone
}

func (h *completionTrips) count(cmds []redis.Cmder) {
	done, att := false, false
	for _, c := range cmds {
		args := c.Args()
		switch {
		// By its hash: the first completions in a fresh Redis find no
		// script (NOSCRIPT) and go again with its text, alone.
		case c.Name() == "evalsha" && len(args) > 3 && args[3] == h.active:
			done = true
		case c.Name() == "hset" && strings.Contains(c.String(), failures.AttemptField):
			att = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case done && att:
		h.with++
	case done:
		h.alone++
	case att:
		h.writes++
	}
}

// TestCompletionCarriesTheAttempt drains tasks that succeed, with and
// without a global concurrency limit: each attempt's writes (the outcome
// as the task's result, the first attempt's field, the slot's parking)
// go in the round trip of asynq's completion of the task, and every task
// is completed with its outcome and attempt recorded.
func TestCompletionCarriesTheAttempt(t *testing.T) {
	for _, global := range []int{-1, 2} {
		t.Run("global "+strconv.Itoa(global), func(t *testing.T) {
			db := redistest.New(t)
			w, err := NewWorker(Config{RedisURL: db.URL, GlobalConcurrency: global, Concurrency: 3, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			hook := &completionTrips{active: keyspace.Active(stripetask.DefaultQueue)}
			w.rdb.AddHook(roundTrips(hook.count))
			Handle(w, "invoice.paid", func(ctx context.Context, e *Event[map[string]any]) error {
				e.SetOutcome("paid")
				return nil
			})
			const n = 40
			enqueueInvoices(t, db, "done", n)
			sw := &slotWorker{w: w}
			sw.start(t)
			completed := keyspace.Completed(stripetask.DefaultQueue)
			poll.Until(t, 30*time.Second, "every task completed", func() bool { return db.Client.ZCard(t.Context(), completed).Val() == n })
			sw.stop()
			hook.mu.Lock()
			defer hook.mu.Unlock()
			if hook.with != n || hook.alone != 0 || hook.writes != 0 {
				t.Errorf("%d completions with their attempt's writes, %d alone, %d writes alone; want %d, 0, 0", hook.with, hook.alone, hook.writes, n)
			}
			for i := range n {
				id := fmt.Sprintf("evt_done_%04d", i)
				h := db.Client.HGetAll(t.Context(), keyspace.Task(stripetask.DefaultQueue, id)).Val()
				if h["state"] != "completed" || !strings.Contains(h["result"], "paid") || h[failures.AttemptField] == "" {
					t.Fatalf("task %s: state %q, result %q, attempt %q; want completed with its outcome and attempt", id, h["state"], h["result"], h[failures.AttemptField])
				}
			}
			if global > 0 {
				poll.Until(t, time.Second, "the parked slots released", func() bool { return db.Client.ZCard(t.Context(), keyspace.Slots(stripetask.DefaultQueue)).Val() == 0 })
			}
		})
	}
}
