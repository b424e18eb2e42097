package console

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"golang.org/x/time/rate"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// BenchmarkConsoleList measures GET /api/executions, first page of 50,
// with 100,000 retained executions in Redis: the index query plus one
// GetTaskInfo per row, JSON included.
//
//	TEST_REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench ConsoleList -benchtime 20x ./dashboard/
func BenchmarkConsoleList(b *testing.B) {
	db := redistest.New(b)
	vars := map[string]string{"REDIS_URL": db.URL, "DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	execindextest.Bulk(b, db.Client, cfg.Task.Queue, execindextest.BulkShape{N: 100_000, Customers: 2000, Archived: 0.03, Span: 7 * 24 * time.Hour})
	b.Logf("seeded 100,000 executions in %v", time.Since(start).Round(time.Millisecond))
	env := execindextest.Seed(b, db.Client, cfg.Task.Queue, nil)
	s := newServer(slog.New(slog.DiscardHandler), cfg, db.Client, http.NotFoundHandler(), http.NotFoundHandler(), env.Inspector, env.Client)
	s.reads = auth.NewUserLimits(rate.Inf, 1)
	h := s.handler()
	for _, q := range execindextest.ConsoleQueries {
		name := q
		if name == "" {
			name = "unfiltered"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/executions?"+q, nil)
				r.SetBasicAuth(opUser, opPass)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
