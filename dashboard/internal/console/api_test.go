package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/stripeq/stripeq/dashboard/internal/monitoring"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

func rowIDs(l listing) []string {
	var out []string
	for _, e := range l.Executions {
		out = append(out, e.ID)
	}
	return out
}

func TestAPIList(t *testing.T) {
	b := setup(t, seeds)
	from := strconv.FormatInt(t0.Add(52*time.Minute).Unix(), 10)
	to := t0.Add(54 * time.Minute).UTC().Format(time.RFC3339)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"evt_08", "evt_07", "evt_06", "evt_05", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"type=invoice.payment_failed", []string{"evt_08", "evt_03", "evt_02", "evt_01"}},
		{"type=invoice.*", []string{"evt_08", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"type=customer.subscription.*", []string{"evt_06"}},
		{"livemode=false", []string{"evt_07", "evt_03"}},
		{"livemode=true&type=invoice.*", []string{"evt_08", "evt_04", "evt_02", "evt_01"}},
		{"api_version=2023-10-16&customer=cus_Y", []string{"evt_07", "evt_04"}},
		{"api_version=2020-08-27", nil},
		{"customer=cus_Z", []string{"evt_05"}},
		{"account=acct_1", []string{"evt_07", "evt_05"}},
		{"state=archived", []string{"evt_08", "evt_01"}},
		{"state=failed", []string{"evt_08", "evt_02", "evt_01"}},
		{"state=pending", []string{"evt_05"}},
		{"state=active", []string{"evt_07"}},
		{"state=scheduled", []string{"evt_06"}},
		{"state=retry", []string{"evt_02"}},
		{"state=completed,pending", []string{"evt_05", "evt_04", "evt_03"}},
		{"since=30m", []string{"evt_08", "evt_07", "evt_06", "evt_05", "evt_04", "evt_03", "evt_02"}},
		{"from=" + from + "&to=" + to, []string{"evt_06", "evt_05", "evt_04"}},
		{"id=evt_04", []string{"evt_04"}},
		{"id=evt_nope", nil},
		// The query: every live-mode invoice.payment_failed for
		// customer X that failed in the last hour.
		{"type=invoice.payment_failed&livemode=true&customer=cus_X&state=failed&since=1h", []string{"evt_08", "evt_02"}},
		{"limit=3", []string{"evt_08", "evt_07", "evt_06"}},
		{"limit=3&page=3", []string{"evt_02", "evt_01"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			l := decode[listing](t, b.op(t, "GET", "/api/executions?"+tt.query), 200)
			if got := rowIDs(l); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !strings.Contains(tt.query, "limit") && l.Total != len(tt.want) {
				t.Errorf("total = %d, want %d", l.Total, len(tt.want))
			}
		})
	}

	t.Run("counts per state", func(t *testing.T) {
		l := decode[listing](t, b.op(t, "GET", "/api/executions?type=invoice.payment_failed&state=archived"), 200)
		want := map[string]int{"pending": 0, "active": 0, "scheduled": 0, "retry": 1, "archived": 2, "completed": 1}
		for k, v := range want {
			if l.Counts[k] != v {
				t.Errorf("counts = %v, want %v", l.Counts, want)
				break
			}
		}
	})
	t.Run("row fields", func(t *testing.T) {
		l := decode[listing](t, b.op(t, "GET", "/api/executions?id=evt_02"), 200)
		e := l.Executions[0]
		if e.Type != "invoice.payment_failed" || e.State != "retry" || e.Customer != "cus_X" || !e.Livemode || e.APIVersion != "2023-10-16" ||
			e.Retried != 1 || e.MaxRetry != 7 || e.LastError != execindextest.ErrFailed.Error() || e.LastFailedAt == nil ||
			e.NextProcessAt == nil || !e.ReceivedAt.Equal(t0.Add(50*time.Minute)) ||
			e.URL != "/executions/evt_02" || e.MonitoringURL != "/monitoring/queues/stripe/tasks/evt_02" {
			t.Errorf("row = %+v", e)
		}
	})
	for _, bad := range []string{"state=done", "livemode=yes", "since=soon", "from=yesterday", "limit=0", "page=0"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			if rec := b.op(t, "GET", "/api/executions?"+bad); rec.Code != 400 {
				t.Errorf("status %d, want 400: %s", rec.Code, rec.Body.String())
			}
		})
	}
	t.Run("facets", func(t *testing.T) {
		f := decode[map[string][]struct {
			Value string
			Count int
		}](t, b.op(t, "GET", "/api/facets"), 200)
		if len(f["type"]) != 5 || f["apiVersion"][0].Value != "2023-10-16" || f["account"][0].Count != 2 {
			t.Errorf("facets = %v", f)
		}
	})
}

