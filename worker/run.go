package main

import (
	"context"
	"errors"
	"io"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin"
	"github.com/stripeq/stripeq/pkg/usage"
)

// usageText is what -h and --help print.
const usageText = `
Usage: worker

worker processes the Stripe events the api stored in Redis with the built-in
handlers of pkg/stripeq/builtin: records, notifications, retries, alerts, and
forwarding to destinations. It runs until SIGINT or SIGTERM, then lets running
handlers finish for WORKER_SHUTDOWN_TIMEOUT.

It takes no arguments. Every setting is an environment variable, read at start
(REDIS_URL, WORKER_CONCURRENCY, STRIPE_SECRET_KEY, SMTP_URL, DESTINATION_URL, …):
deploy/README.md, "Configuration". What it does: worker/README.md.
`

// run reads the configuration, builds the worker with the built-in
// handlers, and processes tasks until ctx ends (see stripeq.Worker.Run).
// With -h or --help in args it prints its usage and returns
// usage.ErrHelp, starting nothing; any other argument is an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if err := usage.Check("worker", args, usageText, stdout); err != nil {
		return err
	}
	log, err := logging.New(stdout, getenv)
	if err != nil {
		return err
	}
	cfg, cfgErr := stripeq.ConfigFromEnv(getenv)
	opts, optsErr := builtin.OptionsFromEnv(getenv)
	if err := errors.Join(cfgErr, optsErr); err != nil {
		return err
	}
	cfg.Logger = log
	stripeq.SetRedisLogger(log) // go-redis's logger is the process's: the command's to set
	w, err := stripeq.NewWorker(cfg)
	if err != nil {
		return err
	}
	builtin.Register(w, opts)
	log.Info("built-in handlers registered", "types", len(builtin.Types()), "email", opts.Mailer != nil)
	return w.Run(ctx)
}
