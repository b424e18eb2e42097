package console

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRecoveryBoundAPI: POST /api/recoveries?from=rec_… stores the events
// its dry run listed and no other; the JSON record of a dry run lists its
// events, capped with the count kept; a bound run is refused for what is
// not a finished, complete preview.
func TestRecoveryBoundAPI(t *testing.T) {
	b, api := setupRecovery(t, 3)
	dry := b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h&dry_run=true"), http.StatusAccepted).ID)
	if len(dry.Events) != 3 || dry.EventsCapped || dry.Events[0].Type != events.CustomerCreated || dry.Events[0].Created.IsZero() {
		t.Fatalf("dry run's events: %+v (capped %v)", dry.Events, dry.EventsCapped)
	}
	list := decode[struct{ Recoveries []recovery.Record }](t, b.op(t, http.MethodGet, "/api/recoveries"), http.StatusOK)
	if len(list.Recoveries) != 1 || list.Recoveries[0].Events != nil {
		t.Errorf("the list carries the events: %+v", list.Recoveries)
	}

	// Capped: with a limit of 2, the preview keeps 2 of 3 and cannot be stored.
	b.srv.recoveries.rec.PreviewLimit = 2
	capped := b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h&dry_run=true"), http.StatusAccepted).ID)
	b.srv.recoveries.rec.PreviewLimit = 0
	if len(capped.Events) != 2 || !capped.EventsCapped || capped.Missing != 3 {
		t.Fatalf("capped preview: %d events, capped %v, missing %d", len(capped.Events), capped.EventsCapped, capped.Missing)
	}
	run := b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=20m"), http.StatusAccepted).ID) // a run that finds nothing
	opCookie := b.login(t, opUser, opPass)
	for _, tc := range []struct {
		name, path string
		r          *req
		want       int
		says       string
	}{
		{"capped preview", "/api/recoveries?from=" + capped.ID, nil, http.StatusConflict, "lists only the first 2"},
		{"a run", "/api/recoveries?from=" + run.ID, nil, http.StatusConflict, "not a dry run"},
		{"unknown", "/api/recoveries?from=rec_nope", nil, http.StatusNotFound, "no such recovery"},
		{"not an ID", "/api/recoveries?from=rec_x:events", nil, http.StatusNotFound, "no such recovery"},
		{"with a window", "/api/recoveries?from=" + dry.ID + "&since=1h", nil, http.StatusBadRequest, "give no since"},
		{"viewer", "", &req{method: http.MethodPost, path: "/api/recoveries?from=" + dry.ID, user: viewerUser, pass: viewerPass}, http.StatusForbidden, ""},
		{"session without CSRF token", "", &req{method: http.MethodPost, path: "/api/recoveries?from=" + dry.ID, cookie: opCookie, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}}, http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req{method: http.MethodPost, path: tc.path, user: opUser, pass: opPass}
			if tc.r != nil {
				r = *tc.r
			}
			rec := b.do(t, r)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
				t.Errorf("%d %s, want %d saying %q", rec.Code, rec.Body.String(), tc.want, tc.says)
			}
		})
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_dash_0"); err == nil {
		t.Fatal("a refused request stored an event")
	}

	// Stored as previewed: a new event of the window is left alone.
	api.Add("", stripetest.Event(events.CustomerCreated, "evt_after_preview", time.Now().Add(-50*time.Minute)))
	bound := b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?from="+dry.ID), http.StatusAccepted).ID)
	if bound.From != dry.ID || bound.Enqueued != 3 || bound.Progress.NotPreviewed != 1 || bound.Progress.AlreadyStored != 0 || !bound.Since.Equal(dry.Since) || !bound.Until.Equal(dry.Until) {
		t.Errorf("bound run: %+v", bound)
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_after_preview"); err == nil {
		t.Error("the bound run stored an event its preview did not list")
	}
	info, err := b.env.Inspector.GetTaskInfo("stripe", "evt_dash_2")
	if err != nil || info.Headers[stripetask.HeaderRecoveryID] != bound.ID {
		t.Errorf("evt_dash_2: %v; recoveryId %q, want %s", err, info.Headers[stripetask.HeaderRecoveryID], bound.ID)
	}
	// Again: everything is already stored.
	again := b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?from="+dry.ID), http.StatusAccepted).ID)
	if again.Enqueued != 0 || again.Progress.AlreadyStored != 3 {
		t.Errorf("second bound run: %+v", again.Progress)
	}
	view := decode[struct {
		ExecutionsURL string `json:"executions_url"`
	}](t, b.op(t, http.MethodGet, "/api/recoveries/"+bound.ID), http.StatusOK)
	if !strings.HasPrefix(view.ExecutionsURL, "/?") || !strings.Contains(view.ExecutionsURL, "source=recovery") {
		t.Errorf("executions_url %q", view.ExecutionsURL)
	}
	l := decode[listing](t, b.op(t, http.MethodGet, "/api/executions"+strings.TrimPrefix(view.ExecutionsURL, "/")), http.StatusOK)
	var got []string
	for _, e := range l.Executions {
		got = append(got, e.ID)
		if e.Source != stripetask.SourceRecovery || e.RecoveryID != bound.ID {
			t.Errorf("%s: source %q, recovery %q", e.ID, e.Source, e.RecoveryID)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"evt_dash_0", "evt_dash_1", "evt_dash_2"}) {
		t.Errorf("%s lists %v", view.ExecutionsURL, got)
	}
}

// TestSourceFilterAPI: GET /api/executions?source=recovery lists only
// what recoveries stored; any other source is refused.
func TestSourceFilterAPI(t *testing.T) {
	api := stripetest.NewAPI(t)
	api.Add("", stripetest.Event(events.CustomerCreated, "evt_src_rec", time.Now().Add(-time.Hour)))
	b := setupEnv(t, []execindextest.Exec{{ID: "evt_src_hook", Type: events.InvoicePaid}},
		map[string]string{"STRIPE_SECRET_KEY": "rk_test_dashboard", "STRIPE_API_BASE": api.URL})
	b.waitRecovery(t, decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h"), http.StatusAccepted).ID)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"source=recovery", []string{"evt_src_rec"}},
		{"source=recovery&type=invoice.paid", nil},
		{"", []string{"evt_src_hook", "evt_src_rec"}},
	} {
		l := decode[listing](t, b.op(t, http.MethodGet, "/api/executions?"+tc.query), http.StatusOK)
		var got []string
		for _, e := range l.Executions {
			got = append(got, e.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.query, got, tc.want)
		}
	}
	if rec := b.op(t, http.MethodGet, "/api/executions?source=webhook"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "source must be") {
		t.Errorf("source=webhook: %d %s", rec.Code, rec.Body.String())
	}
}
