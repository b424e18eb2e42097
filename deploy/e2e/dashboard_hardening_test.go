package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// startDashboard runs the dashboard binary with env on a port of its own
// choosing (DASHBOARD_ADDR=127.0.0.1:0, unless env sets it), and returns
// it with the address it logged once listening.
func startDashboard(t *testing.T, env map[string]string) (*proctest.Proc, string) {
	t.Helper()
	vars := map[string]string{"DASHBOARD_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		vars[k] = v
	}
	p := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), vars)
	return p, proctest.DashboardAddr(t, p)
}

// dashReq sends one request to the dashboard binary.
func dashReq(t *testing.T, method, url, user, pass string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestDashboardHardening runs the real dashboard binary and checks, over
// HTTP: bad TRUSTED_PROXIES and DASHBOARD_HOSTS stop it at start; on
// loopback only loopback Host names are served; /static/ lists nothing;
// an attacker's failures behind a trusted proxy lock out neither the
// operator nor another client; next stays on the site; the access log
// names the user and the client. And, for issue 19's findings 6, 7, 8b and
// 8d: a session record read from Redis can be neither copied to a key of
// one's choosing nor relabelled operator, nor checks a password guess
// with one fast hash; asynqmon's metrics API passes no injected PromQL to
// Prometheus; Delete on evt_victim1#x deletes that, not evt_victim1; a
// deeply nested event's page stays small and quick and the process small.
// And, for issue 25's findings 1, 2 and 4: asynqmon's lists are bounded,
// an export ends with its count, and next is checked as it is sent.
func TestDashboardHardening(t *testing.T) {
	db := redistest.New(t)
	bin := proctest.Binary(t, "dashboard")
	t.Run("bad settings stop it at start", func(t *testing.T) {
		p := proctest.Start(t, "dashboard", bin, map[string]string{"REDIS_URL": db.URL, "DASHBOARD_ADDR": "127.0.0.1:0",
			"TRUSTED_PROXIES": "10.0.0.1, proxy.internal", "DASHBOARD_HOSTS": "dash.example.com/admin"})
		select {
		case <-p.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("the dashboard started with invalid settings")
		}
		out := p.Output()
		if p.ExitErr() == nil || !strings.Contains(out, "TRUSTED_PROXIES") || !strings.Contains(out, "DASHBOARD_HOSTS") {
			t.Errorf("exit %v; output does not name both variables:\n%s", p.ExitErr(), out)
		}
	})

	prom := newFakePrometheus(t)
	p, addr := startDashboard(t, map[string]string{"REDIS_URL": db.URL,
		"DASHBOARD_USER": "op", "DASHBOARD_PASSWORD": "operator-password",
		"DASHBOARD_VIEWER_USER": "viewer", "DASHBOARD_VIEWER_PASSWORD": "viewer-password",
		"TRUSTED_PROXIES": "127.0.0.1", "PROMETHEUS_URL": prom.URL})
	_, port, _ := strings.Cut(addr, ":")
	base := "http://" + addr

	t.Run("DNS rebinding: only loopback names", func(t *testing.T) {
		for host, want := range map[string]int{"127.0.0.1:" + port: 200, "localhost:" + port: 200, "rebind.attacker.example:" + port: 421, "localhost:1": 421} {
			if status, _, _ := dashReq(t, "GET", base+"/api/facets", "op", "operator-password", map[string]string{"Host": host}, ""); status != want {
				t.Errorf("Host %s: %d, want %d", host, status, want)
			}
		}
	})
	t.Run("no directory listing", func(t *testing.T) {
		if status, _, body := dashReq(t, "GET", base+"/static/", "", "", nil, ""); status != 404 || strings.Contains(body, "app.js") {
			t.Errorf("/static/: %d %.80s", status, body)
		}
	})
	t.Run("session record gives nothing away", func(t *testing.T) {
		testSessionRecord(t, db, base)
	})
	t.Run("PromQL injection through asynqmon", func(t *testing.T) {
		testPromQLInjection(t, prom, base)
	})
	t.Run("Delete on a hostile ID deletes that ID", func(t *testing.T) {
		testHostileIDDelete(t, db, base)
	})
	t.Run("deep event is not amplified", func(t *testing.T) {
		testDeepEvent(t, db, p, base)
	})
	t.Run("sign-in limits", func(t *testing.T) {
		attacker := map[string]string{"X-Forwarded-For": "198.51.100.7"}
		refused := false
		for i := 0; i < 30 && !refused; i++ {
			status, h, _ := dashReq(t, "GET", base+"/api/facets", "op", "wrong", attacker, "")
			refused = status == 429 && h.Get("Retry-After") != ""
		}
		if !refused {
			t.Fatal("the attacker's failures were never refused")
		}
		if status, _, _ := dashReq(t, "GET", base+"/api/facets", "op", "operator-password", map[string]string{"X-Forwarded-For": "203.0.113.9"}, ""); status != 200 {
			t.Errorf("operator from another client behind the proxy: %d, want 200", status)
		}
		if status, _, _ := dashReq(t, "GET", base+"/api/facets", "viewer", "viewer-password", attacker, ""); status != 200 {
			t.Errorf("another account from the attacker's client: %d, want 200", status)
		}
		form := url.Values{"user": {"op"}, "password": {"operator-password"}, "next": {"/\t/evil.com"}}.Encode()
		status, h, _ := dashReq(t, "POST", base+"/login", "", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": "203.0.113.9"}, form)
		if status != 303 || h.Get("Location") != "/" {
			t.Errorf("login with next=/<TAB>/evil.com: %d to %q, want 303 to /", status, h.Get("Location"))
		}
	})
	t.Run("next is checked as the redirect sends it", func(t *testing.T) {
		for _, next := range []string{"/./\\evil.com", "/../\\evil.com", "/%2e/%5cevil.com"} {
			form := url.Values{"user": {"op"}, "password": {"operator-password"}, "next": {next}}.Encode()
			status, h, _ := dashReq(t, "POST", base+"/login", "", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": "203.0.113.9"}, form)
			if status != 303 || h.Get("Location") != "/" {
				t.Errorf("login with next=%s: %d to %q, want 303 to /", next, status, h.Get("Location"))
			}
		}
	})
	t.Run("asynqmon lists are bounded", func(t *testing.T) {
		status, _, body := dashReq(t, "GET", base+"/monitoring/api/queues/stripe/completed_tasks?size=100000&page=1", "viewer", "viewer-password", nil, "")
		if status != 400 || !strings.Contains(body, "size must be") {
			t.Errorf("a page of 100,000: %d %.200s", status, body)
		}
	})
	t.Run("an export ends with its count", func(t *testing.T) {
		status, _, body := dashReq(t, "GET", base+"/api/executions.ndjson?customer=cus_nobody", "viewer", "viewer-password", nil, "")
		if status != 200 || body != `{"complete":true,"count":0}`+"\n" {
			t.Errorf("an empty export: %d %q", status, body)
		}
	})
	t.Run("access log names user and client", func(t *testing.T) {
		if status, _, _ := dashReq(t, "GET", base+"/api/executions?id=evt_logged", "viewer", "viewer-password", map[string]string{"X-Forwarded-For": "192.0.2.44"}, ""); status != 200 {
			t.Fatalf("status %d", status)
		}
		waitOutput(t, p, `"client_ip":"192.0.2.44"`, 5*time.Second)
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, "192.0.2.44") && !strings.Contains(line, `"user":"viewer"`) {
				t.Errorf("log line without the user: %s", line)
			}
			if strings.Contains(line, "operator-password") || strings.Contains(line, "viewer-password") {
				t.Errorf("a log line holds a password: %s", line)
			}
		}
	})
}

// TestWebhookLatencyUnderDashboardLoad measures the api's webhook latency
// (real api and dashboard binaries, one Redis holding 100,000 executions)
// alone, then under two loads of the dashboard:
//
//   - console: 64 loops of both users ask the Console for the deep
//     page (since=7d&page=2) and a wide filter;
//   - asynqmon: 5 loops of both users ask asynqmon for a page of 100,000
//     completed tasks (issue 25: before its lists were bounded, one such
//     request held Redis 2.26 s and five at once made the api answer 503),
//     between pages it allows.
//
// It logs what it saw, with the ratio of each loaded p99 to the idle one
// and the dashboard's peak memory, and fails if any delivery is not
// acknowledged, a dashboard request fails otherwise than 429 (or 400 for
// a page asynqmon may not serve), or a page of 100,000 is served. Latency
// is reported, not asserted: it depends on what else the machine runs.
//
// It seeds 30,000 executions, past the 20,000 one query examines, or
// 100,000 as the issue measured with STRIPEQ_LONG=1.
//
//	TEST_REDIS_URL=redis://127.0.0.1:6379 go test -run WebhookLatencyUnderDashboardLoad -v ./deploy/e2e/
func TestWebhookLatencyUnderDashboardLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 30,000 executions")
	}
	db := redistest.New(t)
	start := time.Now()
	n := 30_000
	if os.Getenv("STRIPEQ_LONG") != "" {
		n = 100_000
	}
	execindextest.Bulk(t, db.Client, "stripe", execindextest.BulkShape{N: n, Customers: 2000, Archived: 0.03, Span: 7 * 24 * time.Hour})
	t.Logf("seeded %d executions in %v", n, time.Since(start).Round(time.Second))
	_, apiAddr := startAPI(t, "api", db.URL, nil)
	users := [][2]string{{"op", "operator-password"}, {"viewer", "viewer-password"}}
	dash, dashAddr := startDashboard(t, map[string]string{"REDIS_URL": db.URL,
		"DASHBOARD_USER": users[0][0], "DASHBOARD_PASSWORD": users[0][1],
		"DASHBOARD_VIEWER_USER": users[1][0], "DASHBOARD_VIEWER_PASSWORD": users[1][1]})
	client := loadClient()
	deliver := func(phase string, n int) []time.Duration {
		var lat []time.Duration
		for i := range n {
			a := send(client, "http://"+apiAddr, customerEvent(fmt.Sprintf("evt_lat_%s_%03d", phase, i), time.Now()))
			if !a.acked() {
				t.Errorf("%s delivery %d: %d %v %s", phase, i, a.status, a.err, a.message)
			}
			lat = append(lat, a.latency)
			time.Sleep(20 * time.Millisecond)
		}
		slices.Sort(lat)
		return lat
	}
	pct := func(l []time.Duration, p float64) time.Duration { return l[min(len(l)-1, int(float64(len(l))*p))] }
	report := func(phase string, l []time.Duration) {
		t.Logf("%-26s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms (%d deliveries)", phase,
			ms(pct(l, .5)), ms(pct(l, .99)), ms(l[len(l)-1]), len(l))
	}
	idle := deliver("idle", 150)
	report("webhooks, idle", idle)

	// underLoad delivers while loops goroutines, each as users[i%2], GET
	// the dashboard's paths in turn; it returns the answers by status.
	underLoad := func(phase string, loops int, paths []string) map[int]int64 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int64{}
		dc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: loops}}
		for i := range loops {
			wg.Go(func() {
				u := users[i%2]
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					path := paths[n%len(paths)]
					req, _ := http.NewRequest("GET", "http://"+dashAddr+path, nil)
					req.SetBasicAuth(u[0], u[1])
					status := 0 // the request failed
					if resp, err := dc.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						status = resp.StatusCode
					}
					if status == 200 && strings.Contains(path, "size=100000") {
						t.Errorf("%s served %s", u[0], path)
					}
					mu.Lock()
					statuses[status]++
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Second)
		loadStart := time.Now()
		loaded := deliver(phase, 150)
		close(stop)
		wg.Wait()
		report("webhooks, "+phase+" load", loaded)
		t.Logf("webhook p99 under %s load / idle: %.1f×; the dashboard answered %v (status: count) in %.1f s",
			phase, float64(pct(loaded, .99))/float64(pct(idle, .99)), statuses, time.Since(loadStart).Seconds())
		return statuses
	}

	t.Run("console", func(t *testing.T) {
		statuses := underLoad("console", 64, []string{"/api/executions?since=7d&page=2", "/api/executions?livemode=true", "/api/executions?since=7d&page=200"})
		if other := statuses[0] + statuses[400] + statuses[500] + statuses[503]; other > 0 {
			t.Errorf("%d dashboard requests failed otherwise than 429: %v", other, statuses)
		}
		if statuses[429] == 0 {
			t.Error("64 loops of reads were never throttled: the per-user read limit did not act")
		}
	})
	t.Run("asynqmon", func(t *testing.T) {
		statuses := underLoad("asynqmon", 5, []string{"/monitoring/api/queues/stripe/completed_tasks?size=100000&page=1",
			"/monitoring/api/queues/stripe/completed_tasks?size=100&page=3", "/monitoring/api/queues/stripe/archived_tasks?size=20&page=1"})
		if other := statuses[0] + statuses[500] + statuses[503]; other > 0 || statuses[400] == 0 {
			t.Errorf("asynqmon answered %v; want 400 to every page of 100,000, and no failure", statuses)
		}
		_, peak := procMemory(t, dash.Pid())
		t.Logf("the dashboard's peak memory: %d MB", peak>>20)
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fakePrometheus answers every query with an empty matrix and records the
// PromQL it was asked.
type fakePrometheus struct {
	URL     string
	mu      sync.Mutex
	queries []string
}

func newFakePrometheus(t *testing.T) *fakePrometheus {
	f := &fakePrometheus{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.queries = append(f.queries, r.Form.Get("query"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// take returns the queries received so far and forgets them.
func (f *fakePrometheus) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queries
	f.queries = nil
	return q
}

// signIn posts the login form as a browser on the dashboard's own page
// would, and returns the session cookie's value.
func signIn(t *testing.T, base, user, pass string) string {
	t.Helper()
	form := url.Values{"user": {user}, "password": {pass}, "next": {"/"}}.Encode()
	status, h, body := dashReq(t, "POST", base+"/login", "", "", map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": base, "Sec-Fetch-Site": "same-origin"}, form)
	if status != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d %.200s", user, status, body)
	}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "stripeq_session" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("sign in as %s: no session cookie in %v", user, h["Set-Cookie"])
	return ""
}

// sessionKeyOf is the Redis key of the session whose cookie holds token.
func sessionKeyOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return "stripeq:dashboard:session:" + hex.EncodeToString(h[:])
}

// sameOrigin are the headers a browser adds to a fetch from the
// dashboard's own page, with the session's CSRF token as app.js sends it.
func sameOrigin(base, token, csrf string) map[string]string {
	return map[string]string{"Cookie": "stripeq_session=" + token, "X-CSRF-Token": csrf,
		"Origin": base, "Sec-Fetch-Site": "same-origin", "Accept": "application/json"}
}

// testSessionRecord (issue 19, finding 6): a session record read from
// Redis neither checks a password guess with one fast hash, nor mints a
// session when copied under a key of the attacker's choosing, nor grants
// operator when relabelled; the real cookie keeps working.
func testSessionRecord(t *testing.T, db *redistest.DB, base string) {
	ctx := context.Background()
	op := signIn(t, base, "op", "operator-password")
	rec := db.Client.HGetAll(ctx, sessionKeyOf(op)).Val()
	if rec["user"] != "op" || rec["role"] != "operator" || rec["fp"] == "" {
		t.Fatalf("session record of op: %v", rec)
	}
	// Nothing offline-checkable: no field holds the password, fp is not
	// the former HMAC keyed with the password alone (one fast hash per
	// guess), and two sessions of one account share neither proof nor salt.
	for k, v := range rec {
		if strings.Contains(v, "operator-password") {
			t.Errorf("field %s holds the password", k)
		}
	}
	m := hmac.New(sha256.New, []byte("operator-password"))
	m.Write([]byte("stripeq session\x00op\x00operator"))
	if old := hex.EncodeToString(m.Sum(nil)); strings.HasPrefix(old, rec["fp"]) || strings.Contains(rec["fp"], old[:32]) {
		t.Errorf("fp %s verifies a password guess with one HMAC-SHA256", rec["fp"])
	}
	op2 := signIn(t, base, "op", "operator-password")
	rec2 := db.Client.HGetAll(ctx, sessionKeyOf(op2)).Val()
	if rec2["fp"] == rec["fp"] || rec2["salt"] == "" || rec2["salt"] == rec["salt"] {
		t.Errorf("two sessions of op share their proof or salt: fp %q %q, salt %q %q", rec["fp"], rec2["fp"], rec["salt"], rec2["salt"])
	}

	// (a) An attacker who can write Redis copies the record under the
	// SHA-256 of a cookie value of their choosing.
	forged := "attacker-chosen-cookie-value-0123456789"
	if err := db.Client.HSet(ctx, sessionKeyOf(forged), rec).Err(); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := dashReq(t, "GET", base+"/api/facets", "", "", map[string]string{"Cookie": "stripeq_session=" + forged}, ""); status != http.StatusUnauthorized {
		t.Errorf("a copied session record on the API: %d, want 401", status)
	}
	status, h, _ := dashReq(t, "GET", base+"/", "", "", map[string]string{"Cookie": "stripeq_session=" + forged, "Accept": "text/html"}, "")
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Errorf("a copied session record on the Console: %d to %q, want 303 to /login", status, h.Get("Location"))
	}
	if status, _, _ := dashReq(t, "DELETE", base+"/api/executions/evt_not_there", "", "", sameOrigin(base, forged, rec["csrf"]), ""); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Errorf("a copied operator record deleting: %d, want 401 or 403", status)
	}

	// (b) A viewer's record relabelled operator: the role alone, then
	// user, role, salt and proof all taken from op's record.
	viewer := signIn(t, base, "viewer", "viewer-password")
	vkey := sessionKeyOf(viewer)
	vcsrf := db.Client.HGet(ctx, vkey, "csrf").Val()
	if status, _, _ := dashReq(t, "DELETE", base+"/api/executions/evt_not_there", "", "", sameOrigin(base, viewer, vcsrf), ""); status != http.StatusForbidden {
		t.Errorf("the viewer deleting: %d, want 403", status)
	}
	for _, relabel := range []map[string]string{
		{"role": "operator"},
		{"user": "op", "role": "operator", "salt": rec["salt"], "fp": rec["fp"]},
	} {
		if err := db.Client.HSet(ctx, vkey, relabel).Err(); err != nil {
			t.Fatal(err)
		}
		if status, _, body := dashReq(t, "DELETE", base+"/api/executions/evt_not_there", "", "", sameOrigin(base, viewer, vcsrf), ""); status != http.StatusUnauthorized && status != http.StatusForbidden {
			t.Errorf("the viewer's record relabelled %v, deleting: %d %s, want 401 or 403", relabel, status, body)
		}
	}

	// (c) Changing nothing, op's real cookie is an operator's.
	if status, _, _ := dashReq(t, "GET", base+"/api/facets", "", "", map[string]string{"Cookie": "stripeq_session=" + op}, ""); status != http.StatusOK {
		t.Errorf("the real session on the API: %d, want 200", status)
	}
	if status, _, body := dashReq(t, "DELETE", base+"/api/executions/evt_not_there", "", "", sameOrigin(base, op, rec["csrf"]), ""); status != http.StatusNotFound {
		t.Errorf("the real operator session deleting a missing execution: %d %s, want 404", status, body)
	}
}

// testPromQLInjection (finding 7): a viewer's queues parameter of
// asynqmon's metrics API reaches Prometheus only as a known queue name.
func testPromQLInjection(t *testing.T, prom *fakePrometheus, base string) {
	for _, queues := range []string{`x"} or {__name__=~".+`, `stripe"} or {__name__=~".+`, "stripe|.*"} {
		prom.take()
		status, _, body := dashReq(t, "GET", base+"/monitoring/api/metrics?duration_sec=3600&queues="+url.QueryEscape(queues), "viewer", "viewer-password", nil, "")
		if status != http.StatusBadRequest {
			t.Errorf("queues=%s: %d %.200s, want 400", queues, status, body)
		}
		for _, q := range prom.take() {
			if strings.Contains(q, "__name__") || strings.Contains(q, ".*") {
				t.Errorf("queues=%s: injected PromQL reached Prometheus: %s", queues, q)
			}
		}
	}
	prom.take()
	status, _, body := dashReq(t, "GET", base+"/monitoring/api/metrics?duration_sec=3600&queues=stripe", "viewer", "viewer-password", nil, "")
	if status != http.StatusOK {
		t.Fatalf("queues=stripe: %d %.200s, want 200", status, body)
	}
	qs := prom.take()
	if !slices.ContainsFunc(qs, func(q string) bool { return strings.Contains(q, "asynq_") && strings.Contains(q, `"stripe"`) }) {
		t.Errorf("queues=stripe: Prometheus received %q, want asynq_ queries about queue \"stripe\"", qs)
	}
}

// testHostileIDDelete (finding 8b): with evt_victim1 and evt_victim1#x in
// Redis (stored before IDs were validated), the Delete button on the
// detail page of evt_victim1#x, followed as a browser follows it, deletes
// evt_victim1#x and leaves evt_victim1.
func testHostileIDDelete(t *testing.T, db *redistest.DB, base string) {
	const victim, hostile = "evt_victim1", "evt_victim1#x"
	env := execindextest.Seed(t, db.Client, "stripe", []execindextest.Exec{
		{ID: victim, Type: "customer.created", State: "completed"},
		{ID: hostile, Type: "customer.created", State: "completed", Unchecked: true},
	})
	op := signIn(t, base, "op", "operator-password")
	status, _, page := dashReq(t, "GET", base+"/executions/"+url.PathEscape(hostile), "", "", map[string]string{"Cookie": "stripeq_session=" + op, "Accept": "text/html"}, "")
	if status != http.StatusOK {
		t.Fatalf("detail page of %s: %d %.200s", hostile, status, page)
	}
	csrf := regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`).FindStringSubmatch(page)
	button := regexp.MustCompile(`data-action="delete" data-url="([^"]*)"`).FindStringSubmatch(page)
	if csrf == nil || button == nil {
		t.Fatalf("detail page of %s has no CSRF token or no Delete button", hostile)
	}
	// app.js fetches the attribute's value; like a browser, the client
	// resolves it against the page and drops any fragment.
	target := html.UnescapeString(button[1])
	status, _, body := dashReq(t, "DELETE", base+target, "", "", sameOrigin(base, op, html.UnescapeString(csrf[1])), "")
	if status != http.StatusOK {
		t.Errorf("DELETE %s: %d %s", target, status, body)
	}
	if _, err := env.Inspector.GetTaskInfo("stripe", hostile); err == nil {
		t.Errorf("%s still exists after its Delete button (data-url %q)", hostile, target)
	}
	if _, err := env.Inspector.GetTaskInfo("stripe", victim); err != nil {
		t.Errorf("Delete on %s deleted %s (data-url %q): %v", hostile, victim, target, err)
	}
}

