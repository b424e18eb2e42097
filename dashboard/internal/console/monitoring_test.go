package console

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/dashboard/internal/monitoring"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// TestMonitoringListsAreBounded: every list of asynqmon's API takes at
// most monitoring.MaxPageSize tasks a page and no page past the first
// execindex.MaxOffset tasks, as the Console's list, for viewers and
// operators alike; what is refused never reaches asynqmon.
func TestMonitoringListsAreBounded(t *testing.T) {
	b := setup(t, seeds)
	deepest := strconv.Itoa(execindex.MaxOffset/monitoring.MaxPageSize + 1)
	tests := []struct {
		path string
		want int
	}{
		{"/monitoring/api/queues/stripe/completed_tasks", 200},
		{"/monitoring/api/queues/stripe/completed_tasks?size=100&page=1", 200},
		{"/monitoring/api/queues/stripe/archived_tasks?size=100&page=" + deepest, 200},
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
