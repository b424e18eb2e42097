// Package stripeapi holds what every stripeq command that calls Stripe's
// API shares: the checks of STRIPE_SECRET_KEY and STRIPE_API_BASE, which
// fail closed, and the stripe-go backend they configure. The worker
// retrieves events with it; the dashboard's recoveries list them.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package stripeapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
)

// keyPrefixes are the secret and restricted keys' prefixes, in test and
// live mode.
var keyPrefixes = []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"}

// ValidKey reports whether key looks like a secret (sk_…) or restricted
// (rk_…) Stripe API key, in test or live mode.
func ValidKey(key string) bool {
	return slices.ContainsFunc(keyPrefixes, func(p string) bool {
		return strings.HasPrefix(key, p) && len(key) > len(p)
	})
}

// CheckKey records on env an error for STRIPE_SECRET_KEY when key is set
// but is not a secret or restricted key (a publishable key, a webhook
// secret). The message never quotes the key.
func CheckKey(env *envconfig.Reader, key string) {
	if key != "" && !ValidKey(key) {
		env.Fail("STRIPE_SECRET_KEY", "must be a secret (sk_…) or restricted (rk_…) Stripe API key")
	}
}

// CheckBase records on env an error for STRIPE_API_BASE when base is set
// and is not an http:// or https:// URL, or is plain http:// to a host
// that is not loopback: command (e.g. "the worker") would send
// STRIPE_SECRET_KEY in the clear. It returns base parsed, nil when unset
// or invalid.
func CheckBase(env *envconfig.Reader, base, command string) *url.URL {
	if base == "" {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		env.Fail("STRIPE_API_BASE", "must be an http:// or https:// URL")
		return nil
	}
	if u.Scheme == "http" && !httpserver.IsLoopbackHost(u.Hostname()) {
		env.Fail("STRIPE_API_BASE", "is plain http:// to a host that is not loopback: "+command+" would send STRIPE_SECRET_KEY in the clear; use https://")
		return nil
	}
	return u
}

// NewBackend returns a stripe-go API backend at base (Stripe's API when
// empty) with stripe-go's own retries off, so that a 429 comes back to the
// caller, which knows how to wait. It keeps up to conns idle connections
// (at least 2) and gives each request timeout.
func NewBackend(base string, conns int, timeout time.Duration) stripe.Backend {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(conns, 2)
	transport.MaxIdleConns = max(transport.MaxIdleConns, conns)
	cfg := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(0),
		HTTPClient:        &http.Client{Timeout: timeout, Transport: transport},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	return stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
}
