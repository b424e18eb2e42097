package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynqmon"
)

// TestEveryRouteNeedsAuth walks every route the dashboard's engine serves,
// as it registers them (not a hand-kept list), and checks that each answers
// 401, or 303 to the login page for a browser, without credentials, with a
// wrong password and with a made-up session; only the open routes answer.
func TestEveryRouteNeedsAuth(t *testing.T) {
	b := setup(t, seeds[:1])
	open := map[string]bool{"GET /healthz": true, "GET /login": true, "POST /login": true, "GET /static/*file": true, "HEAD /static/*file": true, "GET /favicon.ico": true}
	routes := b.h.(*gin.Engine).Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes found", len(routes))
	}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if open[key] {
			continue
		}
		path := r.Path
		for _, p := range []string{":id", "*any", "*filepath"} {
			path = strings.ReplaceAll(path, p, "evt_01")
		}
		t.Run(key, func(t *testing.T) {
			b.srv.auth.ResetLimits()
			for _, tt := range []struct {
				name string
				r    req
			}{
				{"no credentials", req{method: r.Method, path: path}},
				{"wrong password", req{method: r.Method, path: path, user: opUser, pass: "wrong"}},
				{"wrong user", req{method: r.Method, path: path, user: "nobody", pass: opPass}},
			} {
				rec := b.do(t, tt.r)
				if rec.Code != 401 && !(rec.Code == 303 && strings.HasPrefix(rec.Header().Get("Location"), "/login")) {
					t.Errorf("%s: %d, want 401 or a redirect to the login page", tt.name, rec.Code)
				}
			}
		})
	}
}

// TestExpiredSessionIsRefused: a session whose Redis key expired (after
// DASHBOARD_SESSION_TTL) no longer opens anything.
func TestExpiredSessionIsRefused(t *testing.T) {
	b := setup(t, seeds[:1])
	cookie := b.login(t, opUser, opPass)
	if rec := b.do(t, req{path: "/api/executions", cookie: cookie}); rec.Code != 200 {
		t.Fatalf("fresh session: %d", rec.Code)
	}
	if err := b.db.Client.Del(context.Background(), auth.SessionKey(cookie.Value)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/executions", "/monitoring/api/queues"} {
		if rec := b.do(t, req{path: path, cookie: cookie}); rec.Code != 401 {
			t.Errorf("expired session, GET %s: %d, want 401", path, rec.Code)
		}
	}
	if rec := b.do(t, req{path: "/", cookie: cookie, headers: map[string]string{"Accept": "text/html"}}); rec.Code != 303 {
		t.Errorf("expired session, the Console page: %d, want 303 to the login page", rec.Code)
	}
}

