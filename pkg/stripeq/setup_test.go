package stripeq

import (
	"log/slog"
	"testing"
)

// newTestWorker returns a worker with no handler, on a Redis it never
// reaches unless a test uses it, with no global concurrency limit.
func newTestWorker(t testing.TB) *Worker {
	t.Helper()
	w, err := NewWorker(Config{GlobalConcurrency: NoLimit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rdb.Close() })
	return w
}
