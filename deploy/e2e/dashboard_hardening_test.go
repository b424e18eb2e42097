package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// startDashboard runs the dashboard binary with env and waits until it
// answers.
func startDashboard(t *testing.T, addr string, env map[string]string) *proctest.Proc {
	t.Helper()
	vars := map[string]string{"DASHBOARD_ADDR": addr}
	for k, v := range env {
		vars[k] = v
	}
	p := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), vars)
	proctest.WaitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	return p
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
// names the user and the client.
func TestDashboardHardening(t *testing.T) {
	db := redistest.New(t)
	bin := proctest.Binary(t, "dashboard")
	t.Run("bad settings stop it at start", func(t *testing.T) {
		p := proctest.Start(t, "dashboard", bin, map[string]string{"REDIS_URL": db.URL, "DASHBOARD_ADDR": proctest.FreeAddr(t),
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

	addr := proctest.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	p := startDashboard(t, addr, map[string]string{"REDIS_URL": db.URL,
		"DASHBOARD_USER": "op", "DASHBOARD_PASSWORD": "operator-password",
		"DASHBOARD_VIEWER_USER": "viewer", "DASHBOARD_VIEWER_PASSWORD": "viewer-password",
		"TRUSTED_PROXIES": "127.0.0.1"})
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
// alone, then while 64 loops of both users ask the dashboard for the
// issue's deep page (since=7d&page=2) and a wide filter. It logs what it
// saw, with the ratio of the loaded p99 to the idle one, and fails if any
// delivery is not acknowledged (before the query bound, 1 in 40 got a 503)
// or a dashboard request fails otherwise than 429. Latency is reported,
// not asserted: it depends on what else the machine runs.
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
	apiAddr, dashAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	startAPI(t, "api", apiAddr, db.URL, nil)
	users := [][2]string{{"op", "operator-password"}, {"viewer", "viewer-password"}}
	startDashboard(t, dashAddr, map[string]string{"REDIS_URL": db.URL,
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
		t.Logf("%-22s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms (%d deliveries)", phase,
			ms(pct(l, .5)), ms(pct(l, .99)), ms(l[len(l)-1]), len(l))
	}
	idle := deliver("idle", 150)
	report("webhooks, idle", idle)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, throttled, other atomic.Int64
	dc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	queries := []string{"since=7d&page=2", "livemode=true", "since=7d&page=200"}
	for i := range 64 {
		wg.Go(func() {
			u := users[i%2]
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+dashAddr+"/api/executions?"+queries[n%len(queries)], nil)
				req.SetBasicAuth(u[0], u[1])
				resp, err := dc.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					throttled.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	loadStart := time.Now()
	loaded := deliver("load", 150)
	close(stop)
	wg.Wait()
	report("webhooks, dashboard load", loaded)
	secs := time.Since(loadStart).Seconds()
	t.Logf("dashboard during the load: %d answered 200 (%.1f/s), %d throttled 429, %d other", ok.Load(), float64(ok.Load())/secs, throttled.Load(), other.Load())
	if other.Load() > 0 {
		t.Errorf("%d dashboard requests failed otherwise than 429", other.Load())
	}
	t.Logf("webhook p99 under dashboard load / idle: %.1f×", float64(pct(loaded, .99))/float64(pct(idle, .99)))
	if throttled.Load() == 0 {
		t.Error("64 loops of reads were never throttled: the per-user read limit did not act")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
