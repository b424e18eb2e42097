package stripeq_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
)

// untilDone calls Once until it no longer answers ErrInProgress, as the
// task's retries would.
func untilDone(ctx context.Context, t *testing.T, run func() error) error {
	t.Helper()
	for {
		err := run()
		if !errors.Is(err, stripeq.ErrInProgress) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestOnceConcurrentDeliveries runs one event's side effect from 8
// executions at once (deliveries, a retry, re-runs with their own task
// IDs): it is done once, and every execution completes.
func TestOnceConcurrentDeliveries(t *testing.T) {
	db := redistest.New(t)
	var done atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		m := at("evt_1", 100)
		m.TaskID = "evt_1"
		if i%2 == 1 {
			m.TaskID = "evt_1:rerun:" + string(rune('0'+i))
		}
		wg.Go(func() {
			err := untilDone(t.Context(), t, func() error {
				return stripeq.Once(t.Context(), db.Client, m, "welcome_email", func(context.Context) error {
					done.Add(1)
					time.Sleep(50 * time.Millisecond) // the SMTP conversation
					return nil
				})
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := done.Load(); n != 1 {
		t.Errorf("side effect done %d times, want 1", n)
	}
}

func TestOnce(t *testing.T) {
	ctx := context.Background()
	count := func(n *int) func(context.Context) error {
		return func(context.Context) error { *n++; return nil }
	}
	t.Run("a re-run of the event does nothing again", func(t *testing.T) {
		db := redistest.New(t)
		n := 0
		m := at("evt_1", 100)
		for _, taskID := range []string{"evt_1", "evt_1", "evt_1:rerun:1", "evt_1:rerun:2"} {
			m.TaskID = taskID
			if err := stripeq.Once(ctx, db.Client, m, "grant", count(&n)); err != nil {
				t.Fatal(err)
			}
		}
		if n != 1 {
			t.Errorf("done %d times, want 1", n)
		}
		if ttl := db.Client.TTL(ctx, keyspace.Once("evt_1", "grant")).Val(); ttl < stripeq.OnceTTL-time.Minute {
			t.Errorf("done marker TTL %v, want about %v", ttl, stripeq.OnceTTL)
		}
	})
	t.Run("each kind and each event once", func(t *testing.T) {
		db := redistest.New(t)
		n := 0
		for _, id := range []string{"evt_1", "evt_2"} {
			for _, kind := range []string{"grant", "email", "grant"} {
				if err := stripeq.Once(ctx, db.Client, at(id, 100), kind, count(&n)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n != 4 {
			t.Errorf("done %d times, want 4", n)
		}
	})
	t.Run("a failure releases the claim: the retry does it", func(t *testing.T) {
		db := redistest.New(t)
		boom := errors.New("smtp down")
		err := stripeq.Once(ctx, db.Client, at("evt_1", 100), "email", func(context.Context) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the side effect's", err)
		}
		n := 0
		if err := stripeq.Once(ctx, db.Client, at("evt_1", 100), "email", count(&n)); err != nil || n != 1 {
			t.Errorf("retry: %v, done %d times; want done once", err, n)
		}
	})
	t.Run("a crash mid-side-effect: done again after the lease", func(t *testing.T) {
		db := redistest.New(t)
		// The claim a killed execution left, with its lease.
		db.Client.Set(ctx, keyspace.Once("evt_1", "email"), "token-of-a-dead-worker", 300*time.Millisecond)
		n := 0
		if err := stripeq.Once(ctx, db.Client, at("evt_1", 100), "email", count(&n)); !errors.Is(err, stripeq.ErrInProgress) || n != 0 {
			t.Fatalf("during the lease: %v, done %d times; want ErrInProgress", err, n)
		}
		time.Sleep(400 * time.Millisecond)
		if err := stripeq.Once(ctx, db.Client, at("evt_1", 100), "email", count(&n)); err != nil || n != 1 {
			t.Errorf("after the lease: %v, done %d times; want done once (at least once)", err, n)
		}
	})
	t.Run("the lease outlives the handler's deadline", func(t *testing.T) {
		db := redistest.New(t)
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		stripeq.Once(ctx, db.Client, at("evt_1", 100), "email", func(context.Context) error {
			if ttl := db.Client.PTTL(ctx, keyspace.Once("evt_1", "email")).Val(); ttl < time.Minute {
				t.Errorf("claim TTL %v while running, want past the handler's minute", ttl)
			}
			return nil
		})
	})
	t.Run("no kind is permanent", func(t *testing.T) {
		db := redistest.New(t)
		err := stripeq.Once(ctx, db.Client, at("evt_1", 100), "", count(new(int)))
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("err = %v, want permanent", err)
		}
	})
}

// TestOnceFor: a key of your own spans events. Stripe sends one
// invoice.payment_failed per failed attempt at an invoice, each a new
// event: keyed by the invoice, the dunning email goes once; keyed by the
// event (Once), once per attempt. An empty key is permanent.
func TestOnceFor(t *testing.T) {
	db := redistest.New(t)
	var perInvoice, perEvent atomic.Int32
	for _, evt := range []string{"evt_attempt_1", "evt_attempt_2", "evt_attempt_3"} {
		m := at(evt, 100)
		if err := stripeq.OnceFor(t.Context(), db.Client, "in_1", "dunning_email", func(context.Context) error {
			perInvoice.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := stripeq.Once(t.Context(), db.Client, m, "dunning_email", func(context.Context) error {
			perEvent.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if perInvoice.Load() != 1 || perEvent.Load() != 3 {
		t.Errorf("OnceFor ran %d times, Once %d; want 1 and 3", perInvoice.Load(), perEvent.Load())
	}
	if got := db.Client.Get(t.Context(), keyspace.Once("in_1", "dunning_email")).Val(); got != "done" {
		t.Errorf("%s = %q, want done", keyspace.Once("in_1", "dunning_email"), got)
	}
	if err := stripeq.OnceFor(t.Context(), db.Client, "", "x", func(context.Context) error { return nil }); !errors.Is(err, stripeq.ErrPermanent) {
		t.Errorf("OnceFor with no key: %v, want a permanent error", err)
	}
}