func TestAPIDetail(t *testing.T) {
	b := setup(t, seeds[:2])
	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_02"), 200)
	if d.Headers["type"] != "invoice.payment_failed" || d.Headers["customer"] != "cus_X" || d.Queue != "stripe" ||
		!strings.Contains(string(d.Payload), `"id":"evt_02"`) || d.LastError == "" || len(d.Reruns) != 0 {
		t.Errorf("detail = %+v", d)
	}
	if rec := b.op(t, "GET", "/api/executions/evt_nope"); rec.Code != 404 {
		t.Errorf("unknown ID: status %d", rec.Code)
	}
}

func TestAPIRerun(t *testing.T) {
	b := setup(t, seeds)
	tests := []struct {
		id         string
		wantStatus int
		wantAction string
	}{
		{"evt_01", 200, "run"}, // archived
		{"evt_02", 200, "run"}, // retry
		{"evt_06", 200, "run"}, // scheduled
		{"evt_03", 200, "copy"},
		{"evt_05", 409, ""}, // pending
		{"evt_07", 409, ""}, // active
		{"evt_nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rec := b.op(t, "POST", "/api/executions/"+tt.id+"/rerun")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantStatus != 200 {
				return
			}
			r := decode[rerunResult](t, rec, 200)
			if r.Action != tt.wantAction {
				t.Errorf("action = %q, want %q", r.Action, tt.wantAction)
			}
			if r.Action == "run" {
				info, _ := b.env.Inspector.GetTaskInfo("stripe", tt.id)
				if info.State != asynq.TaskStatePending {
					t.Errorf("after run: %s", info.State)
				}
			}
		})
	}

	t.Run("completed copy", func(t *testing.T) {
		orig, _ := b.env.Inspector.GetTaskInfo("stripe", "evt_03")
		cp, err := b.env.Inspector.GetTaskInfo("stripe", "evt_03:rerun:1")
		if err != nil {
			t.Fatal(err)
		}
		if cp.Type != orig.Type || string(cp.Payload) != string(orig.Payload) || cp.MaxRetry != orig.MaxRetry ||
			cp.Retention != orig.Retention || cp.Queue != "stripe" || cp.State != asynq.TaskStatePending {
			t.Errorf("copy %+v\ndiffers from original %+v", cp, orig)
		}
		for k, v := range orig.Headers {
			if cp.Headers[k] != v {
				t.Errorf("header %s = %q, want %q", k, cp.Headers[k], v)
			}
		}
		if cp.Headers["rerunOf"] != "evt_03" {
			t.Errorf("rerunOf = %q", cp.Headers["rerunOf"])
		}
		// Linked both ways, and listed under the event ID and its filters.
		d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200)
		if len(d.Reruns) != 1 || d.Reruns[0].ID != "evt_03:rerun:1" || d.Reruns[0].State != "pending" {
			t.Errorf("original's history = %+v", d.Reruns)
		}
		d = decode[detail](t, b.op(t, "GET", "/api/executions/evt_03:rerun:1"), 200)
		if d.RerunOf != "evt_03" || d.EventID != "evt_03" || len(d.Reruns) != 1 {
			t.Errorf("copy: rerun_of %q, event %q, history %+v", d.RerunOf, d.EventID, d.Reruns)
		}
		l := decode[listing](t, b.op(t, "GET", "/api/executions?id=evt_03"), 200)
		if got := rowIDs(l); !slices.Equal(got, []string{"evt_03:rerun:1", "evt_03"}) {
			t.Errorf("search by event ID = %v", got)
		}
		l = decode[listing](t, b.op(t, "GET", "/api/executions?livemode=false&type=invoice.payment_failed&state=pending"), 200)
		if got := rowIDs(l); !slices.Equal(got, []string{"evt_03:rerun:1"}) {
			t.Errorf("copy by filter = %v", got)
		}
		// A re-run of the copy is another copy of the original.
		r := decode[rerunResult](t, b.op(t, "POST", "/api/executions/evt_03/rerun"), 200)
		if r.NewID != "evt_03:rerun:2" {
			t.Errorf("second copy = %q", r.NewID)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		if rec := b.op(t, "POST", "/api/executions/evt_04/cancel"); rec.Code != 409 {
			t.Errorf("cancel completed: %d", rec.Code)
		}
		if rec := b.op(t, "POST", "/api/executions/evt_07/cancel"); rec.Code != 200 {
			t.Fatalf("cancel active: %d %s", rec.Code, rec.Body.String())
		}
		poll.Until(t, 5*time.Second, "the cancelled task in retry", func() bool {
			info, err := b.env.Inspector.GetTaskInfo("stripe", "evt_07")
			return err == nil && info.State == asynq.TaskStateRetry
		})
	})

	t.Run("delete", func(t *testing.T) {
		if rec := b.op(t, "DELETE", "/api/executions/evt_04"); rec.Code != 200 {
			t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
		}
		l := decode[listing](t, b.op(t, "GET", "/api/executions?customer=cus_Y"), 200)
		if got := rowIDs(l); !slices.Equal(got, []string{"evt_07"}) {
			t.Errorf("after delete: %v", got)
		}
	})
}

