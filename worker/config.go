package main

import (
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// config is every setting of the worker, read by loadConfig.
type config struct {
	// Redis is REDIS_URL parsed. Default redis://127.0.0.1:6379/0.
	Redis    asynq.RedisConnOpt
	RedisURL string // redacted, for logs
	// Queue is QUEUE_NAME, the asynq queue to process. Default "stripe".
	Queue string
	// Concurrency is WORKER_CONCURRENCY, the handlers this process runs at
	// once. Default 5.
	Concurrency int
	// ShutdownTimeout is WORKER_SHUTDOWN_TIMEOUT, how long a stopping worker
	// lets running handlers finish before returning their tasks to Redis.
	// Default 30s.
	ShutdownTimeout time.Duration
	// RetryBase is RETRY_BASE_DELAY, the delay before the first retry; each
	// later retry doubles it. Default 30s.
	RetryBase time.Duration
}

func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{
		RedisURL:        redisconn.Redacted(env.Lookup("REDIS_URL")),
		Queue:           env.String("QUEUE_NAME", stripetask.DefaultQueue),
		Concurrency:     env.Int("WORKER_CONCURRENCY", 5, 1),
		ShutdownTimeout: env.Duration("WORKER_SHUTDOWN_TIMEOUT", 30*time.Second),
		RetryBase:       env.Duration("RETRY_BASE_DELAY", 30*time.Second),
	}
	var err error
	if c.Redis, err = redisconn.Parse(env.Lookup("REDIS_URL")); err != nil {
		env.Fail("REDIS_URL", err.Error())
	}
	return c, env.Err()
}
