package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/startup"
	"github.com/stripeq/stripeq/pkg/usage"
)

// usageText is what -h and --help print.
const usageText = `
Usage: api

api is the receiver of Stripe's webhooks: it verifies each delivery to
POST /webhooks/stripe (API_ADDR, default :8080) and stores it in Redis as one
task, answering Stripe at once; the worker does the work. It serves until
SIGINT or SIGTERM, then lets in-flight requests finish.

It takes no arguments. Every setting is an environment variable, read at start
(STRIPE_WEBHOOK_SECRET is required; REDIS_URL, API_ADDR, STRIPE_EVENTS, …):
deploy/README.md, "Configuration". What it does: api/README.md.
`

// run starts the receiver and serves until ctx ends, then lets in-flight
// requests finish. With -h or --help in args it prints its usage and
// returns usage.ErrHelp, starting nothing; any other argument is an error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if err := usage.Check("api", args, usageText, stdout); err != nil {
		return err
	}
	log, cfg, err := startup.Begin(stdout, getenv, loadConfig)
	if err != nil {
		return err
	}
	rdb := startup.Redis(log, cfg.Redis)
	defer rdb.Close()
	srv := newServer(log, cfg, rdb)
	index := execindex.NewWriter(rdb, execindex.NewShards(rdb, cfg.Task), log)
	srv.index = index
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("API_ADDR %s: %w", cfg.Addr, err)
	}
	ml, err := net.Listen("tcp", cfg.MetricsAddr)
	switch {
	case err == nil:
		go func() {
			if err := srv.metrics.serve(ctx, ml); err != nil {
				log.Error("metrics server stopped", logging.Err(err))
			}
		}()
		log.Info("metrics at http://" + ml.Addr().String() + "/metrics")
	case cfg.metricsAddrSet:
		l.Close()
		return fmt.Errorf("METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	default:
		log.Warn("metrics not served: the default METRICS_ADDR is taken; set METRICS_ADDR to a free address",
			"metrics_addr", cfg.MetricsAddr, logging.Err(err))
	}
	log.Info("api listening",
		"addr", l.Addr().String(), "webhook", "POST /webhooks/stripe", "redis", cfg.RedisURL,
		"queue", cfg.Task.Queue, "queue_shards", cfg.Task.Shards, "retention", cfg.Task.Retention.String(), "dedupe_window", cfg.DedupeWindow.String(), "payload_compression", cmp.Or(cfg.Task.Compression, "none"), "secrets", len(cfg.Secrets), "wait_replicas", cfg.WaitReplicas,
		slog.Int("permitted_types", len(cfg.Events)))
	hs := httpserver.New(srv.handler())
	hs.ConnContext = framingConnContext
	err = httpserver.Serve(ctx, hs, framingListener{l})
	// Every request has finished: write the index entries still queued.
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ferr := index.Close(flushCtx); ferr != nil {
		log.Warn("Console index entries left for the dashboard's reconcile", logging.Err(ferr))
	}
	log.Info("api stopped")
	return err
}
