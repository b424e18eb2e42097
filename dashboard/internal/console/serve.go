package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/monitoring"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/logging"
)

// maintainEvery is how often the dashboard prunes and reconciles the
// execution index.
const maintainEvery = 5 * time.Minute

// Serve serves the dashboard of cfg over rdb on l until ctx ends: the
// Console, asynqmon behind it, the execution index's upkeep and the
// periodic recovery check. The one-time password of a generated operator
// is printed to stdout, never logged.
func Serve(ctx context.Context, log *slog.Logger, cfg Config, rdb redis.UniversalClient, l net.Listener, stdout io.Writer) error {
	mon, monRO := monitoring.Asynqmon(cfg.Redis, cfg.PrometheusURL)
	defer mon.Close()
	defer monRO.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)

	if len(cfg.Hosts) == 0 && httpserver.IsLoopback(cfg.Addr) {
		_, port, _ := net.SplitHostPort(l.Addr().String())
		cfg.Hosts = loopbackHosts(port)
	}
	s := newServer(log, cfg, rdb, mon, monRO, insp, asynq.NewClientFromRedisClient(rdb))
	url := "http://" + l.Addr().String() + "/"
	log.Info("dashboard listening", "url", url, "monitoring", url+"monitoring/", "redis", cfg.RedisURL,
		slog.String(logging.KeyQueue, cfg.Task.Queue), "queue_shards", cfg.Task.Shards, "viewer", cfg.ViewerUser != "",
		"trusted_proxies", len(cfg.TrustedProxies), "hosts", strings.Join(cfg.Hosts, ","))
	if cfg.Generated {
		// Printed, never logged: it is a credential, shown once to the
		// person who started the process on this machine.
		fmt.Fprintf(stdout, "\n  Dashboard: %s\n  User: %s  One-time password: %s\n  (set DASHBOARD_USER and DASHBOARD_PASSWORD to choose your own)\n\n", url, cfg.User, cfg.Password)
	}
	go maintain(ctx, log, s.index, s.failures, insp)
	startCheck(log, cfg, rdb, s.recoveries)
	err := httpserver.Serve(ctx, httpserver.New(s.handler()), l)
	s.recoveries.stop()
	return err
}

// maintain keeps the execution index true to asynq and the failure
// store: at start and then every maintainEvery it indexes tasks and kept
// failures the index lacks, and drops entries whose task is gone from
// both.
func maintain(ctx context.Context, log *slog.Logger, ix *execindex.Shards, store *failures.Store, tasks execindex.TaskGetter) {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		start := time.Now()
		for _, q := range ix.Queues() {
			// Failures past FAILED_RETENTION leave the failure store's list.
			if _, err := store.Prune(ctx, q); err != nil && ctx.Err() == nil {
				log.Warn("prune failure store", logging.Err(err))
			}
		}
		added, err := ix.Reconcile(ctx, tasks)
		if err != nil && ctx.Err() == nil {
			log.Warn("reconcile execution index", logging.Err(err))
		}
		dropped, err := ix.Prune(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("prune execution index", logging.Err(err))
		}
		if added > 0 || dropped > 0 {
			log.Info("execution index maintained", "added", added, "dropped", dropped, "took", time.Since(start).Round(time.Millisecond).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