func TestAPIBulkRerun(t *testing.T) {
	b := setup(t, seeds)
	q := "type=invoice.payment_failed&livemode=true&customer=cus_X&state=failed"
	l := decode[listing](t, b.op(t, "GET", "/api/executions?"+q), 200)
	if l.Total != 3 {
		t.Fatalf("total = %d", l.Total)
	}
	rec := b.op(t, "POST", "/api/executions/rerun?"+q+"&expect=2")
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), `"matched":3`) {
		t.Errorf("wrong expect: %d %s", rec.Code, rec.Body.String())
	}
	if rec := b.op(t, "POST", "/api/executions/rerun?"+q); rec.Code != 400 {
		t.Errorf("no expect: %d", rec.Code)
	}
	res := decode[bulkResult](t, b.op(t, "POST", "/api/executions/rerun?"+q+"&expect=3"), 200)
	if res.Matched != 3 || res.Run != 3 || res.Copied != 0 || res.Failed != 0 {
		t.Errorf("bulk = %+v", res)
	}
	for _, id := range []string{"evt_01", "evt_02", "evt_08"} {
		if info, _ := b.env.Inspector.GetTaskInfo("stripe", id); info.State != asynq.TaskStatePending {
			t.Errorf("%s is %s", id, info.State)
		}
	}
	// Completed ones are copied; a JSON body works as well.
	rec = b.do(t, req{method: "POST", path: "/api/executions/rerun", user: opUser, pass: opPass,
		body: `{"query":"state=completed","expect":2}`, headers: map[string]string{"Content-Type": "application/json"}})
	res = decode[bulkResult](t, rec, 200)
	if res.Copied != 2 {
		t.Errorf("bulk of completed = %+v", res)
	}
}

