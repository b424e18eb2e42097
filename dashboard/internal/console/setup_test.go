package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/hibiken/asynqmon"
	"golang.org/x/time/rate"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// Credentials of the test accounts.
const (
	opUser, opPass         = "op", "operator-password"
	viewerUser, viewerPass = "viewer", "viewer-password"
)

// bundle is what a dashboard test works with.
type bundle struct {
	h   http.Handler
	srv *server
	env *execindextest.Env
	db  *redistest.DB
}

// setup returns a dashboard over a fresh Redis holding execs.
func setup(t testing.TB, execs []execindextest.Exec) *bundle {
	t.Helper()
	return setupEnv(t, execs, nil)
}

// setupEnv is setup with extra environment variables.
func setupEnv(t testing.TB, execs []execindextest.Exec, extra map[string]string) *bundle {
	t.Helper()
	db := redistest.New(t)
	vars := map[string]string{
		"REDIS_URL":      db.URL,
		"DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass,
		"DASHBOARD_VIEWER_USER": viewerUser, "DASHBOARD_VIEWER_PASSWORD": viewerPass,
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	env := execindextest.Seed(t, db.Client, cfg.Task.Queue, execs)
	mon := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: db.Opt})
	monRO := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: db.Opt, ReadOnly: true})
	t.Cleanup(func() { mon.Close(); monRO.Close() })
	s := newServer(slog.New(slog.DiscardHandler), cfg, db.Client, mon, monRO, env.Inspector, env.Client)
	s.reads = auth.NewUserLimits(rate.Inf, 1)                   // TestReadsAreThrottled sets the real limits
	s.auth.SetDerivationLimits(auth.NewUserLimits(rate.Inf, 1)) // as TestSessionChecksAreRateLimitedBeforeArgon2id does
	return &bundle{h: s.handler(), srv: s, env: env, db: db}
}

// req describes one request to the handler.
type req struct {
	method, path string
	body         string
	user, pass   string            // Basic credentials, when user is set
	headers      map[string]string // extra headers
	cookie       *http.Cookie
	remote       string // RemoteAddr, when set
}

func (b *bundle) do(t testing.TB, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, hr)
	return rec
}

// op sends a request as the operator, with Basic credentials.
func (b *bundle) op(t testing.TB, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, req{method: method, path: path, user: opUser, pass: opPass})
}

// decode reads a JSON answer into v, failing on a wrong status.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder, want int) T {
	t.Helper()
	var v T
	if rec.Code != want {
		t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, rec.Body.String())
	}
	return v
}

// login signs in through the form and returns the session cookie.
func (b *bundle) login(t testing.TB, user, pass string) *http.Cookie {
	t.Helper()
	form := url.Values{"user": {user}, "password": {pass}, "next": {"/"}}
	rec := b.do(t, req{method: http.MethodPost, path: "/login", body: form.Encode(), headers: map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://example.com", "Sec-Fetch-Site": "same-origin",
	}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("login: status %d: %s", rec.Code, rec.Body.String())
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.SessionCookie {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

// t0 is a fixed base for received times, an hour ago.
var t0 = time.Now().Add(-time.Hour).Truncate(time.Second)

// seeds is the queue most tests look at.
var seeds = []execindextest.Exec{
	{ID: "evt_01", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_X", State: "archived", ReceivedAt: t0.Add(-10 * time.Minute)},
	{ID: "evt_02", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_X", State: "retry", ReceivedAt: t0.Add(50 * time.Minute)},
	{ID: "evt_03", Type: "invoice.payment_failed", Livemode: false, Customer: "cus_X", State: "completed", ReceivedAt: t0.Add(51 * time.Minute)},
	{ID: "evt_04", Type: "invoice.paid", Livemode: true, Customer: "cus_Y", State: "completed", ReceivedAt: t0.Add(52 * time.Minute)},
	{ID: "evt_05", Type: "customer.created", Livemode: true, Customer: "cus_Z", Account: "acct_1", State: "pending", ReceivedAt: t0.Add(53 * time.Minute)},
	{ID: "evt_06", Type: "customer.subscription.updated", Livemode: true, Customer: "cus_X", State: "scheduled", ReceivedAt: t0.Add(54 * time.Minute)},
	{ID: "evt_07", Type: "charge.failed", Livemode: false, Customer: "cus_Y", Account: "acct_1", State: "active", ReceivedAt: t0.Add(55 * time.Minute)},
	{ID: "evt_08", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_X", State: "archived", ReceivedAt: t0.Add(56 * time.Minute)},
}
