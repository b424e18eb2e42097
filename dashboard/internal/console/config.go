package console

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// Config is every setting of the dashboard, read by LoadConfig.
type Config struct {
	// Addr is DASHBOARD_ADDR. Default "127.0.0.1:8081", loopback only.
	Addr string
	// Redis is REDIS_URL parsed. Default redis://127.0.0.1:6379/0.
	Redis    asynq.RedisConnOpt
	RedisURL string // redacted, for logs
	// Task holds QUEUE_NAME (default "stripe") and QUEUE_SHARDS (default 1):
	// the Console shows the shard queues "<Queue>-0" … as one. A recovery
	// stores events with TASK_RETENTION and PAYLOAD_COMPRESSION, as the
	// api does (taskenv.Storage).
	Task stripetask.Options
	// User and Password are DASHBOARD_USER and DASHBOARD_PASSWORD, the
	// operator, who may re-run, cancel and delete. When both are unset and
	// Addr is a loopback address, a one-time password is generated for the
	// user "admin" (Generated is then true).
	User, Password string
	Generated      bool
	// ViewerUser and ViewerPassword are DASHBOARD_VIEWER_USER and
	// DASHBOARD_VIEWER_PASSWORD, the viewer, who may only look. Optional.
	ViewerUser, ViewerPassword string
	// SessionTTL is DASHBOARD_SESSION_TTL, how long a login lasts. Default
	// 12h.
	SessionTTL time.Duration
	// PrometheusURL is PROMETHEUS_URL, a Prometheus that scrapes the
	// workers' asynq metrics; asynqmon then draws its metrics charts.
	// Default: unset, no charts (asynqmon's /api/metrics answers 500).
	PrometheusURL string
	// Warnings are settings that are safe only in some deployments, logged
	// at start (see envconfig.Reader.Warn).
	Warnings []string
	// TrustedProxies is TRUSTED_PROXIES, comma-separated IP addresses and
	// CIDRs of reverse proxies. Only when the direct peer is one of them is
	// the client address read from X-Forwarded-For (its right-most address
	// that is not a trusted proxy) or X-Real-IP. Default: empty, trust no
	// proxy; the client address is the peer's.
	TrustedProxies []netip.Prefix
	// Hosts is DASHBOARD_HOSTS, comma-separated host or host:port values
	// the Host header must match (DNS-rebinding protection); a host
	// without a port matches any port. Default: unset, which on a loopback
	// DASHBOARD_ADDR allows only localhost, 127.0.0.1 and [::1] with the
	// listening port (see run), and elsewhere allows any host.
	Hosts []string
	// Recovery holds the settings of recoveries (recoveries.go):
	// STRIPE_SECRET_KEY (unset: POST /api/recoveries answers 503),
	// STRIPE_API_BASE, STRIPE_EVENTS and DEDUPE_WINDOW.
	Recovery recovery.Config
	// Check holds the periodic check's settings (recovercheck.go):
	// RECOVER_INTERVAL, RECOVER_GRACE, RECOVER_AUTO, ALERT_WEBHOOK_URL.
	Check checkConfig
	// AuditRetention is AUDIT_RETENTION, how long the audit log keeps an
	// operator's action (audit.go). Default 2160h (90 days); at least 1h.
	AuditRetention time.Duration
}

// errNeedCredentials refuses to serve an unprotected console to a network.
var errNeedCredentials = errors.New("DASHBOARD_USER and DASHBOARD_PASSWORD are required when DASHBOARD_ADDR is not a loopback address")