func TestViewerIsReadOnly(t *testing.T) {
	b := setup(t, seeds[:1])
	as := func(method, path string) int {
		return b.do(t, req{method: method, path: path, user: viewerUser, pass: viewerPass}).Code
	}
	for _, path := range []string{"/", "/executions/evt_01", "/api/executions", "/api/executions/evt_01", "/api/facets", "/monitoring/", "/monitoring/api/queues"} {
		if code := as("GET", path); code != 200 {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
	for _, r := range [][2]string{
		{"POST", "/api/executions/evt_01/rerun"},
		{"POST", "/api/executions/evt_01/cancel"},
		{"DELETE", "/api/executions/evt_01"},
		{"POST", "/api/executions/rerun?expect=1"},
		{"POST", "/monitoring/api/queues/stripe/archived_tasks/evt_01:run"},
		{"DELETE", "/monitoring/api/queues/stripe/archived_tasks/evt_01"},
		{"POST", "/monitoring/api/queues/stripe:pause"},
		{"DELETE", "/monitoring/api/queues/stripe"},
	} {
		if code := as(r[0], r[1]); code != 403 {
			t.Errorf("%s %s = %d, want 403", r[0], r[1], code)
		}
	}
	if info, _ := b.env.Inspector.GetTaskInfo("stripe", "evt_01"); info.State != asynq.TaskStateArchived {
		t.Errorf("a viewer changed evt_01: %s", info.State)
	}
	// The operator's asynqmon may change things.
	if rec := b.op(t, "POST", "/monitoring/api/queues/stripe/archived_tasks/evt_01:run"); rec.Code/100 != 2 {
		t.Errorf("operator run in asynqmon: %d %s", rec.Code, rec.Body.String())
	}
}

func TestUnauthenticated(t *testing.T) {
	b := setup(t, seeds[:1])
	routes := [][2]string{
		{"GET", "/"}, {"GET", "/executions/evt_01"}, {"POST", "/logout"},
		{"GET", "/api/executions"}, {"GET", "/api/executions/evt_01"}, {"GET", "/api/facets"},
		{"POST", "/api/executions/evt_01/rerun"}, {"POST", "/api/executions/evt_01/cancel"},
		{"DELETE", "/api/executions/evt_01"}, {"POST", "/api/executions/rerun?expect=1"},
		{"GET", "/monitoring"}, {"GET", "/monitoring/"}, {"GET", "/monitoring/queues/stripe/tasks/evt_01"},
		{"GET", "/monitoring/static/js/main.5adda2da.chunk.js"}, {"GET", "/monitoring/asset-manifest.json"},
		{"GET", "/monitoring/api/queues"}, {"POST", "/monitoring/api/queues/stripe/archived_tasks/evt_01:run"},
		{"DELETE", "/monitoring/api/queues/stripe"}, {"GET", "/nowhere"},
	}
	for _, r := range routes {
		t.Run(r[0]+" "+r[1], func(t *testing.T) {
			b.srv.auth.ResetLimits() // each route starts with a fresh allowance
			// A script gets 401 and a Basic challenge.
			rec := b.do(t, req{method: r[0], path: r[1]})
			if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("no credentials: %d", rec.Code)
			}
			if rec := b.do(t, req{method: r[0], path: r[1], user: opUser, pass: "wrong"}); rec.Code != 401 {
				t.Errorf("wrong password: %d", rec.Code)
			}
			if rec := b.do(t, req{method: r[0], path: r[1], cookie: &http.Cookie{Name: auth.SessionCookie, Value: strings.Repeat("A", 52)}}); rec.Code != 401 {
				t.Errorf("made-up session: %d", rec.Code)
			}
			// A browser asking for a page goes to the login form.
			rec = b.do(t, req{method: r[0], path: r[1], headers: map[string]string{"Accept": "text/html,*/*"}})
			isPage := r[0] == "GET" && !strings.Contains(r[1], "/api/") && !strings.Contains(r[1], "/static/")
			if isPage {
				if rec.Code != 303 || !strings.HasPrefix(rec.Header().Get("Location"), "/login?next=") {
					t.Errorf("browser: %d to %q, want 303 to the login page", rec.Code, rec.Header().Get("Location"))
				}
			} else if rec.Code != 401 {
				t.Errorf("browser: %d, want 401", rec.Code)
			}
		})
	}
	// Open routes.
	for _, path := range []string{"/healthz", "/login", "/static/app.css", "/static/app.js"} {
		if rec := b.do(t, req{path: path}); rec.Code != 200 {
			t.Errorf("GET %s = %d", path, rec.Code)
		}
	}
}

func TestSessionAndCSRF(t *testing.T) {
	b := setup(t, seeds)
	cookie := b.login(t, opUser, opPass)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure || cookie.MaxAge != int((12*time.Hour).Seconds()) {
		t.Errorf("cookie = %+v", cookie)
	}
	page := b.do(t, req{path: "/", cookie: cookie})
	if page.Code != 200 || !strings.Contains(page.Body.String(), "evt_08") {
		t.Fatalf("list page with the session: %d", page.Code)
	}
	_, rest, _ := strings.Cut(page.Body.String(), `<meta name="csrf-token" content="`)
	token, _, _ := strings.Cut(rest, `"`)
	if len(token) < 20 {
		t.Fatalf("no CSRF token in the page")
	}
	sameOrigin := map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}
	crossSite := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name    string
		r       req
		want    int
		changes bool
	}{
		{"cross-site form POST with the cookie", req{method: "POST", path: "/api/executions/evt_01/rerun", cookie: cookie, headers: crossSite,
			body: url.Values{"csrf_token": {token}}.Encode()}, 403, false},
		{"cross-site form POST to asynqmon", req{method: "POST", path: "/monitoring/api/queues/stripe/archived_tasks/evt_01:run", cookie: cookie, headers: crossSite}, 403, false},
		{"cross-site POST with Origin only", req{method: "POST", path: "/api/executions/evt_01/rerun", cookie: cookie, headers: map[string]string{"Origin": "https://evil.example"}}, 403, false},
		{"same-origin POST without the token", req{method: "POST", path: "/api/executions/evt_01/rerun", cookie: cookie, headers: sameOrigin}, 403, false},
		{"same-origin POST with a wrong token", req{method: "POST", path: "/api/executions/evt_01/rerun", cookie: cookie, headers: with(sameOrigin, "X-CSRF-Token", "nope")}, 403, false},
		{"cookie POST with no origin at all", req{method: "POST", path: "/monitoring/api/queues/stripe/archived_tasks/evt_01:run", cookie: cookie}, 403, false},
		{"Basic credentials cross-site", req{method: "POST", path: "/api/executions/evt_01/rerun", user: opUser, pass: opPass, headers: crossSite}, 403, false},
		{"same-origin POST with the token", req{method: "POST", path: "/api/executions/evt_01/rerun", cookie: cookie, headers: with(sameOrigin, "X-CSRF-Token", token)}, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := b.env.Inspector.GetTaskInfo("stripe", "evt_01")
			rec := b.do(t, tt.r)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			after, _ := b.env.Inspector.GetTaskInfo("stripe", "evt_01")
			if changed := before.State != after.State; changed != tt.changes {
				t.Errorf("state %s → %s", before.State, after.State)
			}
		})
	}
	t.Run("asynqmon from its own page", func(t *testing.T) {
		rec := b.do(t, req{method: "POST", path: "/monitoring/api/queues/stripe/archived_tasks/evt_08:run", cookie: cookie, headers: sameOrigin})
		if rec.Code/100 != 2 {
			t.Errorf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		rec := b.do(t, req{method: "POST", path: "/logout", cookie: cookie, headers: sameOrigin,
			body: url.Values{"csrf_token": {token}}.Encode()})
		rec2 := b.do(t, req{method: "POST", path: "/logout", cookie: cookie, headers: with(sameOrigin, "Content-Type", "application/x-www-form-urlencoded"),
			body: url.Values{"csrf_token": {token}}.Encode()})
		_ = rec
		if rec2.Code != 303 && rec2.Code != 401 {
			t.Errorf("logout: %d", rec2.Code)
		}
		if rec := b.do(t, req{path: "/api/executions", cookie: cookie}); rec.Code != 401 {
			t.Errorf("after logout: %d", rec.Code)
		}
	})
	t.Run("viewer session", func(t *testing.T) {
		c := b.login(t, viewerUser, viewerPass)
		page := b.do(t, req{path: "/executions/evt_03", cookie: c})
		if page.Code != 200 || strings.Contains(page.Body.String(), `id="rerun"`) {
			t.Errorf("viewer's detail page: %d, offers re-run: %v", page.Code, strings.Contains(page.Body.String(), `id="rerun"`))
		}
	})
	t.Run("changing the password ends sessions", func(t *testing.T) {
		c := b.login(t, opUser, opPass)
		b.srv.auth.SetPassword(opUser, "new-password")
		defer b.srv.auth.SetPassword(opUser, opPass)
		if rec := b.do(t, req{path: "/api/executions", cookie: c}); rec.Code != 401 {
			t.Errorf("old session after a password change: %d", rec.Code)
		}
	})
	t.Run("login from another site", func(t *testing.T) {
		form := url.Values{"user": {opUser}, "password": {opPass}}
		rec := b.do(t, req{method: "POST", path: "/login", body: form.Encode(), headers: crossSite})
		if rec.Code != 403 {
			t.Errorf("status %d", rec.Code)
		}
	})
}

