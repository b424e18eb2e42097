package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRecovery runs the api, the worker and the dashboard binaries with a
// fake Stripe API holding 130 events (two pages), 40 of which were
// delivered: a dry run counts the 90 missing and stores nothing; a run
// stores exactly them, and the worker (which retrieves each event from the
// same fake) handles each once; two more recoveries at once store nothing;
// a late webhook delivery of a recovered event is a duplicate. Viewers and
// cross-site requests cannot start one.
func TestRecovery(t *testing.T) {
	db := redistest.New(t)
	stripe := stripetest.NewAPI(t)
	start := time.Now().Add(-3 * time.Hour)
	var bodies [][]byte
	var ids []string
	for i := range 130 {
		id := fmt.Sprintf("evt_recover_%03d", i)
		ids = append(ids, id)
		bodies = append(bodies, stripetest.Event("invoice.finalized", id, start.Add(time.Duration(i)*time.Second)))
	}
	stripe.Add("", bodies...)
	stripeEnv := map[string]string{"STRIPE_SECRET_KEY": "rk_test_e2e_recovery", "STRIPE_API_BASE": stripe.URL}

	_, apiAddr := startAPI(t, "api", db.URL, nil)
	startWorker(t, "worker", db.URL, stripeEnv)
	dashEnv := map[string]string{
		"REDIS_URL": db.URL, "DASHBOARD_USER": "operator", "DASHBOARD_PASSWORD": "operator-password",
		"DASHBOARD_VIEWER_USER": "viewer", "DASHBOARD_VIEWER_PASSWORD": "viewer-password",
	}
	for k, v := range stripeEnv {
		dashEnv[k] = v
	}
	_, dashAddr := startDashboard(t, dashEnv)
	dash := "http://" + dashAddr

	client := loadClient()
	for _, body := range bodies[:40] {
		if a := send(client, "http://"+apiAddr, body); a.status != 200 || a.message != "Received" {
			t.Fatalf("delivery: %d %q %v", a.status, a.message, a.err)
		}
	}

	post := func(query string) recovery.Record {
		t.Helper()
		status, _, body := dashReq(t, http.MethodPost, dash+"/api/recoveries?"+query, "operator", "operator-password", nil, "")
		if status != http.StatusAccepted {
			t.Fatalf("POST /api/recoveries?%s: %d %s", query, status, body)
		}
		var rec recovery.Record
		if err := json.Unmarshal([]byte(body), &rec); err != nil || rec.ID == "" {
			t.Fatalf("answer %s: %v", body, err)
		}
		return rec
	}
	wait := func(id string) recovery.Record {
		t.Helper()
		var rec recovery.Record
		poll.Until(t, 30*time.Second, "recovery "+id, func() bool {
			status, _, body := dashReq(t, http.MethodGet, dash+"/api/recoveries/"+id, "viewer", "viewer-password", nil, "")
			if status == http.StatusTooManyRequests {
				return false // the dashboard's read limit: poll again
			}
			if err := json.Unmarshal([]byte(body), &rec); err != nil {
				t.Fatalf("GET: %s", body)
			}
			return rec.State != recovery.StateRunning
		})
		if rec.State != recovery.StateDone {
			t.Fatalf("recovery %s: %+v", id, rec)
		}
		return rec
	}

	for _, h := range []struct {
		user, pass string
		header     map[string]string
	}{
		{"viewer", "viewer-password", nil},
		{"operator", "operator-password", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
	} {
		if status, _, body := dashReq(t, http.MethodPost, dash+"/api/recoveries?since=4h", h.user, h.pass, h.header, ""); status != http.StatusForbidden {
			t.Errorf("%s %v: %d %s, want 403", h.user, h.header, status, body)
		}
	}

	dry := wait(post("since=4h&dry_run=true").ID)
	if dry.Listed != 130 || dry.Missing != 90 || dry.Enqueued != 0 {
		t.Fatalf("dry run: listed %d missing %d enqueued %d, want 130 90 0", dry.Listed, dry.Missing, dry.Enqueued)
	}
	run := wait(post("since=4h").ID)
	if run.Listed != 130 || run.Missing != 90 || run.Enqueued != 90 {
		t.Fatalf("run: listed %d missing %d enqueued %d, want 130 90 90", run.Listed, run.Missing, run.Enqueued)
	}
	poll.Until(t, 60*time.Second, "every task to complete", func() bool {
		return countStates(taskStates(t, db.Client, ids))["completed"] == len(ids)
	})

	var wg sync.WaitGroup
	var mu sync.Mutex
	var twice []recovery.Record
	for range 2 {
		wg.Go(func() {
			rec := post("since=4h")
			mu.Lock()
			twice = append(twice, rec)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, r := range twice {
		if got := wait(r.ID); got.Missing != 0 || got.Enqueued != 0 {
			t.Errorf("a later recovery: missing %d enqueued %d, want 0 0", got.Missing, got.Enqueued)
		}
	}
	if a := send(client, "http://"+apiAddr, bodies[100]); a.status != 200 || a.message != "duplicate" {
		t.Errorf("a late delivery of a recovered event: %d %q", a.status, a.message)
	}
	// Every task had completed before the later recoveries, which enqueued
	// nothing, and the late delivery stored no task (it was answered
	// duplicate, after the store's decision): the notifications are final.

	handled := map[string]int{}
	for _, m := range notifications(t, db.Client) {
		handled[fmt.Sprint(m.Values["event_id"])]++
	}
	for _, id := range ids {
		if handled[id] != 1 {
			t.Errorf("%s handled %d times, want once", id, handled[id])
		}
	}
	retrieved := 0
	for _, r := range stripe.Requests() {
		if strings.HasPrefix(r.Path, "/v1/events/") {
			retrieved++
		}
	}
	if retrieved < len(ids) {
		t.Errorf("the worker retrieved %d events from Stripe, want %d", retrieved, len(ids))
	}
	var list string
	underReadLimit(t, func() *http.Response {
		var status int
		status, _, list = dashReq(t, http.MethodGet, dash+"/api/recoveries", "viewer", "viewer-password", nil, "")
		return &http.Response{StatusCode: status}
	})
	if !strings.Contains(list, `"started_by":"operator"`) || strings.Count(list, `"id":"rec_`) != 4 {
		t.Errorf("GET /api/recoveries: %s", list)
	}
}
