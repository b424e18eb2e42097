package main

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// TestMonitoringListsAreBounded: every list of asynqmon's API takes at
// most maxMonitoringPageSize tasks a page and no page past the first
// execindex.MaxOffset tasks, as the Console's list, for viewers and
// operators alike; what is refused never reaches asynqmon.
func TestMonitoringListsAreBounded(t *testing.T) {
	b := setup(t, seeds)
	deepest := strconv.Itoa(execindex.MaxOffset/maxMonitoringPageSize + 1)
	tests := []struct {
		path string
		want int
	}{
		{"/monitoring/api/queues/stripe/completed_tasks", 200},
		{"/monitoring/api/queues/stripe/completed_tasks?size=100&page=1", 200},
		{"/monitoring/api/queues/stripe/archived_tasks?size=20&page=" + deepest + "", 200},
		{"/monitoring/api/queues/stripe/completed_tasks?size=100000&page=1", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=101", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=0", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=-1", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=all", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=10&size=100000", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?page=0", 400},
		{"/monitoring/api/queues/stripe/completed_tasks?size=100&page=" + strconv.Itoa(execindex.MaxOffset/100+2), 400},
		{"/monitoring/api/queues/stripe/pending_tasks?page=99999999999", 400},
		{"/monitoring/api/queues/stripe/retry_tasks?size=1000000", 400},
		{"/monitoring/api/queues/stripe/scheduled_tasks?size=1000000", 400},
		{"/monitoring/api/queues/stripe/active_tasks?size=1000000", 400},
		{"/monitoring/api/queues/stripe/groups/g/aggregating_tasks?size=1000000", 400},
		{"/monitoring/api/scheduler_entries/e1/enqueue_events?size=1000000", 400},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/monitoring/api/"), func(t *testing.T) {
			for _, u := range [][2]string{{viewerUser, viewerPass}, {opUser, opPass}} {
				rec := b.do(t, req{path: tt.path, user: u[0], pass: u[1]})
				if rec.Code != tt.want {
					t.Errorf("%s: %d, want %d: %.200s", u[0], rec.Code, tt.want, rec.Body.String())
				}
				if tt.want == 400 && !strings.Contains(rec.Body.String(), "message") {
					t.Errorf("%s: a refusal without a message: %s", u[0], rec.Body.String())
				}
			}
		})
	}
}

// TestMonitoringAPIIsThrottled: asynqmon's API is rate-limited per user,
// like the Console's; a viewer past the rate gets 429 with Retry-After,
// the operator does not, and the limit is the same one as the Console's.
func TestMonitoringAPIIsThrottled(t *testing.T) {
	b := setup(t, seeds[:2])
	b.srv.reads = newUserLimits(apiRate, apiBurst)
	now := time.Now()
	b.srv.reads.now = func() time.Time { return now }
	refused := 0
	for range apiBurst + 5 {
		rec := b.do(t, req{path: "/monitoring/api/queues/stripe/completed_tasks?size=100", user: viewerUser, pass: viewerPass})
		if rec.Code == 429 {
			refused++
			if rec.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if refused != 5 {
		t.Errorf("%d of %d asynqmon requests refused, want 5", refused, apiBurst+5)
	}
	for _, path := range []string{"/monitoring/api/queues", "/api/executions"} {
		if rec := b.do(t, req{path: path, user: viewerUser, pass: viewerPass}); rec.Code != 429 {
			t.Errorf("viewer past the rate, GET %s: %d, want 429", path, rec.Code)
		}
	}
	if rec := b.op(t, "GET", "/monitoring/api/queues"); rec.Code != 200 {
		t.Errorf("the operator while the viewer is throttled: %d", rec.Code)
	}
	now = now.Add(time.Second)
	if rec := b.do(t, req{path: "/monitoring/api/queues?" + url.Values{}.Encode(), user: viewerUser, pass: viewerPass}); rec.Code != 200 {
		t.Errorf("viewer a second later: %d", rec.Code)
	}
}