func TestPages(t *testing.T) {
	hostile := execindextest.Exec{ID: "evt_xss", Type: "customer.created", Customer: "cus_X", State: "completed"}
	b := setup(t, append([]execindextest.Exec{hostile}, seeds[:2]...))
	// An event whose fields hold markup: the Console must show, not run, it.
	body := execindextest.WithObjectField(execindextest.Body(execindextest.Exec{ID: "evt_markup", Type: "customer.created", Customer: "cus_X"}),
		"markup", `"</pre><script>alert(1)</script>"`)
	b.env.Store(t, body)

	rec := b.op(t, "GET", "/executions/evt_markup")
	page := rec.Body.String()
	if rec.Code != 200 || strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("event JSON not escaped (status %d)", rec.Code)
	}
	if !strings.Contains(page, `&#34;customer&#34;`) && !strings.Contains(page, `&quot;customer&quot;`) {
		t.Errorf("event JSON not shown")
	}
	h := rec.Header()
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
		t.Errorf("security headers: %v", h)
	}
	list := b.op(t, "GET", "/?type=invoice.payment_failed&state=failed")
	for _, want := range []string{"evt_01", "evt_02", `class="badge s-archived"`, `title="` + t0.Add(-10*time.Minute).UTC().Format("2006-01-02 15:04:05 UTC"), "Re-run all 2"} {
		if !strings.Contains(list.Body.String(), want) {
			t.Errorf("list page lacks %q", want)
		}
	}
	if rec := b.op(t, "GET", "/executions/evt_nope"); rec.Code != 404 {
		t.Errorf("unknown execution page: %d", rec.Code)
	}
}

// TestPublicAssets: the icons and the web app manifest, which browsers
// fetch without the user's credentials, answer without a login; nothing
// else of asynqmon does (TestUnauthenticated).
func TestPublicAssets(t *testing.T) {
	b := setup(t, seeds[:1])
	for _, path := range append([]string{"/favicon.ico", "/static/favicon.svg"}, func() []string {
		var paths []string
		for _, a := range monitoring.PublicAssetNames() {
			paths = append(paths, monitoringPath+a)
		}
		return paths
	}()...) {
		rec := b.do(t, req{method: "GET", path: path})
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("GET %s without credentials: %d, %d bytes; want 200 with the file", path, rec.Code, rec.Body.Len())
		}
	}
}