func LoadConfig(getenv func(string) string) (Config, error) {
	env := envconfig.New(getenv)
	c := Config{
		Addr:     env.String("DASHBOARD_ADDR", "127.0.0.1:8081"),
		RedisURL: redisconn.Redacted(env.Lookup("REDIS_URL")),
		Task:     stripetask.ReadOptions(env),
		User:     env.Credential("DASHBOARD_USER"),
		Password: env.Credential("DASHBOARD_PASSWORD"),

		ViewerUser:     env.Credential("DASHBOARD_VIEWER_USER"),
		ViewerPassword: env.Credential("DASHBOARD_VIEWER_PASSWORD"),
		SessionTTL:     env.Duration("DASHBOARD_SESSION_TTL", 12*time.Hour),
		PrometheusURL:  env.Lookup("PROMETHEUS_URL"),
		AuditRetention: env.Duration("AUDIT_RETENTION", audit.DefaultRetention),
	}
	if c.AuditRetention < time.Hour {
		env.Fail("AUDIT_RETENTION", "must be at least 1h")
	}
	for _, p := range env.List("TRUSTED_PROXIES", nil) {
		prefix, err := parsePrefix(p)
		if err != nil {
			env.Fail("TRUSTED_PROXIES", fmt.Sprintf("%q is not an IP address or CIDR", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix)
	}
	for _, v6 := range []bool{false, true} {
		if share := addressShare(c.TrustedProxies, v6); share >= maxTrustedShare {
			env.Fail("TRUSTED_PROXIES", fmt.Sprintf("trusts %.4g%% of the %s addresses, at least 1/%d however the list is split: any client among them could choose its own address with X-Forwarded-For (name your proxies' own addresses or networks)",
				100*share, map[bool]string{false: "IPv4", true: "IPv6"}[v6], int(1/maxTrustedShare)))
		}
	}
	for _, h := range env.List("DASHBOARD_HOSTS", nil) {
		if !validHost(h) {
			env.Fail("DASHBOARD_HOSTS", fmt.Sprintf("%q is not a host or host:port", h))
			continue
		}
		c.Hosts = append(c.Hosts, strings.ToLower(h))
	}
	c.Redis = redisconn.ParseSetting(env, env.Lookup(redisconn.Variable))
	switch {
	case c.User != "" && c.Password == "":
		env.Fail("DASHBOARD_PASSWORD", "is required when DASHBOARD_USER is set")
	case c.User == "" && c.Password != "":
		env.Fail("DASHBOARD_USER", "is required when DASHBOARD_PASSWORD is set")
	case c.User == "" && c.Password == "":
		if !httpserver.IsLoopback(c.Addr) {
			env.Fail("DASHBOARD_ADDR", fmt.Sprintf("%q is not a loopback address: %v", c.Addr, errNeedCredentials))
			break
		}
		c.User, c.Password, c.Generated = "admin", rand.Text(), true
	}
	switch {
	case c.ViewerUser != "" && c.ViewerPassword == "":
		env.Fail("DASHBOARD_VIEWER_PASSWORD", "is required when DASHBOARD_VIEWER_USER is set")
	case c.ViewerUser == "" && c.ViewerPassword != "":
		env.Fail("DASHBOARD_VIEWER_USER", "is required when DASHBOARD_VIEWER_PASSWORD is set")
	case c.ViewerUser != "" && strings.EqualFold(c.ViewerUser, c.User):
		env.Fail("DASHBOARD_VIEWER_USER", "must differ from DASHBOARD_USER (a viewer named as the operator would share or shadow the operator's account)")
	case c.ViewerPassword != "" && c.ViewerPassword == c.Password:
		env.Fail("DASHBOARD_VIEWER_PASSWORD", "must differ from DASHBOARD_PASSWORD (the viewer would know the operator's password)")
	}
	checkPassword(env, "DASHBOARD_PASSWORD", c.User, c.Password)
	checkPassword(env, "DASHBOARD_VIEWER_PASSWORD", c.ViewerUser, c.ViewerPassword)
	if c.SessionTTL > maxSessionTTL {
		env.Fail("DASHBOARD_SESSION_TTL", fmt.Sprintf("must be at most %v, got %v", maxSessionTTL, c.SessionTTL))
	}
	if u, err := url.Parse(c.PrometheusURL); c.PrometheusURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		env.Fail("PROMETHEUS_URL", "must be an http:// or https:// URL")
	}
	if !httpserver.IsLoopback(c.Addr) {
		env.Warn("DASHBOARD_ADDR", fmt.Sprintf("%q is a network address served over plain HTTP: passwords and session cookies cross the network in the clear unless TLS ends in front of the dashboard (an ingress or a proxy that sets X-Forwarded-Proto: https)", c.Addr))
	}
	c.Recovery = recovery.ReadConfig(env, "the dashboard")
	c.Check = readCheckConfig(env, c.Recovery)
	taskenv.Storage(env, &c.Task)
	c.Warnings = env.Warnings()
	return c, env.Err()
}

// minPasswordLength is the shortest DASHBOARD_PASSWORD and
// DASHBOARD_VIEWER_PASSWORD accepted.
const minPasswordLength = 12

// maxSessionTTL is the longest DASHBOARD_SESSION_TTL accepted: a stolen
// session cookie must not outlive a month.
const maxSessionTTL = 30 * 24 * time.Hour

// checkPassword fails closed on a password an attacker would try first:
// shorter than minPasswordLength, or the account's name.
func checkPassword(env *envconfig.Reader, name, user, password string) {
	switch {
	case password == "":
	case utf8.RuneCountInString(password) < minPasswordLength:
		env.Fail(name, fmt.Sprintf("must be at least %d characters long", minPasswordLength))
	case strings.EqualFold(password, user):
		env.Fail(name, "must differ from the user name")
	}
}

// maxTrustedShare is the share of the IPv4 or of the IPv6 addresses
// TRUSTED_PROXIES may not reach, however its networks are split: a /4's
// worth. The private networks together (10/8, 172.16/12, 192.168/16,
// 100.64/10) are under 1/180 of IPv4, and fc00::/7 is 1/128 of IPv6;
// 2000::/3, every global IPv6 address, is 1/8.
const maxTrustedShare = 1.0 / 16

// addressShare is the share of the IPv4 (v6 false) or IPv6 addresses that
// prefixes cover together, each address counted once.
func addressShare(prefixes []netip.Prefix, v6 bool) float64 {
	var family []netip.Prefix
	for _, p := range prefixes {
		if p.Addr().Is6() == v6 {
			family = append(family, p)
		}
	}
	// Two networks are either disjoint or one holds the other: count only
	// those no larger one holds.
	slices.SortFunc(family, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	var kept []netip.Prefix
	share := 0.0
	for _, p := range family {
		if !slices.ContainsFunc(kept, func(k netip.Prefix) bool { return k.Overlaps(p) }) {
			kept = append(kept, p)
			share += math.Ldexp(1, -p.Bits())
		}
	}
	return share
}

// parsePrefix reads an IP address (as a one-address prefix) or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validHost reports whether s is a host name, IP address or [IPv6], with
// an optional :port.
func validHost(s string) bool {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" || strings.ContainsAny(host, "/\\@ ?#") {
		return false
	}
	if strings.Contains(host, ":") {
		_, err := netip.ParseAddr(host)
		return err == nil && strings.HasPrefix(s, "[")
	}
	for _, r := range host {
		if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// loopbackHosts is the default of DASHBOARD_HOSTS on a loopback address:
// the loopback names with the port the dashboard listens on.
func loopbackHosts(port string) []string {
	return []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
}

// UnsafeSettings returns c.Warnings, for startup.Begin.
func (c Config) UnsafeSettings() []string { return c.Warnings }
