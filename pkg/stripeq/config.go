package stripeq

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/metrics"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripeapi"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/destinations"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Config is every setting of a [Worker]. Its zero value is a worker of
// the defaults below on a local Redis; [ConfigFromEnv] reads it from the
// variables the worker command reads.
type Config struct {
	// RedisURL is REDIS_URL, in one of the forms pkg/redisconn reads
	// (redis://, rediss://, Sentinel or Cluster). If empty,
	// redis://127.0.0.1:6379/0.
	RedisURL string
	// Queue is QUEUE_NAME, the asynq queue to process, or with Shards > 1
	// the base name of the shard queues. If empty, "stripe".
	Queue string
	// Shards is QUEUE_SHARDS, the number of shard queues the api spreads
	// events over ("<Queue>-0" …); the worker processes every one with
	// equal weight. If zero or one, the one queue Queue.
	Shards int
	// Concurrency is WORKER_CONCURRENCY, the handlers this process runs at
	// once. If zero, 5.
	Concurrency int
	// GlobalConcurrency is GLOBAL_CONCURRENCY, the handlers all worker
	// processes together run at once, over every shard. If zero, 5;
	// [NoLimit] turns the limit off (GLOBAL_CONCURRENCY=0). Any other
	// negative value is an error.
	GlobalConcurrency int
	// ShutdownTimeout is WORKER_SHUTDOWN_TIMEOUT, how long a stopping worker
	// lets running handlers finish before returning their tasks to Redis.
	// If zero, 30s.
	ShutdownTimeout time.Duration
	// HandlerTimeout is HANDLER_TIMEOUT, the longest one handler may run; a
	// killed worker's claim of [Once] frees itself after it (its global
	// slots within 6 s). If zero, 60s.
	HandlerTimeout time.Duration
	// RetryBaseDelay is RETRY_BASE_DELAY, the delay before the first retry;
	// each later retry doubles it. If zero, 30s.
	RetryBaseDelay time.Duration
	// StripeSecretKey is STRIPE_SECRET_KEY, a secret (sk_…) or restricted
	// (rk_…) key. When set, the worker retrieves each event that has a
	// handler from Stripe and hands the handler that copy, and
	// [Worker.Stripe] is a client for handlers. Default: unset, the payload
	// the api verified.
	StripeSecretKey string
	// StripeAPIBase is STRIPE_API_BASE, another Stripe API backend such as
	// stripe-mock; plain http:// only to loopback. Default: Stripe's API.
	StripeAPIBase string
	// AlertWebhookURL is ALERT_WEBHOOK_URL, where archived tasks are
	// reported as a Slack-compatible {"text": …} POST. Default: unset, an
	// error log line only.
	AlertWebhookURL string
	// AlertInterval is ALERT_INTERVAL: after the first failure of an event
	// type, which alerts at once, ALERT_WEBHOOK_URL gets at most one
	// summary per interval, across every worker process. If zero, 5m.
	AlertInterval time.Duration
	// FailedRetention is FAILED_RETENTION, how long a failure is kept in
	// the failure store (pkg/failures) when nobody resolves it. Default:
	// unset, kept until it is re-run or discarded.
	FailedRetention time.Duration
	// TaskRetention is TASK_RETENTION, as the api stores tasks with it:
	// how long a completed execution's attempt history is kept with it.
	// If zero, 72h.
	TaskRetention time.Duration
	// MetricsAddr is METRICS_ADDR, where the worker serves Prometheus
	// metrics at /metrics and a liveness check at /healthz. Default: unset,
	// no HTTP server.
	MetricsAddr string
	// DashboardURL is DASHBOARD_URL, the dashboard's address for links in
	// alerts. If empty, http://127.0.0.1:8081.
	DashboardURL string
	// Destinations are the HTTP endpoints of your own apps that every
	// event is forwarded to, besides the handlers (DESTINATION_URL and its
	// settings, and DESTINATIONS_FILE). Default: none.
	Destinations []Destination
	// AllowLinkLocalDestinations is DESTINATION_ALLOW_LINK_LOCAL: when
	// true, a destination may be a link-local or cloud metadata address
	// (169.254.0.0/16, fe80::/10, fd00:ec2::254 …). Default: false, such a
	// destination stops the worker at start and is refused when dialled.
	AllowLinkLocalDestinations bool
	// Logger receives every log line. If nil, slog.Default().
	Logger *slog.Logger

	// fromEnv is set by ConfigFromEnv: NewWorker names the settings of
	// such a Config by their variables, in its errors and warnings.
	fromEnv bool
}