// seedOutcome writes, as the worker does, a failed attempt and then the
// completing one with its outcome for task id: the payment_failed notice
// skipped because a newer payment settled it.
func seedOutcome(t testing.TB, b *bundle, id string) outcome.Outcome {
	t.Helper()
	store := failures.New(b.db.Client, 0)
	start := time.Now().Add(-2 * time.Minute).UTC()
	if err := store.AddAttempt(t.Context(), "stripe", id, failures.Attempt{
		Start: start, At: start.Add(1500 * time.Millisecond), MS: 1500, Worker: "worker-a:41",
		Error: "skip retry for the task: update records: dial tcp 10.0.0.5:6379: i/o timeout",
	}); err != nil {
		t.Fatal(err)
	}
	o := outcome.Outcome{
		Records: []outcome.RecordChange{{Key: "stripeq:customer:{cus_X}", Changed: false, Why: "a newer event is already applied"}, {Key: "stripeq:charge:{ch_1}", Changed: true}},
		Notices: []outcome.Notice{{Kind: "payment_failed", Customer: "cus_X", Status: outcome.NoticeSkipped, Reason: "a newer payment settled it"}},
	}
	result, _ := json.Marshal(o)
	second := start.Add(time.Minute)
	if err := store.Complete(t.Context(), "stripe", id, failures.Attempt{
		Start: second, At: second.Add(12 * time.Millisecond), MS: 12, Retry: 1, Worker: "worker-b:7", Outcome: o.Line(),
	}, result, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestAPIOutcomeAndAttempts: a completed execution's outcome is one line in
// the list and whole in the detail, with every attempt's start, duration,
// worker and error (without asynq's prefix); the earlier attempt's error
// is not the completed row's.
func TestAPIOutcomeAndAttempts(t *testing.T) {
	b := setup(t, seeds[:4])
	want := seedOutcome(t, b, "evt_03")

	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200)
	if d.OutcomeOf == nil || len(d.OutcomeOf.Notices) != 1 || d.OutcomeOf.Notices[0] != want.Notices[0] || len(d.OutcomeOf.Records) != 2 {
		t.Errorf("outcome = %+v", d.OutcomeOf)
	}
	if d.Outcome != "payment_failed skipped: a newer payment settled it; 1 record updated" || d.LastError != "" {
		t.Errorf("outcome line %q, last error %q", d.Outcome, d.LastError)
	}
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts = %+v", d.Attempts)
	}
	a0, a1 := d.Attempts[0], d.Attempts[1]
	if a0.Error != "update records: dial tcp 10.0.0.5:6379: i/o timeout" || a0.Worker != "worker-a:41" || a0.MS != 1500 || a0.Start.IsZero() {
		t.Errorf("first attempt = %+v", a0)
	}
	if a1.Error != "" || a1.Retry != 1 || a1.Worker != "worker-b:7" || a1.MS != 12 {
		t.Errorf("second attempt = %+v", a1)
	}

	l := decode[listing](t, b.op(t, "GET", "/api/executions?customer=cus_X"), 200)
	for _, e := range l.Executions {
		if e.ID == "evt_03" && e.Outcome != d.Outcome {
			t.Errorf("row outcome %q, want %q", e.Outcome, d.Outcome)
		}
		if e.ID == "evt_01" && strings.HasPrefix(e.LastError, "skip retry") {
			t.Errorf("row error keeps asynq's prefix: %q", e.LastError)
		}
	}

	page := b.op(t, "GET", "/executions/evt_03").Body.String()
	for _, s := range []string{"a newer payment settled it", "worker-b:7", "update records: dial tcp 10.0.0.5:6379: i/o timeout", "succeeded", "1.5s"} {
		if !strings.Contains(page, s) {
			t.Errorf("detail page lacks %q", s)
		}
	}
	if strings.Contains(page, "skip retry for the task") {
		t.Error("detail page shows asynq's prefix")
	}
}

