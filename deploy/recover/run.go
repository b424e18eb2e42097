package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/startup"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// startedBy is the StartedBy of this command's records in the Console.
const startedBy = "recover command"

// config is every setting of the recover command, read from the
// environment in one place by loadConfig: the dashboard's settings for
// recovery.
type config struct {
	task     stripetask.Options // QUEUE_NAME, QUEUE_SHARDS, TASK_RETENTION, PAYLOAD_COMPRESSION
	recovery recovery.Config    // STRIPE_SECRET_KEY (required), STRIPE_API_BASE, STRIPE_EVENTS, DEDUPE_WINDOW
	redis    asynq.RedisConnOpt // REDIS_URL parsed
	redisURL string             // REDIS_URL as set
	warnings []string
}

// UnsafeSettings returns the settings safe only in some deployments, for
// startup.Begin.
func (c config) UnsafeSettings() []string { return c.warnings }

// loadConfig reads the command's settings through getenv, and reports
// every missing or invalid one at once, by name.
func loadConfig(getenv func(string) string) (config, error) {
	env := envconfig.New(getenv)
	c := config{task: stripetask.ReadOptions(env), redisURL: env.Lookup("REDIS_URL")}
	taskenv.Storage(env, &c.task)
	c.recovery = recovery.ReadConfig(env, "the recover command")
	if c.recovery.StripeSecretKey == "" {
		env.Fail("STRIPE_SECRET_KEY", "is required: a restricted key (rk_…) with Read on Events and, on a Connect platform, Connect → Accounts")
	}
	c.redis = redisconn.ParseSetting(env, c.redisURL)
	c.warnings = env.Warnings()
	return c, env.Err()
}

// run lists Stripe's events of the window the flags give and stores those
// stripeq never got (see usage); with -h it prints the usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "", "the window's start: a duration before now (6h, 2d) or an RFC 3339 time (required)")
	until := fs.String("until", "", "the window's end, in the same forms (default: now)")
	dryRun := fs.Bool("dry-run", false, "count the missing events without storing them")
	account := fs.String("account", "", "only this connected account's events (acct_…); default: the platform's and every connected account's")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: recover -since 6h [-until 1h] [-dry-run] [-account acct_…]\n\nLists Stripe's events of the window and stores those stripeq never got.\nSettings come from the environment, as the dashboard reads them.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see -h)", fs.Args())
	}

	log, cfg, err := startup.Begin(stderr, getenv, loadConfig)
	if err != nil {
		return err
	}

	now := time.Now()
	var req recovery.Request
	if *since == "" {
		return errors.New("-since is required: a duration (6h, 2d) or an RFC 3339 time")
	}
	if req.Since, err = recovery.ParseTime("-since", *since, now); err != nil {
		return err
	}
	if *until != "" {
		if req.Until, err = recovery.ParseTime("-until", *until, now); err != nil {
			return err
		}
	}
	req.DryRun, req.Account = *dryRun, *account

	rdb := startup.Redis(log, cfg.redis)
	defer rdb.Close()
	rec := recovery.New(cfg.recovery, cfg.task, rdb, asynq.NewInspectorFromRedisClient(rdb), asynq.NewClientFromRedisClient(rdb),
		func(err error, wait time.Duration) {
			log.Warn("Stripe refused a page; retrying", "wait", wait.String(), logging.Err(err))
		})
	if req, err = rec.Check(req); err != nil {
		return err
	}
	if err := startup.Ping(ctx, rdb, cfg.redisURL); err != nil {
		return err
	}

	records := &recovery.Records{RDB: rdb}
	r := recovery.Record{ID: recovery.NewID(), State: recovery.StateRunning, StartedBy: startedBy, StartedAt: now, UpdatedAt: now,
		Since: req.Since.UTC(), Until: req.Until.UTC(), Account: req.Account, DryRun: req.DryRun}
	req.ID = r.ID
	save := func(p recovery.Progress) {
		r.SetProgress(p)
		r.UpdatedAt = time.Now()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := records.Save(sctx, r); err != nil {
			log.Warn("cannot save the recovery's record", "recovery_id", r.ID, logging.Err(err))
		}
	}
	save(recovery.Progress{})
	mode := ""
	if req.DryRun {
		mode = " (dry run: nothing stored)"
	}
	scope := "the platform and every connected account"
	if req.Account != "" {
		scope = req.Account
	}
	fmt.Fprintf(stdout, "recovery %s: %s to %s, %s%s\n", r.ID, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), scope, mode)

	p, runErr := rec.Run(ctx, req, save)
	r.State, r.FinishedAt = recovery.StateDone, time.Now().UTC()
	if runErr != nil {
		r.State, r.Error = recovery.StateFailed, logging.RedactError(runErr)
	}
	r.KeepEvents(p)
	save(p)

	fmt.Fprintf(stdout, "listed %d, missing %d, enqueued %d", p.Listed, p.Missing, p.Enqueued)
	if p.Skipped > 0 {
		fmt.Fprintf(stdout, ", skipped %d (aged past DEDUPE_WINDOW)", p.Skipped)
	}
	fmt.Fprintln(stdout)
	if p.Missing > 0 {
		fmt.Fprintf(stdout, "missing by type: %s\nmissing by account: %s\n", p.ByType(), p.ByAccount())
	}
	if runErr != nil {
		return fmt.Errorf("recovery %s failed: %w", r.ID, runErr)
	}
	return nil
}
