package stripeq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// slotReleases counts how the worker's client sends the releases (ZREM)
// and parkings (its reads of the flag and the lease) of the slot key: with an attempt's writes in
// one pipeline, or on their own; and the acquisitions (acquireScript).
type slotReleases struct {
	key      string
	mu       sync.Mutex
	withAtt  int // in a pipeline that also writes the attempt
	alone    int // in a round trip of their own
	attempts int // round trips that write an attempt
	acquires int // acquireScript runs
}

// roundTrips is a go-redis hook that hands every round trip's commands
// to a counter, one command or a pipeline's.
type roundTrips func(cmds []redis.Cmder)

func (f roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (f roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		f(cmds)
		return next(ctx, cmds)
	}
}

func (h *slotReleases) count(cmds []redis.Cmder) {
	zrem, att, acq := false, false, 0
	for _, c := range cmds {
		args := c.Args()
		switch {
		case c.Name() == "zrem" && len(args) > 1 && args[1] == h.key:
			zrem = true
		case c.Name() == "zscore" && len(args) > 1 && args[1] == h.key: // the park's read of its lease
			zrem = true
		case c.Name() == "evalsha" && len(args) > 3 && args[3] == h.key: // the scripts are loaded: loadSlotScripts
			if acquire, _ := slots.Scripts(); args[1] == acquire.Hash() {
				acq++
			}
		case c.Name() == "rpush" || (c.Name() == "hset" && strings.Contains(c.String(), "stripeq_attempt")):
			att = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.acquires += acq
	if att {
		h.attempts++
	}
	switch {
	case zrem && att:
		h.withAtt++
	case zrem:
		h.alone++
	}
}

// loadSlotScripts loads the slot scripts into db's server, so that the
// worker runs them with EVALSHA only (slotReleases counts those).
func loadSlotScripts(t testing.TB, db *redistest.DB) {
	t.Helper()
	acquire, renew := slots.Scripts()
	for _, s := range []*redis.Script{acquire, renew} {
		if err := s.Load(t.Context(), db.Client).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSlotReleasedWithAttempt runs tasks that succeed, panic, time out,
// fail once and fail for good under a global concurrency limit: each slot
// is released or parked in the round trip that writes its attempt (a task
// archived at once releases in its own), and every slot is free right
// after, not a lease later: a parked slot no task takes is released
// within slotParkIdle.
func TestSlotReleasedWithAttempt(t *testing.T) {
	db := redistest.New(t)
	loadSlotScripts(t, db)
	w, err := NewWorker(Config{
		RedisURL: db.URL, GlobalConcurrency: 2, RetryBaseDelay: 50 * time.Millisecond,
		HandlerTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	hook := &slotReleases{key: keyspace.Slots(stripetask.DefaultQueue)}
	w.rdb.AddHook(roundTrips(hook.count))
	var mu sync.Mutex
	runs := map[string]int{}
	Handle(w, "invoice.paid", func(ctx context.Context, e *Event[map[string]any]) error {
		mu.Lock()
		runs[e.ID]++
		n := runs[e.ID]
		mu.Unlock()
		switch {
		case strings.HasSuffix(e.ID, "_panics") && n == 1:
			panic("boom")
		case strings.HasSuffix(e.ID, "_times_out") && n == 1:
			<-ctx.Done()
			return ctx.Err()
		case strings.HasSuffix(e.ID, "_fails_once") && n == 1:
			return errors.New("the database is down")
		case strings.HasSuffix(e.ID, "_permanent"):
			return Permanent(errors.New("bad event"))
		}
		e.SetOutcome("done")
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := asynq.NewClientFromRedisClient(db.Client)
	names := []string{"succeeds", "panics", "times_out", "fails_once", "permanent"}
	for _, name := range names {
		body := stripetest.Edit(stripetest.Fixture("invoice.paid"), func(e map[string]any) { e["id"] = "evt_slot_" + name })
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	poll.Check(t, 30*time.Second, "every task finished", func() error {
		finished := 0
		for _, name := range names {
			info, err := insp.GetTaskInfo(stripetask.DefaultQueue, "evt_slot_"+name)
			if err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived) {
				finished++
			}
		}
		if finished != len(names) {
			return fmt.Errorf("%d of %d", finished, len(names))
		}
		return nil
	})
	// Well within the lease (6 s): the slots were released, not expired.
	poll.Check(t, time.Second, "the slots released", func() error {
		if held := db.Client.ZRangeWithScores(t.Context(), hook.key, 0, -1).Val(); len(held) > 0 {
			return fmt.Errorf("still held: %v", held)
		}
		return nil
	})
	hook.mu.Lock()
	defer hook.mu.Unlock()
	// 8 attempts: succeeds 1, panics 2, times out 2, fails once 2 (each with
	// its attempt and release or parking in one round trip), permanent 1
	// (kept, and released on its own); and the parked slots released when
	// idle, on their own.
	if hook.withAtt != 7 || hook.alone < 1 || hook.attempts != 7 {
		t.Errorf("slot releases: %d with their attempt's writes, %d alone; %d attempt writes; want 7, at least 1, 7", hook.withAtt, hook.alone, hook.attempts)
	}
}