// TestAPISearch: q finds an execution by what it is about (an invoice,
// charge, payment intent, subscription, dispute or checkout session ID,
// or the customer's email, any case), by event, customer or account, and
// refuses what it cannot search, saying what it takes.
func TestAPISearch(t *testing.T) {
	b := setup(t, seeds)
	tests := []struct {
		q    string
		want []string
	}{
		{"in_stripeq_demo", []string{"evt_08", "evt_07", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"in_stripeq_demo&state=failed", []string{"evt_08", "evt_02", "evt_01"}},
		{"pi_stripeq_demo&type=charge.failed", []string{"evt_07"}},
		{"sub_stripeq_demo&type=customer.*", []string{"evt_06"}},
		{"Jenny.Rosen@Example.com&customer=cus_Z", []string{"evt_05"}},
		{"evt_04", []string{"evt_04"}},
		{"cus_Y", []string{"evt_07", "evt_04"}},
		{"acct_1", []string{"evt_07", "evt_05"}},
		{"in_nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			l := decode[listing](t, b.op(t, "GET", "/api/executions?q="+strings.Replace(tt.q, "@", "%40", 1)), 200)
			if got := rowIDs(l); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"hello", "in_x y", "@", "evt_01&id=evt_02", "cus_X&customer=cus_Y"} {
		rec := b.op(t, "GET", "/api/executions?q="+url.QueryEscape(bad))
		if rec.Code != 400 {
			t.Errorf("q=%s: %d, want 400", bad, rec.Code)
		}
	}
	if rec := b.op(t, "GET", "/api/executions?q=hello"); !strings.Contains(rec.Body.String(), "search takes an event ID") {
		t.Errorf("q=hello says %s", rec.Body.String())
	}
	page := b.op(t, "GET", "/?q=in_nope").Body.String()
	if !strings.Contains(page, "No execution names") || !strings.Contains(page, "the customer's email") {
		t.Errorf("an empty search does not say what it searched:\n%s", page)
	}
}

// TestRunKeepsAttempts: running an archived execution again keeps its
// failed attempts in its history, for the attempts to come to follow.
func TestRunKeepsAttempts(t *testing.T) {
	b := setup(t, seeds[:1]) // evt_01, archived
	store := failures.New(b.db.Client, 0)
	at := time.Now().Add(-time.Minute).UTC()
	if err := store.Keep(t.Context(), failures.Record{ID: "evt_01", Queue: "stripe", TaskType: "stripe:invoice.payment_failed", FailedAt: at, MaxRetry: 7, Err: "boom"},
		failures.Attempt{At: at, Start: at.Add(-time.Second), MS: 1000, Worker: "w:1", Error: "skip retry for the task: boom"}); err != nil {
		t.Fatal(err)
	}
	if rec := b.op(t, "POST", "/api/executions/evt_01/rerun"); rec.Code != 200 {
		t.Fatalf("run: %d %s", rec.Code, rec.Body.String())
	}
	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_01"), 200)
	if len(d.Attempts) != 1 || d.Attempts[0].Error != "boom" || d.Attempts[0].Worker != "w:1" || d.State != "pending" {
		t.Errorf("after run: state %s, attempts %+v", d.State, d.Attempts)
	}
	if _, err := store.Get(t.Context(), "stripe", "evt_01"); !errors.Is(err, failures.ErrNotKept) {
		t.Errorf("the kept failure outlived the run: %v", err)
	}
}

// failsAgainAtOnce is an inspector whose RunTask lets fail run at once,
// as a worker that takes the task, fails it and keeps the failure before
// the Console's next command.
type failsAgainAtOnce struct {
	inspector
	fail func(queue, id string)
}

func (f failsAgainAtOnce) RunTask(queue, id string) error {
	if err := f.inspector.RunTask(queue, id); err != nil {
		return err
	}
	f.fail(queue, id)
	return nil
}

// TestRunFailingAgainAtOnceStaysKept: when the run of an archived
// execution fails again, and is kept, before the Console has reopened the
// failure it ran, the new failure stays kept, with both attempts: it must
// outlive asynq's trimming of its archive.
func TestRunFailingAgainAtOnceStaysKept(t *testing.T) {
	b := setup(t, seeds[:1]) // evt_01, archived
	store := failures.New(b.db.Client, 0)
	keep := func(at time.Time, msg string) {
		r := failures.Record{ID: "evt_01", Queue: "stripe", TaskType: "stripe:invoice.payment_failed", FailedAt: at, MaxRetry: 7, Err: msg}
		if err := store.Keep(t.Context(), r, failures.Attempt{At: at, Start: at.Add(-time.Second), MS: 1000, Worker: "w:1", Error: msg}); err != nil {
			t.Fatal(err)
		}
	}
	keep(time.Now().Add(-time.Minute).UTC(), "skip retry for the task: boom")
	b.srv.tasks = failsAgainAtOnce{b.srv.tasks, func(string, string) { keep(time.Now().UTC(), "skip retry for the task: boom again") }}
	if rec := b.op(t, "POST", "/api/executions/evt_01/rerun"); rec.Code != 200 {
		t.Fatalf("run: %d %s", rec.Code, rec.Body.String())
	}
	r, err := store.Get(t.Context(), "stripe", "evt_01")
	if err != nil || r.Err != "skip retry for the task: boom again" || len(r.Attempts) != 2 {
		t.Fatalf("the failure of the run: %+v, %v; want it kept, with both attempts", r, err)
	}
	if n, _ := store.Count(t.Context(), "stripe"); n != 1 {
		t.Errorf("%d failures kept, want 1", n)
	}
}

// TestAPIRerunSelected: the executions ticked in the list are re-run each
// as its own re-run would (run now, copied, or skipped), in one audited
// action; viewers may not, and the body is checked.
func TestAPIRerunSelected(t *testing.T) {
	b := setup(t, seeds)
	json := map[string]string{"Content-Type": "application/json"}
	rec := b.do(t, req{method: "POST", path: "/api/executions/rerun-selected", user: opUser, pass: opPass, headers: json,
		body: `{"ids":["evt_01","evt_03","evt_05","evt_nope","evt_01"],"reason":"INC-9"}`})
	res := decode[bulkResult](t, rec, 200)
	if res.Matched != 4 || res.Run != 1 || res.Copied != 1 || res.Skipped != 2 || res.Failed != 0 {
		t.Errorf("result %+v, want evt_01 run, evt_03 copied, evt_05 and evt_nope skipped", res)
	}
	if info, _ := b.env.Inspector.GetTaskInfo("stripe", "evt_01"); info.State != asynq.TaskStatePending {
		t.Errorf("evt_01 is %v", info.State)
	}
	p := decode[audit.Page](t, b.op(t, "GET", "/api/audit"), 200)
	if len(p.Entries) != 1 || p.Entries[0].Action != "rerun_selected" || p.Entries[0].Count != 2 || p.Entries[0].Reason != "INC-9" ||
		p.Entries[0].Target != "evt_01,evt_03" || p.Entries[0].Detail != "1 run, 1 copied, 2 skipped, 0 failed, of 4 asked" {
		t.Errorf("audit %+v", p.Entries)
	}
	many := `{"ids":[` + strings.Repeat(`"evt_x",`, maxSelected) + `"evt_y"]}`
	for _, body := range []string{`{}`, `{"ids":[]}`, `not json`, many} {
		if rec := b.do(t, req{method: "POST", path: "/api/executions/rerun-selected", user: opUser, pass: opPass, headers: json, body: body}); rec.Code != 400 {
			t.Errorf("body %.40s: %d, want 400", body, rec.Code)
		}
	}
	if rec := b.do(t, req{method: "POST", path: "/api/executions/rerun-selected", user: viewerUser, pass: viewerPass, headers: json, body: `{"ids":["evt_01"]}`}); rec.Code != 403 {
		t.Errorf("viewer: %d, want 403", rec.Code)
	}
}

// TestTimePickerValues: from and to take the time picker's UTC form too.
func TestTimePickerValues(t *testing.T) {
	b := setup(t, seeds)
	// t0 is a whole second: evt_03 is at t0+51m, evt_05 at t0+53m, evt_02
	// at t0+50m, before the minute from names.
	from := t0.Add(51 * time.Minute).UTC().Format("2006-01-02T15:04")
	to := t0.Add(53 * time.Minute).UTC().Format("2006-01-02T15:04:05")
	l := decode[listing](t, b.op(t, "GET", "/api/executions?from="+from+"&to="+to), 200)
	if got := rowIDs(l); !slices.Equal(got, []string{"evt_05", "evt_04", "evt_03"}) {
		t.Errorf("from %s to %s: %v", from, to, got)
	}
	page := b.op(t, "GET", "/?to="+to).Body.String()
	if !strings.Contains(page, `value="`+to+`"`) {
		t.Errorf("the picker does not show to=%s", to)
	}
}

// TestAPIPermanent: the JSON API says which archived executions failed
// for good before their retries ran out (a handler's permanent error), as
// the list and the detail pages mark them; an execution archived by hand
// or still retrying is not permanent.
func TestAPIPermanent(t *testing.T) {
	b := setup(t, []execindextest.Exec{
		{ID: "evt_perm", Type: "invoice.payment_failed", State: "archived", Permanent: true},
		{ID: "evt_byhand", Type: "invoice.payment_failed", State: "archived"},
		{ID: "evt_retrying", Type: "invoice.payment_failed", State: "retry"},
	})
	want := map[string]bool{"evt_perm": true, "evt_byhand": false, "evt_retrying": false}

	raw := b.op(t, "GET", "/api/executions").Body.Bytes()
	var rows struct {
		Executions []map[string]any `json:"executions"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows.Executions) != len(want) {
		t.Fatalf("listed %d executions, want %d: %s", len(rows.Executions), len(want), raw)
	}
	for _, e := range rows.Executions {
		id, _ := e["id"].(string)
		if got, ok := e["permanent"].(bool); !ok || got != want[id] {
			t.Errorf("row %s: permanent = %v (%T), want %v", id, e["permanent"], e["permanent"], want[id])
		}
	}
	for id, perm := range want {
		d := decode[detail](t, b.op(t, "GET", "/api/executions/"+id), 200)
		if d.Permanent != perm {
			t.Errorf("detail %s: permanent = %v, want %v", id, d.Permanent, perm)
		}
		page := b.op(t, "GET", "/executions/"+id).Body.String()
		if strings.Contains(page, "permanent failure: not retried") != perm {
			t.Errorf("detail page of %s: marked permanent = %v, want %v", id, !perm, perm)
		}
	}
	if list := b.op(t, "GET", "/").Body.String(); strings.Count(list, `title="failed permanently: not retried"`) != 1 {
		t.Errorf("the list marks %d executions permanent, want 1", strings.Count(list, `title="failed permanently: not retried"`))
	}
}
