package main

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/metrics"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// DefaultMetricsAddr is where the api serves its metrics when METRICS_ADDR
// is unset: loopback, on a port apart from the api's 8080, the dashboard's
// 8081 and the worker's 8082 of deploy/.
const DefaultMetricsAddr = "127.0.0.1:8083"

// config is every setting of the api, read from the environment in one
// place by loadConfig.
type config struct {
	// Addr is API_ADDR, where the receiver listens. Default ":8080".
	Addr string
	// MetricsAddr is METRICS_ADDR, where GET /metrics is served, apart
	// from the public webhook listener. Default "127.0.0.1:8083": loopback
	// only. When it is left unset and that port is taken, the api warns
	// and serves no metrics; an address that is set must be free.
	MetricsAddr    string
	metricsAddrSet bool
	// Redis is REDIS_URL parsed. Default redis://127.0.0.1:6379/0.
	Redis    asynq.RedisConnOpt
	RedisURL string // redacted, for logs
	// Secrets is STRIPE_WEBHOOK_SECRET split on commas: every secret that
	// may sign a delivery (several while one is rotated). Required.
	Secrets []string
	// Tolerance is STRIPE_WEBHOOK_TOLERANCE, how old a signature's timestamp
	// may be. Default 300s, as Stripe's libraries.
	Tolerance time.Duration
	// Events is STRIPE_EVENTS, the permitted event types; "*" permits all.
	// Default: every type the worker handles.
	Events []string
	// Task holds QUEUE_NAME (default "stripe"), QUEUE_SHARDS (default 1:
	// the one queue QUEUE_NAME), TASK_RETENTION (default 72h) and
	// PAYLOAD_COMPRESSION ("none", the default, or "zstd").
	Task stripetask.Options
	// DedupeWindow is DEDUPE_WINDOW, how long after an event's creation a
	// redelivery of it is answered "duplicate" even once its task is gone
	// (pkg/dedupe). Default 168h (7 days).
	DedupeWindow time.Duration
	// WaitReplicas is REDIS_WAIT_REPLICAS: before answering 200, confirm
	// each stored event on this many replicas (Redis WAIT), so that a
	// failover cannot lose an acknowledged event. Default 0: off.
	WaitReplicas int
	// WaitTimeout is REDIS_WAIT_TIMEOUT, how long to wait for them before
	// answering 503. Default 1s.
	WaitTimeout time.Duration
	// Warnings are settings that are safe only in some deployments, logged
	// at start (see envconfig.Reader.Warn).
	Warnings []string
}

// UnsafeSettings returns c.Warnings, for startup.Begin.
func (c config) UnsafeSettings() []string { return c.Warnings }

// loadConfig reads every setting of the api through getenv, and reports
// every missing or invalid one at once, by name.
func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{
		Addr:         env.String("API_ADDR", ":8080"),
		MetricsAddr:  env.String("METRICS_ADDR", DefaultMetricsAddr),
		RedisURL:     redisconn.Redacted(env.Lookup("REDIS_URL")),
		Tolerance:    env.Duration("STRIPE_WEBHOOK_TOLERANCE", 300*time.Second),
		Events:       taskenv.Events(env),
		Task:         stripetask.ReadOptions(env),
		DedupeWindow: env.Duration("DEDUPE_WINDOW", dedupe.DefaultWindow),
		WaitReplicas: env.Int("REDIS_WAIT_REPLICAS", 0, 0),
		WaitTimeout:  env.Duration("REDIS_WAIT_TIMEOUT", time.Second),
	}
	c.metricsAddrSet = env.Lookup("METRICS_ADDR") != ""
	metrics.CheckAddr(env, c.MetricsAddr)
	taskenv.Storage(env, &c.Task)
	c.Redis = redisconn.ParseSetting(env, env.Lookup(redisconn.Variable))
	if _, cluster := c.Redis.(asynq.RedisClusterClientOpt); cluster && c.WaitReplicas > 0 {
		env.Fail("REDIS_WAIT_REPLICAS", "is not supported on Redis Cluster (WAIT would reach another node than the write)")
	}
	c.Secrets = signingSecrets(env)
	if c.Tolerance > maxTolerance {
		env.Fail("STRIPE_WEBHOOK_TOLERANCE", fmt.Sprintf("must be at most %v: a longer one lets a captured delivery be replayed for that long (Stripe's default is 5m0s), got %v", maxTolerance, c.Tolerance))
	}
	c.Warnings = env.Warnings()
	return c, env.Err()
}

// maxTolerance is the largest STRIPE_WEBHOOK_TOLERANCE the api accepts.
// Stripe signs every delivery attempt anew, so the tolerance only has to
// cover clock skew and transit; a larger one only widens the replay window.
const maxTolerance = time.Hour

// minSecretLength is the fewest characters after "whsec_" a signing
// secret may have: Stripe issues 32 (its Dashboard) or 64 hex digits (the
// Stripe CLI), so a shorter one is cut or made up, and easy to guess.
const minSecretLength = 32

// signingSecrets reads STRIPE_WEBHOOK_SECRET: one or more Stripe signing
// secrets, comma-separated while one is rotated. It fails closed: a value
// that yields no secret, an empty entry (",", a stray comma), an entry
// that is not "whsec_" followed by something, or one shorter than Stripe
// issues (minSecretLength) is an error, because a verifier with a wrong
// list of secrets is either open or refuses Stripe.
// Errors name the entry by position, never by value.
func signingSecrets(env *envconfig.Reader) []string {
	const name = "STRIPE_WEBHOOK_SECRET"
	raw := env.Required("STRIPE_WEBHOOK_SECRET", "the whsec_… signing secret of your Stripe webhook endpoint (comma-separated during rotation)")
	if raw == "" {
		return nil
	}
	var secrets []string
	for i, s := range strings.Split(raw, ",") {
		s = strings.TrimSpace(s)
		switch rest, ok := strings.CutPrefix(s, "whsec_"); {
		case s == "":
			env.Fail(name, fmt.Sprintf("entry %d is empty (a stray comma?)", i+1))
		case !ok || rest == "" || strings.ContainsFunc(rest, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			env.Fail(name, fmt.Sprintf("entry %d is not a Stripe signing secret (whsec_ followed by the secret)", i+1))
		case len(rest) < minSecretLength:
			env.Fail(name, fmt.Sprintf("entry %d is shorter than the signing secrets Stripe issues (whsec_ and at least %d characters): copy the whole secret", i+1, minSecretLength))
		default:
			secrets = append(secrets, s)
		}
	}
	return secrets
}

// permits reports whether an event type is permitted by c.Events.
func (c config) permits() func(string) bool { return taskenv.Permits(c.Events) }
