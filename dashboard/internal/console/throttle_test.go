package console

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// TestReadsAreThrottled: each user's reads are rate-limited on their
// own, the Console's and asynqmon's API under one limit: a viewer looping
// on either gets 429 with Retry-After on both, the operator does not.
func TestReadsAreThrottled(t *testing.T) {
	for _, loop := range []string{"/api/executions?since=7d&page=2", "/monitoring/api/queues/stripe/completed_tasks?size=100"} {
		t.Run(loop, func(t *testing.T) {
			b := setup(t, seeds[:2])
			b.srv.reads = auth.NewUserLimits(apiRate, apiBurst)
			now := time.Now()
			b.srv.reads.SetClock(func() time.Time { return now })
			refused := 0
			for range apiBurst + 5 {
				rec := b.do(t, req{path: loop, user: viewerUser, pass: viewerPass})
				if rec.Code == 429 {
					refused++
					if rec.Header().Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				}
			}
			if refused != 5 {
				t.Errorf("%d of %d requests refused, want 5", refused, apiBurst+5)
			}
			for _, path := range []string{"/api/executions", "/", "/executions/evt_01", "/api/facets", "/monitoring/api/queues"} {
				if rec := b.do(t, req{path: path, user: viewerUser, pass: viewerPass}); rec.Code != 429 {
					t.Errorf("viewer past the rate, GET %s: %d, want 429", path, rec.Code)
				}
			}
			for _, path := range []string{"/api/executions", "/monitoring/api/queues"} {
				if rec := b.op(t, "GET", path); rec.Code != 200 {
					t.Errorf("the operator while the viewer is throttled, GET %s: %d", path, rec.Code)
				}
			}
			now = now.Add(time.Second)
			if rec := b.do(t, req{path: loop, user: viewerUser, pass: viewerPass}); rec.Code != 200 {
				t.Errorf("viewer a second later: %d", rec.Code)
			}
		})
	}
}

// TestDeepPagesAreRefused: the list takes no page past the first
// execindex.MaxOffset executions; a filter that selects more than one
// query examines says so and offers no bulk re-run.
func TestDeepPagesAreRefused(t *testing.T) {
	b := setup(t, seeds)
	deep := execindex.MaxOffset/50 + 2
	for _, q := range []string{"page=" + strconv.Itoa(deep), "since=7d&page=" + strconv.Itoa(deep), "page=999999999999"} {
		if rec := b.op(t, "GET", "/api/executions?"+q); rec.Code != 400 {
			t.Errorf("%s: %d, want 400", q, rec.Code)
		}
	}
	if rec := b.op(t, "GET", "/api/executions?page="+strconv.Itoa(deep-1)); rec.Code != 200 {
		t.Errorf("the deepest page: %d, want 200", rec.Code)
	}
	b.srv.index.SetMaxExamined(3)
	l := decode[listing](t, b.op(t, "GET", "/api/executions?since=7d"), 200)
	if !l.Capped || len(l.Executions) != 3 {
		t.Errorf("capped %v, %d rows; want capped with the 3 newest", l.Capped, len(l.Executions))
	}
	page := b.op(t, "GET", "/?since=7d").Body.String()
	if !strings.Contains(page, `id="capped"`) || strings.Contains(page, `id="bulk-rerun"`) {
		t.Errorf("capped list page: notice %v, bulk button %v", strings.Contains(page, `id="capped"`), strings.Contains(page, `id="bulk-rerun"`))
	}
	rec := b.do(t, req{method: "POST", path: "/api/executions/rerun?" + url.Values{"since": {"7d"}, "expect": {"8"}}.Encode(), user: opUser, pass: opPass})
	if rec.Code != 400 {
		t.Errorf("bulk re-run of a capped filter: %d, want 400: %s", rec.Code, rec.Body.String())
	}
}

// TestTooManyGivesBrowsersAPage: a 429 to a browser asking for a page
// (the read limit, or Basic sign-in refused) is an HTML page with
// Retry-After; the APIs answer JSON.
func TestTooManyGivesBrowsersAPage(t *testing.T) {
	b := setup(t, seeds[:2])
	b.srv.reads = auth.NewUserLimits(apiRate, apiBurst)
	now := time.Now()
	b.srv.reads.SetClock(func() time.Time { return now })
	fakeTime(b.srv.auth)
	html := map[string]string{"Accept": "text/html,application/xhtml+xml"}
	for range apiBurst {
		b.do(t, req{path: "/api/facets", user: viewerUser, pass: viewerPass})
	}
	exhaust(t, b, req{path: "/", user: opUser, pass: "wrong", headers: html, remote: "198.51.100.7:4000"})
	tests := []struct {
		name string
		r    req
		page bool
	}{
		{"a page past the read limit", req{path: "/?state=failed", user: viewerUser, pass: viewerPass, headers: html}, true},
		{"asynqmon's page past the read limit", req{path: "/monitoring/api/queues", user: viewerUser, pass: viewerPass, headers: html}, false},
		{"the API past the read limit", req{path: "/api/executions", user: viewerUser, pass: viewerPass, headers: html}, false},
		{"a page, Basic sign-in refused", req{path: "/", user: opUser, pass: opPass, headers: html, remote: "198.51.100.7:4000"}, true},
		{"the API, Basic sign-in refused", req{path: "/api/executions", user: opUser, pass: opPass, headers: html, remote: "198.51.100.7:4000"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := b.do(t, tt.r)
			if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("%d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
			}
			ct := rec.Header().Get("Content-Type")
			if tt.page && (!strings.HasPrefix(ct, "text/html") || !strings.Contains(rec.Body.String(), "<h1>Too many requests</h1>")) {
				t.Errorf("%s: %.300s; want an HTML page", ct, rec.Body.String())
			}
			if !tt.page && (!strings.HasPrefix(ct, "application/json") || !strings.Contains(rec.Body.String(), `"message"`)) {
				t.Errorf("%s: %.300s; want JSON", ct, rec.Body.String())
			}
		})
	}
}
