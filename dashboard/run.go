package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/hibiken/asynqmon"

	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

// run serves the dashboard until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log, err := logging.New(stdout, getenv)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	redisconn.SetLogger(log)
	rdb := redisconn.NewClient(cfg.Redis)
	defer rdb.Close()
	mon := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: cfg.Redis})
	defer mon.Close()

	s := &server{log: log, cfg: cfg, monitoring: mon, ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("DASHBOARD_ADDR %s: %w", cfg.Addr, err)
	}
	url := "http://" + l.Addr().String() + "/"
	log.Info("dashboard listening", "url", url, "monitoring", url+"monitoring/", "redis", cfg.RedisURL)
	if cfg.Generated {
		// Printed, never logged: it is a credential, shown once to the
		// person who started the process on this machine.
		fmt.Fprintf(stdout, "\n  Dashboard: %s\n  User: %s  One-time password: %s\n  (set DASHBOARD_USER and DASHBOARD_PASSWORD to choose your own)\n\n", url, cfg.User, cfg.Password)
	}
	err = httpserver.Serve(ctx, httpserver.New(s.handler()), l)
	log.Info("dashboard stopped")
	return err
}