// TestHostAllowlist: with DASHBOARD_HOSTS set, a request for any other
// Host (a DNS-rebinding page) gets 421; /healthz answers whatever the Host.
func TestHostAllowlist(t *testing.T) {
	b := setupEnv(t, seeds[:1], map[string]string{"DASHBOARD_HOSTS": "dash.example.com, localhost:8081"})
	tests := []struct {
		host, path string
		want       int
	}{
		{"dash.example.com", "/api/executions", 200},
		{"DASH.example.com:443", "/api/executions", 200},
		{"localhost:8081", "/api/executions", 200},
		{"localhost:9999", "/api/executions", 421},
		{"rebind.attacker.example:8081", "/api/executions", 421},
		{"rebind.attacker.example:8081", "/login", 421},
		{"rebind.attacker.example:8081", "/monitoring/api/queues", 421},
		{"rebind.attacker.example:8081", "/healthz", 200},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			r.Host = tt.host
			r.SetBasicAuth(opUser, opPass)
			rec := httptest.NewRecorder()
			b.h.ServeHTTP(rec, r)
			if rec.Code != tt.want {
				t.Errorf("Host %s, GET %s: %d, want %d", tt.host, tt.path, rec.Code, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		port  string
		hosts []string
	}{{"8081", []string{"localhost:8081", "127.0.0.1:8081", "[::1]:8081"}}} {
		if got := loopbackHosts(tt.port); !slices.Equal(got, tt.hosts) {
			t.Errorf("loopbackHosts(%s) = %v", tt.port, got)
		}
	}
}

// TestStaticHasNoListing: /static/ serves its files but never lists its
// directory.
func TestStaticHasNoListing(t *testing.T) {
	b := setup(t, nil)
	for path, want := range map[string]int{"/static/": 404, "/static/.": 404, "/static/app.css": 200, "/static/app.js": 200, "/static/nope.js": 404, "/static/./": 404} {
		rec := b.do(t, req{path: path})
		if rec.Code != want || (want == 404 && strings.Contains(rec.Body.String(), "app.js")) {
			t.Errorf("GET %s: %d, want %d: %.100s", path, rec.Code, want, rec.Body.String())
		}
	}
}

// TestAccessLogNamesUserAndClient: every request's log line names the
// signed-in user and the client address (the proxy's client only from
// TRUSTED_PROXIES).
func TestAccessLogNamesUserAndClient(t *testing.T) {
	b := setupEnv(t, seeds[:1], map[string]string{"TRUSTED_PROXIES": "10.1.0.0/16"})
	var buf bytes.Buffer
	b.srv.log = slog.New(slog.NewJSONHandler(&buf, nil))
	b.h = b.srv.handler()
	cookie := b.login(t, viewerUser, viewerPass)
	tests := []struct {
		name       string
		r          req
		user, addr string
	}{
		{"Basic, direct", req{path: "/api/executions", user: opUser, pass: opPass, remote: "192.0.2.4:999"}, opUser, "192.0.2.4"},
		{"session, through the proxy", req{path: "/api/executions", cookie: cookie, remote: "10.1.2.3:999", headers: map[string]string{"X-Forwarded-For": "203.0.113.5"}}, viewerUser, "203.0.113.5"},
		{"forged header, untrusted peer", req{path: "/api/executions", user: opUser, pass: opPass, remote: "192.0.2.4:999", headers: map[string]string{"X-Forwarded-For": "203.0.113.5"}}, opUser, "192.0.2.4"},
		{"no credentials", req{path: "/api/executions", remote: "[2001:db8::1]:999"}, "", "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			b.do(t, tt.r)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			if line["client_ip"] != tt.addr || (tt.user != "" && line["user"] != tt.user) || (tt.user == "" && line["user"] != nil) {
				t.Errorf("log line %s: want user %q, client_ip %q", buf.String(), tt.user, tt.addr)
			}
		})
	}
}

// TestLoginRedirectStaysOnSite: next after sign-in is only ever a path on
// this site.
func TestLoginRedirectStaysOnSite(t *testing.T) {
	b := setup(t, nil)
	tests := []struct{ next, want string }{
		{"/", "/"},
		{"/?type=invoice.*&state=failed", "/?type=invoice.*&state=failed"},
		{"/executions/evt_1", "/executions/evt_1"},
		{"/%09/evil.com", "/"},
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/\r\n/evil.com", "/"},
		{"//evil.com", "/"},
		{"/\\evil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%2F/evil.com", "/"},
		{"/%2fevil.com", "/"},
		{"\\\\evil.com", "/"},
		{"https://evil.com", "/"},
		{"evil.com", "/"},
		{"", "/"},
		{"/%00", "/"},
		{"/\x7f/evil.com", "/"},
		{"/%zz", "/"},
		// http.Redirect cleans the path it sends: what is checked must be
		// what is sent, and "\\" is refused anywhere.
		{"/./\\evil.com", "/"},
		{"/../\\evil.com", "/"},
		{"/a/../\\evil.com", "/"},
		{"/%2e/%5cevil.com", "/"},
		{"/.%2f%5cevil.com", "/"},
		{"/./%5Cevil.com", "/"},
		{"/executions/evt_1\\", "/"},
		{"/?next=\\evil.com", "/"},
		{"/.//evil.com", "/evil.com"},
		{"/..//evil.com", "/evil.com"},
		{"/a/..//evil.com", "/evil.com"},
		{"/executions/./evt_1", "/executions/evt_1"},
		{"/deliveries/", "/deliveries/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			form := url.Values{"user": {opUser}, "password": {opPass}, "next": {tt.next}}
			rec := b.do(t, req{method: "POST", path: "/login", body: form.Encode(), headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
			if rec.Code != 303 || rec.Header().Get("Location") != tt.want {
				t.Errorf("next %q: %d to %q, want 303 to %q", tt.next, rec.Code, rec.Header().Get("Location"), tt.want)
			}
			page := b.do(t, req{path: "/login?next=" + url.QueryEscape(tt.next)})
			if want := `name="next" value="` + template.HTMLEscapeString(tt.want) + `"`; !strings.Contains(page.Body.String(), want) {
				t.Errorf("login page for next %q lacks %s", tt.next, want)
			}
		})
	}
}

// TestMetricsQueuesArePlainNames: asynqmon pastes the queues parameter of
// its metrics API into PromQL; only known queue names reach it.
func TestMetricsQueuesArePlainNames(t *testing.T) {
	b := setup(t, seeds[:1])
	var (
		mu      sync.Mutex
		queries []string
	)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query().Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	t.Cleanup(prom.Close)
	mon := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: b.db.Opt, PrometheusAddress: prom.URL, ReadOnly: true})
	t.Cleanup(func() { mon.Close() })
	b.srv.monitoring, b.srv.monitoringRO = mon, mon
	b.h = b.srv.handler()
	tests := []struct {
		queues string
		want   int
	}{
		{"", 200},
		{"stripe", 200},
		{`x"} or {__name__=~".+`, 400},
		{`stripe"} or {__name__=~".+`, 400},
		{"stripe,nope", 400},
		{"stripe|.*", 400},
	}
	for _, tt := range tests {
		t.Run(tt.queues, func(t *testing.T) {
			mu.Lock()
			queries = nil
			mu.Unlock()
			rec := b.do(t, req{path: "/monitoring/api/metrics?queues=" + url.QueryEscape(tt.queues), user: viewerUser, pass: viewerPass})
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.want == 400 && len(queries) > 0 {
				t.Errorf("Prometheus was asked %q", queries)
			}
			for _, q := range queries {
				if strings.Contains(q, "__name__") {
					t.Errorf("injected PromQL reached Prometheus: %s", q)
				}
			}
		})
	}
}

