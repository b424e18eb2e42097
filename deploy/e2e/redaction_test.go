package e2e

import (
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestLogsHoldNoSecrets runs the three commands with every secret set,
// drives them through deliveries (good and forged), Stripe API errors, an
// archived task whose alert cannot be posted, failing emails, sign-ins
// (good and bad) and a session, then reads all their output and checks
// that no secret and no session token is in it. It then starts them again
// on a Sentinel URL carrying a password and a sentinel_password, and
// checks their start-up and connection errors too.
func TestLogsHoldNoSecrets(t *testing.T) {
	const (
		webhookSecret = "whsec_REDACTION_webhook_secret_42_0123456789"
		stripeKey     = "sk_test_REDACTION_api_key_42"
		smtpPassword  = "REDACTION-smtp-password-42"
		opPassword    = "REDACTION-operator-password-42"
		viewPassword  = "REDACTION-viewer-password-42"
		redisPassword = "REDACTION-redis-password-42"
		alertToken    = "REDACTION-alert-token-42"
		alertKey      = "REDACTION-alert-key-42"
		proxyPassword = "REDACTION-stripe-proxy-password-42"
		sentinelPass  = "REDACTION-sentinel-password-42"
		masterPass    = "REDACTION-sentinel-master-password-42"
		destKey       = "REDACTION-destination-key-42-32b"
		destPassword  = "REDACTION-destination-password-42"
		destToken     = "REDACTION-destination-token-42"
	)
	destSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(destKey))
	// A destination that answers 500 to every delivery: each is logged as
	// a failure and retried.
	destination := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
	}))
	t.Cleanup(destination.Close)
	srv := redistest.Start(t, "--requirepass", redisPassword)
	redisURL := "redis://:" + redisPassword + "@" + srv.Addr + "/0"
	// A Stripe API that answers 500 to everything: every task fails and
	// logs its error. The invoice is unknown to it (404), so its task is
	// archived at once and alerted.
	stripeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/evt_redact_invoice_paid") {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such event"}}`))
			return
		}
		w.WriteHeader(500)
		w.Write([]byte(`{"error":{"type":"api_error","message":"boom"}}`))
	}))
	t.Cleanup(stripeAPI.Close)

	env := map[string]string{
		"REDIS_URL": redisURL, "STRIPE_WEBHOOK_SECRET": "whsec_old_REDACTION_1_0123456789abcdef0123," + webhookSecret,
		"STRIPE_SECRET_KEY": stripeKey, "STRIPE_API_BASE": strings.Replace(stripeAPI.URL, "://", "://proxy:"+proxyPassword+"@", 1),
		// Nothing listens there: the alert's POST fails and is logged.
		"ALERT_WEBHOOK_URL": "http://" + proctest.FreeAddr(t) + "/services/T0/B0/" + alertToken + "?key=" + alertKey,
		"SMTP_URL":          "smtp://mailer:" + smtpPassword + "@" + proctest.FreeAddr(t), "RETRY_BASE_DELAY": "1s",
		"API_ADDR": "127.0.0.1:0", "DASHBOARD_ADDR": "127.0.0.1:0", "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": opPassword,
		"DASHBOARD_VIEWER_USER": "viewer", "DASHBOARD_VIEWER_PASSWORD": viewPassword, "LOG_LEVEL": "debug",
		"DESTINATION_URL":    strings.Replace(destination.URL, "://", "://app:"+destPassword+"@", 1) + "/hooks/stripe?token=" + destToken,
		"DESTINATION_SECRET": destSecret,
	}
	api := proctest.Start(t, "api", proctest.Binary(t, "api"), env)
	worker := proctest.Start(t, "worker", proctest.Binary(t, "worker"), env)
	dash := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), env)
	apiAddr, dashAddr := proctest.APIAddr(t, api), proctest.DashboardAddr(t, dash)

	// Deliveries: valid, forged, replayed.
	s := &stack{}
	for i, typ := range []string{"customer.created", "invoice.paid", "charge.dispute.created"} {
		body := stripetest.Event(typ, "evt_redact_"+strings.ReplaceAll(typ, ".", "_"), time.Now())
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/webhooks/stripe", strings.NewReader(string(body)))
		req.Header.Set("Stripe-Signature", stripetest.Sign(body, time.Now(), webhookSecret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("delivery %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		s.deliverTo(t, "http://"+apiAddr+"/webhooks/stripe", body) // signed with the test secret: 400
	}

	// Sign-ins: a bad one, a good one, and a session used for a while.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, pass := range []string{"wrong-password", opPassword} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+dashAddr+"/login",
			strings.NewReader(url.Values{"user": {"ops"}, "password": {pass}, "next": {"/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+dashAddr)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	u, _ := url.Parse("http://" + dashAddr + "/")
	var token string
	for _, c := range jar.Cookies(u) {
		token = c.Value
	}
	if len(token) < 20 {
		t.Fatal("no session cookie after signing in")
	}
	for _, path := range []string{"/", "/api/executions", "/monitoring/api/queues", "/executions/evt_redact_invoice_paid"} {
		resp, err := browser.Get("http://" + dashAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(t, "http://"+dashAddr+"/api/executions", "viewer", viewPassword)

	// Let the worker fail and retry a few times (Stripe 500, SMTP down), and
	// archive the invoice.
	poll.Until(t, 20*time.Second, "the archived task's failed alert", func() bool {
		return strings.Contains(worker.Output(), "alert webhook failed")
	})
	poll.Until(t, 20*time.Second, "a failed delivery to the destination", func() bool {
		return strings.Contains(worker.Output(), "delivery failed; will retry")
	})
	time.Sleep(2 * time.Second)
	for _, p := range []*proctest.Proc{api, worker, dash} {
		p.Stop(40 * time.Second)
	}

	// Again on Sentinel, with every password a Sentinel URL carries. No
	// sentinel listens: each command logs its settings at start, then its
	// connection errors.
	env["REDIS_URL"] = "redis-sentinel://:" + masterPass + "@" + proctest.FreeAddr(t) + "," + proctest.FreeAddr(t) +
		"/0?master=mymaster&sentinel_password=" + sentinelPass
	env["API_ADDR"], env["DASHBOARD_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"
	procs := []*proctest.Proc{api, worker, dash}
	for _, name := range []string{"api", "worker", "dashboard"} {
		procs = append(procs, proctest.Start(t, name+" on sentinel", proctest.Binary(t, name), env))
	}
	poll.Until(t, 20*time.Second, "the api's start on Sentinel", func() bool { return strings.Contains(procs[3].Output(), "api listening") })
	time.Sleep(3 * time.Second)
	for _, p := range procs[3:] {
		p.Stop(40 * time.Second)
	}

	secrets := map[string]string{
		"webhook secret": webhookSecret, "old webhook secret": "whsec_old_REDACTION_1_0123456789abcdef0123", "Stripe API key": stripeKey,
		"SMTP password": smtpPassword, "operator password": opPassword, "viewer password": viewPassword,
		"Redis password": redisPassword, "session token": token,
		"alert webhook token": alertToken, "alert webhook key": alertKey, "Stripe API proxy password": proxyPassword,
		"sentinel_password": sentinelPass, "Sentinel master password": masterPass,
		"destination secret": destSecret, "destination secret's base64": destSecret[len("whsec_"):], "destination key": destKey,
		"destination URL password": destPassword, "destination URL token": destToken,
	}
	lines := 0
	for _, p := range procs {
		out := p.Output()
		lines += strings.Count(out, "\n")
		for name, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("the %s's output contains the %s", p.Name, name)
			}
		}
	}
	if lines < 30 {
		t.Errorf("only %d log lines: the run did not exercise the logs", lines)
	}
	if !strings.Contains(procs[3].Output(), "sentinel_password=xxxxx") {
		t.Errorf("the api on Sentinel did not log its redacted REDIS_URL:\n%s", procs[3].Output())
	}
	t.Logf("%d log lines of api, worker and dashboard checked for %d secrets", lines, len(secrets))
}