// NoLimit is the value of [Config.GlobalConcurrency] that turns the global
// limit off: each process runs Concurrency handlers at once, whatever the
// others run.
const NoLimit = -1

// configFields names, for a Config built in code, each setting by its Go
// field rather than by the variable ConfigFromEnv reads it from, in the
// errors of NewWorker.
var configFields = map[string]string{
	"REDIS_URL": "Config.RedisURL", "QUEUE_NAME": "Config.Queue", "QUEUE_SHARDS": "Config.Shards",
	"WORKER_CONCURRENCY": "Config.Concurrency", "GLOBAL_CONCURRENCY": "Config.GlobalConcurrency",
	"WORKER_SHUTDOWN_TIMEOUT": "Config.ShutdownTimeout", "HANDLER_TIMEOUT": "Config.HandlerTimeout",
	"RETRY_BASE_DELAY": "Config.RetryBaseDelay", "STRIPE_SECRET_KEY": "Config.StripeSecretKey",
	"STRIPE_API_BASE": "Config.StripeAPIBase", "ALERT_WEBHOOK_URL": "Config.AlertWebhookURL",
	"ALERT_INTERVAL": "Config.AlertInterval", "FAILED_RETENTION": "Config.FailedRetention",
	"TASK_RETENTION": "Config.TaskRetention", "METRICS_ADDR": "Config.MetricsAddr", "DASHBOARD_URL": "Config.DashboardURL",
}

// ConfigFromEnv reads a Config through getenv (os.Getenv) from the
// variables the worker command reads: REDIS_URL, QUEUE_NAME, QUEUE_SHARDS,
// WORKER_CONCURRENCY, GLOBAL_CONCURRENCY, WORKER_SHUTDOWN_TIMEOUT,
// HANDLER_TIMEOUT, RETRY_BASE_DELAY, STRIPE_SECRET_KEY, STRIPE_API_BASE,
// ALERT_WEBHOOK_URL, ALERT_INTERVAL, FAILED_RETENTION, TASK_RETENTION,
// METRICS_ADDR, DASHBOARD_URL, the destination settings (DESTINATION_URL,
// DESTINATION_SECRET, DESTINATION_EVENTS, DESTINATION_TIMEOUT,
// DESTINATION_CONCURRENCY, DESTINATION_RATE, DESTINATION_ORDER,
// DESTINATIONS_FILE, DESTINATION_ALLOW_LINK_LOCAL), with the defaults of
// Config, and LOG_FORMAT and LOG_LEVEL, into a Logger that writes to
// standard output as the worker command's does. It reports every invalid
// or unsafe value at once, each by its variable's name, in one error
// wrapping envconfig.ErrInvalid; no message quotes a secret.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c, _, err := loadConfig(getenv)
	return c, err
}

// loadConfig is ConfigFromEnv, with the warnings of settings safe only
// behind a network boundary.
func loadConfig(getenv func(string) string) (Config, []string, error) {
	env := envconfig.New(getenv)
	queues := stripetask.ReadOptions(env)
	c := Config{
		Logger:            logging.Read(env, os.Stdout),
		RedisURL:          env.Lookup("REDIS_URL"),
		Queue:             queues.Queue,
		Shards:            queues.Shards,
		Concurrency:       env.Int("WORKER_CONCURRENCY", 5, 1),
		GlobalConcurrency: env.Int("GLOBAL_CONCURRENCY", 5, 0),
		ShutdownTimeout:   env.Duration("WORKER_SHUTDOWN_TIMEOUT", 30*time.Second),
		HandlerTimeout:    env.Duration("HANDLER_TIMEOUT", 60*time.Second),
		RetryBaseDelay:    env.Duration("RETRY_BASE_DELAY", 30*time.Second),
		StripeSecretKey:   env.Lookup("STRIPE_SECRET_KEY"),
		StripeAPIBase:     env.Lookup("STRIPE_API_BASE"),
		AlertWebhookURL:   env.Lookup("ALERT_WEBHOOK_URL"),
		AlertInterval:     env.Duration("ALERT_INTERVAL", 5*time.Minute),
		FailedRetention:   env.Duration("FAILED_RETENTION", 0),
		TaskRetention:     env.Duration("TASK_RETENTION", stripetask.DefaultRetention), // as the api, which reads it with pkg/stripetask/taskenv
		DashboardURL:      env.String("DASHBOARD_URL", "http://127.0.0.1:8081"),
		MetricsAddr:       env.Lookup("METRICS_ADDR"),
		Destinations:      readDestinations(env),
	}
	c.AllowLinkLocalDestinations = env.Bool("DESTINATION_ALLOW_LINK_LOCAL", false)
	if c.GlobalConcurrency == 0 {
		c.GlobalConcurrency = NoLimit
	}
	c.check(env, destinationVariable)
	c.fromEnv = true
	return c, env.Warnings(), env.Err()
}