// TestSessionRecordGivesNothingAway: what Redis holds for a session
// cannot be replayed under another key, and does not verify a password
// with one fast hash: the proof is salted per session and keyed with
// Argon2id.
func TestSessionRecordGivesNothingAway(t *testing.T) {
	b := setup(t, seeds[:1])
	ctx := context.Background()
	c1, c2 := b.login(t, opUser, opPass), b.login(t, opUser, opPass)
	r1 := b.db.Client.HGetAll(ctx, auth.SessionKey(c1.Value)).Val()
	r2 := b.db.Client.HGetAll(ctx, auth.SessionKey(c2.Value)).Val()
	if r1["fp"] == "" || r1["fp"] == r2["fp"] || r1["salt"] == r2["salt"] {
		t.Errorf("two sessions of one account share their proof or salt: %q %q", r1["fp"], r2["fp"])
	}
	// The former scheme: 16 bytes of HMAC-SHA256 keyed with the password.
	m := hmac.New(sha256.New, []byte(opPass))
	m.Write([]byte("stripeq session\x00" + opUser + "\x00" + string(auth.Operator)))
	if old := hex.EncodeToString(m.Sum(nil)); strings.Contains(old, r1["fp"]) || strings.Contains(r1["fp"], old[:32]) {
		t.Errorf("fp is an HMAC keyed with the password alone")
	}
	for k, v := range r1 {
		if strings.Contains(v, opPass) {
			t.Errorf("field %s holds the password", k)
		}
	}
	// Copying the record under a key of one's own choosing mints nothing.
	forged := strings.Repeat("B", 52)
	if err := b.db.Client.HSet(ctx, auth.SessionKey(forged), r1).Err(); err != nil {
		t.Fatal(err)
	}
	if rec := b.do(t, req{path: "/api/executions", cookie: &http.Cookie{Name: auth.SessionCookie, Value: forged}}); rec.Code != 401 {
		t.Errorf("a copied session record: %d, want 401", rec.Code)
	}
	if rec := b.do(t, req{path: "/api/executions", cookie: c1}); rec.Code != 200 {
		t.Errorf("the real session: %d", rec.Code)
	}
	// Changing the role or user in a record does not promote it.
	v := b.login(t, viewerUser, viewerPass)
	b.db.Client.HSet(ctx, auth.SessionKey(v.Value), "role", string(auth.Operator), "user", opUser)
	if rec := b.do(t, req{path: "/api/executions", cookie: v}); rec.Code != 401 {
		t.Errorf("a viewer session relabelled operator: %d, want 401", rec.Code)
	}
	// A record without a salt (an older version's) is signed out.
	b.db.Client.HDel(ctx, auth.SessionKey(c2.Value), "salt")
	if rec := b.do(t, req{path: "/api/executions", cookie: c2}); rec.Code != 401 {
		t.Errorf("a session without salt: %d, want 401", rec.Code)
	}
	// Password change signs out, through a fresh cache too.
	b.srv.auth.SetPassword(opUser, "changed")
	defer b.srv.auth.SetPassword(opUser, opPass)
	if rec := b.do(t, req{path: "/api/executions", cookie: c1}); rec.Code != 401 {
		t.Errorf("after a password change: %d, want 401", rec.Code)
	}
}
