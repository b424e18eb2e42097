package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// setupRecovery returns a dashboard whose recoveries list from a fake
// Stripe holding n missing events created in the last hour.
func setupRecovery(t *testing.T, n int) (*bundle, *stripetest.API) {
	t.Helper()
	api := stripetest.NewAPI(t)
	start := time.Now().Add(-time.Hour)
	for i := range n {
		api.Add("", stripetest.Event(events.CustomerCreated, fmt.Sprintf("evt_dash_%d", i), start.Add(time.Duration(i)*time.Second)))
	}
	b := setupEnv(t, nil, map[string]string{"STRIPE_SECRET_KEY": "rk_test_dashboard", "STRIPE_API_BASE": api.URL})
	return b, api
}

// wait polls GET /api/recoveries/{id} until the recovery ends.
func (b *bundle) waitRecovery(t *testing.T, id string) recovery.Record {
	t.Helper()
	return poll.Value(t, 10*time.Second, "recovery "+id+" to end", func() (recovery.Record, error) {
		rec := decode[recovery.Record](t, b.op(t, http.MethodGet, "/api/recoveries/"+id), http.StatusOK)
		if rec.State == recovery.StateRunning {
			return rec, errors.New("still running")
		}
		return rec, nil
	})
}

func TestRecoveryAPI(t *testing.T) {
	b, _ := setupRecovery(t, 5)
	start := decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h&dry_run=true"), http.StatusAccepted)
	if start.ID == "" || start.StartedBy != opUser || !start.DryRun {
		t.Fatalf("start: %+v", start)
	}
	dry := b.waitRecovery(t, start.ID)
	if dry.State != recovery.StateDone || dry.Listed != 5 || dry.Missing != 5 || dry.Enqueued != 0 || dry.Error != "" {
		t.Fatalf("dry run: %+v", dry)
	}
	if dry.Progress.MissingByType[events.CustomerCreated] != 5 {
		t.Errorf("dry run by type: %v", dry.Progress.MissingByType)
	}
	run := decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h&until=1m"), http.StatusAccepted)
	if got := b.waitRecovery(t, run.ID); got.State != recovery.StateDone || got.Missing != 5 || got.Enqueued != 5 {
		t.Fatalf("run: %+v", got)
	}
	again := decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h"), http.StatusAccepted)
	if got := b.waitRecovery(t, again.ID); got.Listed != 5 || got.Missing != 0 || got.Enqueued != 0 {
		t.Fatalf("second run: %+v", got)
	}
	list := decode[struct{ Recoveries []recovery.Record }](t, b.do(t, req{path: "/api/recoveries", user: viewerUser, pass: viewerPass}), http.StatusOK)
	if len(list.Recoveries) != 3 || list.Recoveries[0].ID != again.ID || list.Recoveries[2].StartedBy != opUser || list.Recoveries[2].Since.IsZero() {
		t.Errorf("list: %+v", list.Recoveries)
	}
	if rec := b.op(t, http.MethodGet, "/api/recoveries/rec_nope"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown id: %d", rec.Code)
	}
}

func TestRecoveryRefused(t *testing.T) {
	b, api := setupRecovery(t, 1)
	viewerCookie := b.login(t, viewerUser, viewerPass)
	opCookie := b.login(t, opUser, opPass)
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"viewer", req{method: http.MethodPost, path: "/api/recoveries?since=2h", user: viewerUser, pass: viewerPass}, http.StatusForbidden},
		{"viewer session", req{method: http.MethodPost, path: "/api/recoveries?since=2h", cookie: viewerCookie, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}}, http.StatusForbidden},
		{"cross-site", req{method: http.MethodPost, path: "/api/recoveries?since=2h", user: opUser, pass: opPass, headers: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{"session without CSRF token", req{method: http.MethodPost, path: "/api/recoveries?since=2h", cookie: opCookie, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}}, http.StatusForbidden},
		{"anonymous", req{method: http.MethodPost, path: "/api/recoveries?since=2h"}, http.StatusUnauthorized},
		{"past DEDUPE_WINDOW", req{method: http.MethodPost, path: "/api/recoveries?since=8d", user: opUser, pass: opPass}, http.StatusBadRequest},
		{"no since", req{method: http.MethodPost, path: "/api/recoveries", user: opUser, pass: opPass}, http.StatusBadRequest},
		{"bad since", req{method: http.MethodPost, path: "/api/recoveries?since=yesterday", user: opUser, pass: opPass}, http.StatusBadRequest},
		{"bad dry_run", req{method: http.MethodPost, path: "/api/recoveries?since=2h&dry_run=maybe", user: opUser, pass: opPass}, http.StatusBadRequest},
		{"bad account", req{method: http.MethodPost, path: "/api/recoveries?since=2h&account=../x", user: opUser, pass: opPass}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := b.do(t, tc.r); rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body.String())
			}
		})
	}
	if n := len(api.Requests()); n != 0 {
		t.Errorf("refused requests reached Stripe %d times", n)
	}
}

func TestRecoveryNeedsKey(t *testing.T) {
	b := setup(t, nil)
	if rec := b.op(t, http.MethodPost, "/api/recoveries?since=2h"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("without STRIPE_SECRET_KEY: %d, want 503", rec.Code)
	}
}

func TestRecoveryConfigFailsClosed(t *testing.T) {
	base := map[string]string{"DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass}
	for _, tc := range []struct{ name, key, value string }{
		{"http to a network host", "STRIPE_API_BASE", "http://stripe.internal:12111"},
		{"not a URL", "STRIPE_API_BASE", "stripe.internal"},
		{"publishable key", "STRIPE_SECRET_KEY", "pk_test_123"},
		{"webhook secret", "STRIPE_SECRET_KEY", "whsec_123"},
		{"mixed events", "STRIPE_EVENTS", "*,customer.created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{tc.key: tc.value}
			for k, v := range base {
				vars[k] = v
			}
			_, err := LoadConfig(func(k string) string { return vars[k] })
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("LoadConfig: %v, want an error naming %s", err, tc.key)
			}
		})
	}
}
