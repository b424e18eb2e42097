package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// setup returns a worker over a fresh Redis database, with no global
// concurrency limit, no Stripe API and no email.
func setup(t *testing.T) (*worker, *redistest.DB) {
	t.Helper()
	db := redistest.New(t)
	return &worker{
		log:      slog.New(slog.DiscardHandler),
		records:  records{rdb: db.Client},
		notifier: notifier{rdb: db.Client},
		timeout:  time.Minute,
		metrics:  newMetrics(asynq.NewInspectorFromRedisClient(db.Client)),
	}, db
}

// process runs the worker's handler for one event body, as asynq would.
func process(t *testing.T, w *worker, body []byte) error {
	t.Helper()
	task, _, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatalf("build task: %v", err)
	}
	return w.mux().ProcessTask(context.Background(), task)
}

func TestCustomerRecords(t *testing.T) {
	t0 := time.Unix(1767225600, 0)
	created := stripetest.Event("customer.created", "evt_c1", t0)
	updated := stripetest.Edit(stripetest.Event("customer.updated", "evt_c2", t0.Add(time.Minute)), func(e map[string]any) {
		stripetest.Object(e)["email"] = "jenny@new.example.com"
	})
	deleted := stripetest.Event("customer.deleted", "evt_c3", t0.Add(2*time.Minute))
	record := func(email, deleted, event string, at time.Time) map[string]string {
		return map[string]string{
			"email": email, "name": "Jenny Rosen", "deleted": deleted,
			"last_event_id": event, "last_event_created": strconv.FormatInt(at.Unix(), 10),
		}
	}
	tests := []struct {
		name   string
		events [][]byte
		want   map[string]string
	}{
		{"created", [][]byte{created}, record("jenny.rosen@example.com", "false", "evt_c1", t0)},
		{"created then updated", [][]byte{created, updated}, record("jenny@new.example.com", "false", "evt_c2", t0.Add(time.Minute))},
		{"updated arrives before created", [][]byte{updated, created}, record("jenny@new.example.com", "false", "evt_c2", t0.Add(time.Minute))},
		{"deleted", [][]byte{created, updated, deleted}, record("jenny.rosen@example.com", "true", "evt_c3", t0.Add(2*time.Minute))},
		{"deleted arrives first", [][]byte{deleted, updated, created}, record("jenny.rosen@example.com", "true", "evt_c3", t0.Add(2*time.Minute))},
		{"same event twice", [][]byte{created, created}, record("jenny.rosen@example.com", "false", "evt_c1", t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, db := setup(t)
			for _, e := range tt.events {
				if err := process(t, w, e); err != nil {
					t.Fatalf("handler: %v", err)
				}
			}
			got, err := db.Client.HGetAll(context.Background(), "stripeq:customer:{cus_stripeq_demo}").Result()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("record = %v\nwant     %v", got, tt.want)
			}
		})
	}
}

func TestUndecodableObjectIsPermanent(t *testing.T) {
	w, _ := setup(t)
	body := stripetest.Edit(stripetest.Fixture("customer.created"), func(e map[string]any) {
		stripetest.Object(e)["email"] = map[string]any{"not": "a string"}
	})
	err := process(t, w, body)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want one wrapping asynq.SkipRetry", err)
	}
}

// TestUnhandledTypesFallBack checks the mux's fallback for a Stripe type
// with no handler of its own. (That every type in stripetask.Handled has
// its handler is checked by mux itself, which panics otherwise.)
func TestUnhandledTypesFallBack(t *testing.T) {
	w, _ := setup(t)
	mux := w.mux()
	if _, pattern := mux.Handler(asynq.NewTask("stripe:product.created", nil)); pattern != stripetask.TypePrefix {
		t.Errorf("an unhandled type is served by %q, want the %q fallback", pattern, stripetask.TypePrefix)
	}
}

func TestRetryDelay(t *testing.T) {
	f := retryDelay(30 * time.Second)
	for n := range stripetask.MaxRetry {
		base := 30 * time.Second << n
		for range 50 {
			d := f(n, errors.New("x"), nil)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("retry %d: delay %v outside %v ±20%%", n, d, base)
			}
		}
	}
	if d := f(3, &rateLimitedError{after: 7 * time.Second}, nil); d != 8*time.Second {
		t.Errorf("after a 429 with Retry-After 7: %v, want 8s", d)
	}
	if d := f(3, fmt.Errorf("wrapped: %w", errNoSlot), nil); d < time.Second || d > 2*time.Second {
		t.Errorf("without a slot: %v, want 1–2s", d)
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errors.New("redis down"), true},
		{&rateLimitedError{after: time.Second}, false},
		{errNoSlot, false},
		{permanent("bad object"), true},
	} {
		if got := isFailure(tt.err); got != tt.want {
			t.Errorf("isFailure(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
