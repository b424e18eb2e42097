package main

import (
	"context"
	"errors"
	"io"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin"
)

// run reads the configuration, builds the worker with the built-in
// handlers, and processes tasks until ctx ends (see stripeq.Worker.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
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
