// Command trigger sends realistic, correctly signed Stripe events to a
// running stripeq receiver, like `stripe trigger` but offline: the events
// come from pkg/stripetest's fixtures, built from stripe-mock v0.180.0.
//
//	go tool task trigger -- invoice.payment_failed
//	go tool task trigger -- -twice -livemode charge.dispute.created
//	go tool task trigger -- scenario -shuffle
//	go tool task trigger -- list
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