// testDeepEvent (finding 8d): the detail page of a 20 KB event nested
// 9,990 levels is small, quick, shows the raw JSON escaped, and does not
// grow the dashboard.
func testDeepEvent(t *testing.T, db *redistest.DB, p *proctest.Proc, base string) {
	const depth = 9990
	deep := strings.Repeat(`{"a":`, depth) + `"<b>x</b>"` + strings.Repeat("}", depth)
	body := execindextest.WithObjectField(execindextest.Body(execindextest.Exec{ID: "evt_deep", Type: "customer.created"}), "deeply_nested", deep)
	execindextest.Seed(t, db.Client, "stripe", nil).Store(t, body)
	start := time.Now()
	status, _, page := dashReq(t, "GET", base+"/executions/evt_deep", "op", "operator-password", nil, "")
	took := time.Since(start)
	rss, peak := procMemory(t, p.Pid())
	t.Logf("event of %d bytes: page of %d bytes in %v; dashboard RSS %d MB, peak %d MB", len(body), len(page), took.Round(time.Millisecond), rss>>20, peak>>20)
	if status != http.StatusOK {
		t.Fatalf("detail page: %d %.200s", status, page)
	}
	if max := 4*len(body) + 64<<10; len(page) > max {
		t.Errorf("page of %d bytes for an event of %d, want at most %d", len(page), len(body), max)
	}
	if took > 3*time.Second {
		t.Errorf("page took %v, want at most 3s", took)
	}
	if !strings.Contains(page, `&lt;b&gt;x&lt;/b&gt;`) || strings.Contains(page, "<b>x") {
		t.Errorf("the raw event is not shown escaped")
	}
	if !strings.Contains(page, strings.Repeat(`{&#34;a&#34;:`, 100)) && !strings.Contains(page, strings.Repeat(`{&quot;a&quot;:`, 100)) {
		t.Errorf("the page does not show the raw, unindented JSON")
	}
	if peak > 200<<20 {
		t.Errorf("the dashboard's peak RSS is %d MB, want under 200 MB", peak>>20)
	}
}

// procMemory returns a process's resident set size and its peak, in bytes,
// from /proc/<pid>/status.
func procMemory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, peak
}
