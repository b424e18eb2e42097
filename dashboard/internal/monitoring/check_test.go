package monitoring

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// TestCheckPage: sizes of 1 to MaxPageSize, each parameter once, and no
// page past the first execindex.MaxOffset tasks.
func TestCheckPage(t *testing.T) {
	deepest := execindex.MaxOffset/MaxPageSize + 1
	for _, tt := range []struct {
		query string
		ok    bool
	}{
		{"", true},
		{"size=100&page=1", true},
		{"size=100&page=" + strconv.Itoa(deepest), true},
		{"size=100&page=" + strconv.Itoa(deepest+1), false},
		{"page=" + strconv.Itoa(execindex.MaxOffset/defaultPageSize+2), false},
		{"size=101", false},
		{"size=0", false},
		{"size=all", false},
		{"size=10&size=100000", false},
		{"page=0", false},
	} {
		v, _ := url.ParseQuery(tt.query)
		err := checkPage(v)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, errPage)) {
			t.Errorf("checkPage(%q) = %v, want ok %v", tt.query, err, tt.ok)
		}
	}
}

// TestAsynqmonChange: what a change acted on, from asynqmon's answer (a
// count, or the IDs of a batch) or else from its path (one task).
func TestAsynqmonChange(t *testing.T) {
	for _, tt := range []struct {
		method, path, answer string
		count                int
		ids                  []string
	}{
		{http.MethodDelete, "queues/stripe/completed_tasks:delete_all", `{"deleted": 2}`, 2, nil},
		{http.MethodPost, "queues/stripe/archived_tasks:run_all", `{"scheduled": 3}`, 3, nil},
		{http.MethodPost, "queues/stripe/retry_tasks:batch_archive", `{"archived_ids": ["evt_2"], "error_ids": []}`, 1, []string{"evt_2"}},
		{http.MethodDelete, "queues/stripe/scheduled_tasks/evt_6", ``, 1, []string{"evt_6"}},
		{http.MethodPost, "queues/stripe/archived_tasks/evt_1:run", ``, 1, []string{"evt_1"}},
		{http.MethodPost, "queues/stripe/archived_tasks/evt_1", ``, 0, nil},
		{http.MethodPost, "queues/stripe:pause", ``, 0, nil},
	} {
		count, ids := asynqmonChange(tt.method, tt.path, []byte(tt.answer))
		if count != tt.count || !slices.Equal(ids, tt.ids) {
			t.Errorf("%s %s: %d %v, want %d %v", tt.method, tt.path, count, ids, tt.count, tt.ids)
		}
	}
}

// TestCancelAllQueue: only POST queues/<queue>/active_tasks:cancel_all
// names a queue.
func TestCancelAllQueue(t *testing.T) {
	for _, tt := range []struct {
		method, path, queue string
		ok                  bool
	}{
		{http.MethodPost, Path + "/api/queues/stripe/active_tasks:cancel_all", "stripe", true},
		{http.MethodGet, Path + "/api/queues/stripe/active_tasks:cancel_all", "", false},
		{http.MethodPost, Path + "/api/queues/a/b/active_tasks:cancel_all", "", false},
		{http.MethodPost, Path + "/api/queues//active_tasks:cancel_all", "", false},
	} {
		q, ok := cancelAllQueue(tt.method, tt.path)
		if ok != tt.ok || (ok && q != tt.queue) {
			t.Errorf("%s %s: %q %v", tt.method, tt.path, q, ok)
		}
	}
}