// defaults is the Config of an empty environment: each default is written
// once, in loadConfig.
var defaults = sync.OnceValue(func() Config {
	c, _, _ := loadConfig(func(string) string { return "" })
	c.Logger = nil // NewWorker's default is slog.Default()
	return c
})

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	d := defaults()
	c.Queue = cmp.Or(c.Queue, d.Queue)
	c.Shards = max(c.Shards, d.Shards)
	c.Concurrency = cmp.Or(c.Concurrency, d.Concurrency)
	c.GlobalConcurrency = cmp.Or(c.GlobalConcurrency, d.GlobalConcurrency)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, d.HandlerTimeout)
	c.RetryBaseDelay = cmp.Or(c.RetryBaseDelay, d.RetryBaseDelay)
	c.DashboardURL = cmp.Or(c.DashboardURL, d.DashboardURL)
	c.AlertInterval = cmp.Or(c.AlertInterval, d.AlertInterval)
	c.TaskRetention = cmp.Or(c.TaskRetention, d.TaskRetention)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// check records on env the settings of c that are invalid or unsafe, and
// warns of those safe only behind a boundary, each named as env names it
// (a variable, or a Go field: envconfig.Named), a destination's setting by
// destination. It returns RedisURL parsed.
func (c Config) check(env *envconfig.Reader, destination destinations.Namer) asynq.RedisConnOpt {
	redisOpt := redisconn.ParseSetting(env, c.RedisURL)
	if c.Shards > stripetask.MaxShards {
		env.Fail("QUEUE_SHARDS", fmt.Sprintf("must be at most %d", stripetask.MaxShards))
	}
	if c.Concurrency < 0 {
		env.Fail("WORKER_CONCURRENCY", "must be at least 1")
	}
	if c.GlobalConcurrency < 0 && c.GlobalConcurrency != NoLimit {
		env.Fail("GLOBAL_CONCURRENCY", "must be at least 1, or stripeq.NoLimit (GLOBAL_CONCURRENCY=0) for none")
	}
	urls := map[string]*url.URL{}
	for _, s := range []struct{ name, v string }{
		{"STRIPE_API_BASE", c.StripeAPIBase}, {"ALERT_WEBHOOK_URL", c.AlertWebhookURL}, {"DASHBOARD_URL", c.DashboardURL},
	} {
		u, err := url.Parse(s.v)
		if s.v != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			env.Fail(s.name, "must be an http:// or https:// URL")
			continue
		}
		urls[s.name] = u
	}
	checkExposure(env, c, urls)
	ds := make([]destinations.Config, len(c.Destinations))
	for i, d := range c.Destinations {
		ds[i] = d.config()
	}
	destinations.Check(env, ds, c.AllowLinkLocalDestinations, destination)
	return redisOpt
}

// checkExposure fails closed on settings that would send a credential in
// the clear or use the wrong kind of key (pkg/stripeapi's rules, shared
// with the dashboard), and warns on those that are safe only behind a
// network boundary. urls holds the valid URL settings.
func checkExposure(env *envconfig.Reader, c Config, urls map[string]*url.URL) {
	stripeapi.CheckKey(env, c.StripeSecretKey)
	if urls["STRIPE_API_BASE"] != nil {
		stripeapi.CheckBase(env, c.StripeAPIBase, "the worker")
	}
	if u := urls["ALERT_WEBHOOK_URL"]; u != nil && u.Scheme == "http" && !httpserver.IsLoopbackHost(u.Hostname()) {
		env.Warn("ALERT_WEBHOOK_URL", "is plain http:// to a host that is not loopback: the URL (a credential for most chat services) and each alert travel in the clear")
	}
	if c.MetricsAddr != "" {
		metrics.CheckAddr(env, c.MetricsAddr)
	}
}
