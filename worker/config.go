package main

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// config is every setting of the worker, read by loadConfig.
type config struct {
	// Redis is REDIS_URL parsed. Default redis://127.0.0.1:6379/0.
	Redis    asynq.RedisConnOpt
	RedisURL string // redacted, for logs
	// Queue is QUEUE_NAME, the asynq queue to process, or with Shards > 1
	// the base name of the shard queues. Default "stripe".
	Queue string
	// Shards is QUEUE_SHARDS, the number of shard queues the api spreads
	// events over ("<Queue>-0" …); the worker processes every one with
	// equal weight. Default 1: the one queue Queue.
	Shards int
	// Concurrency is WORKER_CONCURRENCY, the handlers this process runs at
	// once. Default 5.
	Concurrency int
	// GlobalConcurrency is GLOBAL_CONCURRENCY, the handlers all worker
	// processes together run at once, over every shard. Default 5; 0 turns
	// the limit off.
	GlobalConcurrency int
	// ShutdownTimeout is WORKER_SHUTDOWN_TIMEOUT, how long a stopping worker
	// lets running handlers finish before returning their tasks to Redis.
	// Default 30s.
	ShutdownTimeout time.Duration
	// HandlerTimeout is HANDLER_TIMEOUT, the longest one handler may run; a
	// killed worker's global slot frees itself after it. Default 60s.
	HandlerTimeout time.Duration
	// RetryBase is RETRY_BASE_DELAY, the delay before the first retry; each
	// later retry doubles it. Default 30s.
	RetryBase time.Duration
	// StripeKey is STRIPE_SECRET_KEY. When set, handlers retrieve each event
	// from Stripe and use that copy. Default: unset, use the payload.
	StripeKey string
	// StripeAPIBase is STRIPE_API_BASE, another Stripe API backend such as
	// stripe-mock. Default: Stripe's API.
	StripeAPIBase string
	// Mailer is SMTP_URL and NOTIFY_FROM parsed; nil when SMTP_URL is unset.
	Mailer *mailer
	// AlertWebhookURL is ALERT_WEBHOOK_URL, where archived tasks are
	// reported as a Slack-compatible {"text": …} POST. Default: unset.
	AlertWebhookURL string
	// MetricsAddr is METRICS_ADDR, where the worker serves Prometheus
	// metrics at /metrics and a liveness check at /healthz. Default: unset,
	// no HTTP server.
	MetricsAddr string
	// DashboardURL is DASHBOARD_URL, the dashboard's address for links in
	// alerts. Default http://127.0.0.1:8081.
	DashboardURL string
	// Warnings are settings that are safe only in some deployments, logged
	// at start (see envconfig.Reader.Warn).
	Warnings []string
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{
		RedisURL:          redisconn.Redacted(env.Lookup("REDIS_URL")),
		Queue:             env.String("QUEUE_NAME", stripetask.DefaultQueue),
		Shards:            env.IntRange("QUEUE_SHARDS", 1, 1, stripetask.MaxShards),
		Concurrency:       env.Int("WORKER_CONCURRENCY", 5, 1),
		GlobalConcurrency: env.Int("GLOBAL_CONCURRENCY", 5, 0),
		ShutdownTimeout:   env.Duration("WORKER_SHUTDOWN_TIMEOUT", 30*time.Second),
		HandlerTimeout:    env.Duration("HANDLER_TIMEOUT", 60*time.Second),
		RetryBase:         env.Duration("RETRY_BASE_DELAY", 30*time.Second),
		StripeKey:         env.Lookup("STRIPE_SECRET_KEY"),
		StripeAPIBase:     env.Lookup("STRIPE_API_BASE"),
		AlertWebhookURL:   env.Lookup("ALERT_WEBHOOK_URL"),
		DashboardURL:      env.String("DASHBOARD_URL", "http://127.0.0.1:8081"),
		MetricsAddr:       env.Lookup("METRICS_ADDR"),
	}
	var err error
	if c.Redis, err = redisconn.Parse(env.Lookup("REDIS_URL")); err != nil {
		env.Fail("REDIS_URL", err.Error())
	}
	if smtpURL := env.Lookup("SMTP_URL"); smtpURL != "" {
		if c.Mailer, err = parseMailer(smtpURL, env.String("NOTIFY_FROM", "stripeq <billing@localhost>")); err != nil {
			env.Fail("SMTP_URL", err.Error())
		}
	}
	urls := map[string]*url.URL{}
	for name, v := range map[string]string{"STRIPE_API_BASE": c.StripeAPIBase, "ALERT_WEBHOOK_URL": c.AlertWebhookURL, "DASHBOARD_URL": c.DashboardURL} {
		u, err := url.Parse(v)
		if v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			env.Fail(name, "must be an http:// or https:// URL")
			continue
		}
		urls[name] = u
	}
	checkExposure(env, c, urls)
	c.Warnings = env.Warnings()
	return c, env.Err()
}

// stripeKeyPrefixes are the secret and restricted keys' prefixes, in test
// and live mode.
var stripeKeyPrefixes = []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"}

// checkExposure fails closed on settings that would send a credential in
// the clear or use the wrong kind of key, and warns on those that are safe
// only behind a network boundary. urls holds the valid URL settings.
func checkExposure(env *envconfig.Reader, c config, urls map[string]*url.URL) {
	if c.StripeKey != "" && !slices.ContainsFunc(stripeKeyPrefixes, func(p string) bool {
		return strings.HasPrefix(c.StripeKey, p) && len(c.StripeKey) > len(p)
	}) {
		env.Fail("STRIPE_SECRET_KEY", "must be a secret (sk_…) or restricted (rk_…) Stripe API key")
	}
	if u := urls["STRIPE_API_BASE"]; u != nil && u.Scheme == "http" && !httpserver.IsLoopbackHost(u.Hostname()) {
		env.Fail("STRIPE_API_BASE", "is plain http:// to a host that is not loopback: the worker would send STRIPE_SECRET_KEY in the clear; use https://")
	}
	if u := urls["ALERT_WEBHOOK_URL"]; u != nil && u.Scheme == "http" && !httpserver.IsLoopbackHost(u.Hostname()) {
		env.Warn("ALERT_WEBHOOK_URL", "is plain http:// to a host that is not loopback: the URL (a credential for most chat services) and each alert travel in the clear")
	}
	if c.MetricsAddr != "" && !httpserver.IsLoopback(c.MetricsAddr) {
		env.Warn("METRICS_ADDR", "is not a loopback address: /metrics answers without authentication to whoever reaches it; keep it on a network only Prometheus reaches")
	}
}
