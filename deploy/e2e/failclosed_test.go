package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestUnsafeConfigurationsStopEachCommand starts each real binary with each
// setting that would weaken authentication or expose a credential, and
// expects it to exit non-zero within seconds, naming the variable and
// quoting no secret.
func TestUnsafeConfigurationsStopEachCommand(t *testing.T) {
	const (
		opPass  = "failclosed-operator-password"
		viewer  = "failclosed-viewer-password"
		liveKey = "pk_live_FAILCLOSED"
	)
	dashboard := func(more ...string) map[string]string {
		env := map[string]string{"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": opPass}
		for i := 0; i+1 < len(more); i += 2 {
			env[more[i]] = more[i+1]
		}
		return env
	}
	network := "0.0.0.0:0" // every interface; it refuses to start, so no port is bound
	tests := []struct {
		name, binary string
		env          map[string]string
		variable     string // named in the output
		why          string // also in the output
	}{
		{"webhook secret unset", "api", map[string]string{}, "STRIPE_WEBHOOK_SECRET", "is required"},
		{"webhook secret a lone comma", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": ","}, "STRIPE_WEBHOOK_SECRET", "entry 1 is empty"},
		{"webhook secret commas and spaces", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": " , "}, "STRIPE_WEBHOOK_SECRET", "is empty"},
		{"webhook secret with a stray comma", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret + ","}, "STRIPE_WEBHOOK_SECRET", "entry 2 is empty"},
		{"webhook secret not whsec_", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_test_FAILCLOSED"}, "STRIPE_WEBHOOK_SECRET", "not a Stripe signing secret"},
		{"webhook secret the prefix alone", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_"}, "STRIPE_WEBHOOK_SECRET", "not a Stripe signing secret"},
		{"webhook secret shorter than Stripe's", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, "STRIPE_WEBHOOK_SECRET", "shorter than the signing secrets Stripe issues"},
		{"webhook tolerance of a day", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "STRIPE_WEBHOOK_TOLERANCE": "24h"}, "STRIPE_WEBHOOK_TOLERANCE", "at most"},

		{"dashboard on the network without credentials", "dashboard", map[string]string{"DASHBOARD_ADDR": network}, "DASHBOARD_ADDR", "DASHBOARD_USER and DASHBOARD_PASSWORD are required"},
		{"dashboard blank user", "dashboard", dashboard("DASHBOARD_USER", "   "), "DASHBOARD_USER", "blank"},
		{"dashboard blank password on loopback", "dashboard", map[string]string{"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": " "}, "DASHBOARD_PASSWORD", "blank"},
		{"dashboard short password", "dashboard", dashboard("DASHBOARD_PASSWORD", "secret"), "DASHBOARD_PASSWORD", "at least 12 characters"},
		{"dashboard password is the user name", "dashboard", dashboard("DASHBOARD_USER", "operator-on-call", "DASHBOARD_PASSWORD", "operator-on-call"), "DASHBOARD_PASSWORD", "must differ from the user name"},
		{"dashboard viewer named as the operator", "dashboard", dashboard("DASHBOARD_VIEWER_USER", "ops", "DASHBOARD_VIEWER_PASSWORD", viewer), "DASHBOARD_VIEWER_USER", "must differ from DASHBOARD_USER"},
		{"dashboard viewer with the operator's password", "dashboard", dashboard("DASHBOARD_VIEWER_USER", "viewer", "DASHBOARD_VIEWER_PASSWORD", opPass), "DASHBOARD_VIEWER_PASSWORD", "must differ from DASHBOARD_PASSWORD"},
		{"dashboard blank viewer password", "dashboard", dashboard("DASHBOARD_VIEWER_USER", "viewer", "DASHBOARD_VIEWER_PASSWORD", "\t"), "DASHBOARD_VIEWER_PASSWORD", "blank"},
		{"dashboard sessions of a year", "dashboard", dashboard("DASHBOARD_SESSION_TTL", "8760h"), "DASHBOARD_SESSION_TTL", "at most"},
		{"dashboard trusting IPv4 as two halves", "dashboard", dashboard("TRUSTED_PROXIES", "0.0.0.0/1,128.0.0.0/1"), "TRUSTED_PROXIES", "however the list is split"},
		{"dashboard trusting IPv6 as two halves", "dashboard", dashboard("TRUSTED_PROXIES", "::/1,8000::/1"), "TRUSTED_PROXIES", "however the list is split"},

		{"worker with a publishable key", "worker", map[string]string{"STRIPE_SECRET_KEY": liveKey}, "STRIPE_SECRET_KEY", "secret (sk_…) or restricted (rk_…)"},
		{"worker sending its key over plain http", "worker", map[string]string{"STRIPE_SECRET_KEY": "sk_test_FAILCLOSED", "STRIPE_API_BASE": "http://stripe.example.com"}, "STRIPE_API_BASE", "in the clear"},

		{"destination secret not base64", "worker", map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": "whsec_FAILCLOSED-not-base64!"}, "DESTINATION_SECRET", "not base64"},
		{"destination secret without whsec_", "worker", map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": destSecret[len("whsec_"):]}, "DESTINATION_SECRET", "whsec_ followed by base64"},
		{"destination secret too short", "worker", map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": "whsec_RkFJTENMT1NFRA=="}, "DESTINATION_SECRET", "at least 16 random bytes"},
		{"destination without a secret", "worker", map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook"}, "DESTINATION_SECRET", "Standard Webhooks secret"},
		{"destination at the cloud metadata address", "worker", map[string]string{"DESTINATION_URL": "http://169.254.169.254/latest/meta-data/", "DESTINATION_SECRET": destSecret}, "DESTINATION_URL", "link-local or cloud metadata"},
		{"destination at AWS's IPv6 metadata address", "worker", map[string]string{"DESTINATION_URL": "http://[fd00:ec2::254]/latest/", "DESTINATION_SECRET": destSecret}, "DESTINATION_URL", "link-local or cloud metadata"},
		{"destination on a name of a link-local address", "worker", map[string]string{"DESTINATION_URL": "http://169.254.169.254.nip.invalid/", "DESTINATION_SECRET": destSecret, "DESTINATION_ALLOW_LINK_LOCAL": "yes"}, "DESTINATION_ALLOW_LINK_LOCAL", "true or false"},
	}
	db := redistest.New(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"REDIS_URL": db.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			p := proctest.Start(t, tt.binary, proctest.Binary(t, tt.binary), env)
			select {
			case <-p.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s is still running after 10 s", tt.binary)
			}
			if p.ExitErr() == nil {
				t.Errorf("exit status 0, want a failure")
			}
			out := p.Output()
			if !strings.Contains(out, tt.variable) || !strings.Contains(out, tt.why) {
				t.Errorf("output does not name %s with %q:\n%s", tt.variable, tt.why, out)
			}
			for _, secret := range []string{opPass, viewer, liveKey, "sk_test_FAILCLOSED", "FAILCLOSED-not-base64", destSecret[len("whsec_"):], "RkFJTENMT1NFRA"} {
				if strings.Contains(out, secret) {
					t.Errorf("output quotes a secret:\n%s", out)
				}
			}
		})
	}
}

// TestSettingsSafeOnlyBehindABoundaryAreWarned starts each binary with a
// setting that a sane deployment needs (a network address with TLS ended
// by an ingress, metrics scraped over the pod network, a Redis password
// on a private network) and expects it to run, with a warning in its log
// that names the variable and quotes no secret.
func TestSettingsSafeOnlyBehindABoundaryAreWarned(t *testing.T) {
	db := redistest.New(t)
	const redisPassword = "warned-redis-password"
	remoteRedis := "redis://:" + redisPassword + "@10.255.255.1:6379/0" // unroutable: /healthz answers without Redis
	tests := []struct {
		name, binary string
		env          map[string]string
		listen       string // given 0.0.0.0:0, or 127.0.0.1:0 when it is not variable
		ready        string // a URL path that answers once it runs
		variable     string
	}{
		{"dashboard on every interface", "dashboard", map[string]string{"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "warned-operator-password"}, "DASHBOARD_ADDR", "/healthz", "DASHBOARD_ADDR"},
		{"worker metrics on every interface", "worker", map[string]string{}, "METRICS_ADDR", "/healthz", "METRICS_ADDR"},
		{"api metrics on every interface", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "API_ADDR": "127.0.0.1:0"}, "METRICS_ADDR", "/metrics", "METRICS_ADDR"},
		{"api with a Redis password in the clear", "api", map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "REDIS_URL": remoteRedis, "METRICS_ADDR": "127.0.0.1:0"}, "API_ADDR", "/healthz", "REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"REDIS_URL": db.URL, tt.listen: "0.0.0.0:0"}
			if tt.variable != tt.listen {
				env[tt.listen] = "127.0.0.1:0"
			}
			for k, v := range tt.env {
				env[k] = v
			}
			p := proctest.Start(t, tt.binary, proctest.Binary(t, tt.binary), env)
			// The port it bound, from its log; reached over loopback.
			addr := map[string]func(testing.TB, *proctest.Proc) string{
				"DASHBOARD_ADDR": proctest.DashboardAddr, "METRICS_ADDR": proctest.MetricsAddr, "API_ADDR": proctest.APIAddr,
			}[tt.listen](t, p)
			_, port, _ := net.SplitHostPort(addr)
			proctest.WaitHTTP(t, p, "http://127.0.0.1:"+port+tt.ready, 30*time.Second)
			var warned bool
			for _, line := range strings.Split(p.Output(), "\n") {
				warned = warned || strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "unsafe setting: "+tt.variable)
			}
			if !warned {
				t.Errorf("no WARN line names %s:\n%s", tt.variable, p.Output())
			}
			if strings.Contains(p.Output(), redisPassword) {
				t.Errorf("the output quotes the Redis password:\n%s", p.Output())
			}
		})
	}
}
