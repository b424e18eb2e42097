// Command trigger sends realistic, correctly signed Stripe events to a
// running stripeq receiver, like `stripe trigger` but offline: the events
// come from pkg/stripetest's fixtures, one customer's story rendered at each
// API version a Stripe account sends today (2023-10-16, the default;
// 2025-03-31.basil; 2026-08-26.dahlia, a new account's default). Choose the
// version of the webhook endpoint you mimic with -api-version.
//
//	go tool task trigger -- invoice.payment_failed
//	go tool task trigger -- -api-version 2026-08-26.dahlia invoice.paid
//	go tool task trigger -- -twice -livemode charge.dispute.created
//	go tool task trigger -- scenario -shuffle
//	go tool task trigger -- scenario -api-version 2026-08-26.dahlia -shuffle
//	go tool task trigger -- list
//
// scenario plays the story's events the customer record depends on, waits
// until the worker has handled each one the api took (an event whose type
// the api ignores, not being in STRIPE_EVENTS, is not waited for), and
// prints the record.
//
// It signs with STRIPE_WEBHOOK_SECRET (default: the development secret that
// `go tool task dev` uses) and posts to the api at API_ADDR.
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
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trigger:", err)
		os.Exit(1)
	}
}
