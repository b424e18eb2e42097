package builtin

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// setup returns a worker with the built-in handlers over a fresh Redis
// database, with no global concurrency limit, no Stripe API and no email.
func setup(t testing.TB) (*stripeq.Worker, *redistest.DB) {
	t.Helper()
	return setupWith(t, stripeq.Config{}, Options{})
}

// setupWith is setup with settings: cfg's Redis, queue, concurrency
// limit, timeouts and logger are filled in when zero.
func setupWith(t testing.TB, cfg stripeq.Config, o Options) (*stripeq.Worker, *redistest.DB) {
	t.Helper()
	db := redistest.New(t)
	cfg.RedisURL = db.URL
	if cfg.GlobalConcurrency == 0 {
		cfg.GlobalConcurrency = -1
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = 100 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := stripeq.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Redis().Close() })
	Register(w, o)
	return w, db
}

// process runs the worker's handler for one event body, as asynq would.
func process(t testing.TB, w *stripeq.Worker, body []byte) error {
	t.Helper()
	task, _, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatalf("build task: %v", err)
	}
	return w.ProcessTask(context.Background(), task)
}

// runServer runs w until the test ends.
func runServer(t *testing.T, w *stripeq.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
