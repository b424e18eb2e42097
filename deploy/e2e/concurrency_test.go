package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// slowStripe is a Stripe API that takes 100 ms per event (none when
// instant) and measures how many requests it serves at once. The worker
// retrieves each event inside its global concurrency slot, so this is the
// number of handlers running at once across all worker processes.
type slowStripe struct {
	instant       bool // answers at once, for benchmarks
	mu            sync.Mutex
	events        map[string][]byte
	charges       map[string]string // charge ID → customer ID, at /v1/charges/{id}
	inFlight, max int
	served        int
}

func (s *slowStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if charge, ok := strings.CutPrefix(r.URL.Path, "/v1/charges/"); ok {
		s.mu.Lock()
		customer := s.charges[charge]
		s.mu.Unlock()
		if customer == "" {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"No such charge"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"object":"charge","customer":%q}`, charge, customer)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/v1/events/")
	s.mu.Lock()
	body, ok := s.events[id]
	s.inFlight++
	s.max = max(s.max, s.inFlight)
	s.mu.Unlock()
	if !s.instant {
		time.Sleep(100 * time.Millisecond)
	}
	s.mu.Lock()
	s.inFlight--
	s.served++
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"No such event"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// TestGlobalConcurrency runs two worker processes with WORKER_CONCURRENCY=10
// each and measures how many handlers run at once: at most
// GLOBAL_CONCURRENCY=5 together, and more than 5 with the limit off.
func TestGlobalConcurrency(t *testing.T) {
	for _, tt := range []struct {
		global  int
		wantMax func(int) bool
		want    string
	}{
		{5, func(m int) bool { return m <= 5 && m >= 4 }, "4 or 5"},
		{0, func(m int) bool { return m > 5 }, "more than 5 (limit off)"},
	} {
		t.Run("GLOBAL_CONCURRENCY="+strconv.Itoa(tt.global), func(t *testing.T) {
			db := redistest.New(t)
			api := &slowStripe{events: map[string][]byte{}}
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)

			const n = 60
			client := asynq.NewClientFromRedisClient(db.Client)
			for i := range n {
				id := fmt.Sprintf("evt_conc_%03d", i)
				body := stripetest.Edit(stripetest.Event("customer.updated", id, time.Unix(1767225600+int64(i), 0)), func(e map[string]any) {
					stripetest.Object(e)["id"] = fmt.Sprintf("cus_conc_%03d", i)
				})
				api.events[id] = body
				task, _, err := stripetask.New(body, stripetask.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := client.Enqueue(task); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{
				"REDIS_URL": db.URL, "WORKER_CONCURRENCY": "10", "GLOBAL_CONCURRENCY": strconv.Itoa(tt.global),
				"STRIPE_SECRET_KEY": "sk_test_stripeq", "STRIPE_API_BASE": srv.URL,
			}
			bin := proctest.Binary(t, "worker")
			start := time.Now()
			proctest.Start(t, "worker-1", bin, env)
			proctest.Start(t, "worker-2", bin, env)

			insp := asynq.NewInspectorFromRedisClient(db.Client)
			poll.Value(t, 60*time.Second, fmt.Sprintf("%d completed tasks", n), func() (*asynq.QueueInfo, error) {
				return redistest.QueueCompleted(insp, "stripe", n)
			})
			api.mu.Lock()
			defer api.mu.Unlock()
			t.Logf("%d events, 2 workers × 10, GLOBAL_CONCURRENCY=%d: at most %d at once, %v", n, tt.global, api.max, time.Since(start).Round(10*time.Millisecond))
			if !tt.wantMax(api.max) {
				t.Errorf("at most %d handlers ran at once, want %s", api.max, tt.want)
			}
		})
	}
}
