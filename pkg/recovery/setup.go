package recovery

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/stripeapi"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// Config is what a [Recoverer] is built from: a Stripe key to list
// events, and the api's settings, to store what it finds as the api
// would. The dashboard and the recover command read it with [ReadConfig].
type Config struct {
	// StripeSecretKey is STRIPE_SECRET_KEY: a restricted key (rk_…) with
	// read access to Events and, for Connect platforms, Accounts (or a
	// secret key). Unset: no recoveries.
	StripeSecretKey string
	// StripeAPIBase is STRIPE_API_BASE, another Stripe API backend;
	// plain http:// only to loopback. Default: Stripe's API.
	StripeAPIBase string
	// Events is STRIPE_EVENTS, as the api reads it: the types listed.
	Events []string
	// DedupeWindow is DEDUPE_WINDOW, as the api reads it: how far back a
	// recovery may reach. Default 168h (7 days).
	DedupeWindow time.Duration
}

// ReadConfig reads STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_EVENTS and
// DEDUPE_WINDOW from env, recording bad values on it (pkg/stripeapi's
// checks, which fail closed); command names the reader in messages ("the
// dashboard"). TASK_RETENTION and PAYLOAD_COMPRESSION are read into the
// command's stripetask.Options with taskenv.Storage.
func ReadConfig(env *envconfig.Reader, command string) Config {
	c := Config{
		StripeSecretKey: env.Lookup("STRIPE_SECRET_KEY"),
		StripeAPIBase:   env.Lookup("STRIPE_API_BASE"),
		Events:          taskenv.Events(env),
		DedupeWindow:    env.Duration("DEDUPE_WINDOW", dedupe.DefaultWindow),
	}
	stripeapi.CheckKey(env, c.StripeSecretKey)
	stripeapi.CheckBase(env, c.StripeAPIBase, command)
	return c
}

// New returns the Recoverer of cfg over rdb, storing with the task
// options task (QUEUE_NAME, QUEUE_SHARDS, TASK_RETENTION,
// PAYLOAD_COMPRESSION), through tasks and queue (an *asynq.Inspector and
// an *asynq.Client over rdb). onRetry, when set, is told of each page
// Stripe refused and that is retried. It returns nil when cfg has no
// StripeSecretKey.
func New(cfg Config, task stripetask.Options, rdb redis.UniversalClient, tasks TaskGetter, queue Enqueuer, onRetry func(err error, wait time.Duration)) *Recoverer {
	if cfg.StripeSecretKey == "" {
		return nil
	}
	return &Recoverer{
		Lister: &Lister{
			Backend: stripeapi.NewBackend(cfg.StripeAPIBase, 2, 30*time.Second),
			Key:     cfg.StripeSecretKey,
			OnRetry: onRetry,
		},
		Store: &Store{
			RDB: rdb, Tasks: tasks, Queue: queue, Task: task,
			Marks: dedupe.New(rdb, cfg.DedupeWindow),
			Index: execindex.NewShards(rdb, task),
		},
		Events:       cfg.Events,
		DedupeWindow: cfg.DedupeWindow,
	}
}
