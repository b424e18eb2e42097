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
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// startedBy is the StartedBy of this command's records in the Console.
const startedBy = "recover command"

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

	log, err := logging.New(stderr, getenv)
	if err != nil {
		return err
	}
	env := envconfig.New(getenv)
	task := stripetask.ReadOptions(env)
	taskenv.Storage(env, &task)
	rc := recovery.ReadConfig(env, "the recover command")
	if rc.StripeSecretKey == "" {
		env.Fail("STRIPE_SECRET_KEY", "is required: a restricted key (rk_…) with Read on Events and, on a Connect platform, Connect → Accounts")
	}
	opt := redisconn.ParseSetting(env, env.Lookup(redisconn.Variable))
	if err := env.Err(); err != nil {
		return err
	}
	for _, w := range env.Warnings() {
		log.Warn("unsafe setting: " + w)
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

	redisconn.SetLogger(log)
	rdb := redisconn.NewClient(opt)
	defer rdb.Close()
	rec := recovery.New(rc, task, rdb, asynq.NewInspectorFromRedisClient(rdb), asynq.NewClientFromRedisClient(rdb),
		func(err error, wait time.Duration) {
			log.Warn("Stripe refused a page; retrying", "wait", wait.String(), logging.Err(err))
		})
	if req, err = rec.Check(req); err != nil {
		return err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("REDIS_URL %s: %w", redisconn.Redacted(env.Lookup("REDIS_URL")), err)
	}

	records := &recovery.Records{RDB: rdb}
	r := recovery.Record{ID: recovery.NewID(), State: recovery.StateRunning, StartedBy: startedBy, StartedAt: now, UpdatedAt: now,
		Since: req.Since.UTC(), Until: req.Until.UTC(), Account: req.Account, DryRun: req.DryRun}
	save := func(p recovery.Progress) {
		r.Progress, r.Listed, r.Missing, r.Enqueued, r.UpdatedAt = p, p.Listed, p.Missing, p.Enqueued, time.Now()
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
