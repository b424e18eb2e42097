// Package startup is what each command does first in its run: build the
// logger from LOG_FORMAT and LOG_LEVEL, read the configuration and report
// its errors, log the settings that are safe only in some deployments, and
// open Redis (and, where the command needs Redis at once, ping it).
//
// It is for the run functions of api, dashboard and deploy/recover.
//
//	log, cfg, err := startup.Begin(stdout, getenv, loadConfig)
//	if err != nil {
//		return err
//	}
//	rdb := startup.Redis(log, cfg.Redis)
//	defer rdb.Close()
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package startup

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

// Config is a command's configuration, as Begin sees it.
type Config interface {
	// UnsafeSettings are the settings that are safe only in some
	// deployments (envconfig.Reader.Warnings), logged at start.
	UnsafeSettings() []string
}

// Begin builds the command's logger, writing to w and configured by
// LOG_FORMAT and LOG_LEVEL read through getenv, then reads the command's
// configuration with load. It returns an invalid LOG_FORMAT or LOG_LEVEL,
// or load's error (which names every bad setting at once, as envconfig
// does), as it is. Otherwise it logs each of the configuration's
// UnsafeSettings at warn level, as "unsafe setting: …", and returns the
// logger and the configuration.
func Begin[C Config](w io.Writer, getenv func(string) string, load func(getenv func(string) string) (C, error)) (*slog.Logger, C, error) {
	var cfg C
	log, err := logging.New(w, getenv)
	if err != nil {
		return nil, cfg, err
	}
	if cfg, err = load(getenv); err != nil {
		return nil, cfg, err
	}
	for _, s := range cfg.UnsafeSettings() {
		log.Warn("unsafe setting: " + s)
	}
	return log, cfg, nil
}

// Redis opens the command's Redis client for opt (redisconn.NewClient),
// with go-redis's own log lines, such as failed dials, sent to log: the
// process's go-redis logger is the command's to set. It does not connect;
// see Ping.
func Redis(log *slog.Logger, opt asynq.RedisConnOpt) redis.UniversalClient {
	redisconn.SetLogger(log)
	return redisconn.NewClient(opt)
}

// Ping checks that Redis answers, for a command that cannot start without
// it. Its error names REDIS_URL with rawURL, the variable's value,
// redacted (redisconn.Redacted), and wraps go-redis's error.
func Ping(ctx context.Context, rdb redis.UniversalClient, rawURL string) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%s %s: %w", redisconn.Variable, redisconn.Redacted(rawURL), err)
	}
	return nil
}
