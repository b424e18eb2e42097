package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/stripeq/stripeq/dashboard/internal/console"
	"github.com/stripeq/stripeq/pkg/startup"
)

// run serves the dashboard until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log, cfg, err := startup.Begin(stdout, getenv, console.LoadConfig)
	if err != nil {
		return err
	}
	rdb := startup.Redis(log, cfg.Redis)
	defer rdb.Close()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("DASHBOARD_ADDR %s: %w", cfg.Addr, err)
	}
	return console.Serve(ctx, log, cfg, rdb, l, stdout)
}
