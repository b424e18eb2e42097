// Command recover finds the Stripe events stripeq never stored and stores
// them, as the Console's "Recover missed events" page does, for scripts
// and cron:
//
//	go tool task recover -- -since 6h -dry-run
//	go tool task recover -- -since 2026-11-28T09:00:00Z -until 1h -account acct_123
//
// It reads the dashboard's settings (REDIS_URL, STRIPE_SECRET_KEY,
// STRIPE_API_BASE, STRIPE_EVENTS, QUEUE_NAME, QUEUE_SHARDS, DEDUPE_WINDOW,
// TASK_RETENTION, PAYLOAD_COMPRESSION), prints the counts, keeps the
// recovery in the Console's history, and exits 1 when it fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "recover:", err)
		os.Exit(1)
	}
}
