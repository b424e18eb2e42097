// Command worker processes the Stripe events the api stored in Redis: one
// asynq task per event, retried with exponential backoff, and keeps the
// customer records in Redis. It is pkg/stripeq's Worker with the handlers
// of pkg/stripeq/builtin; a program of your own can add its handlers to
// them (README: "Your own handlers").
//
// See README.md in this folder for what it does, and deploy/README.md
// (Configuration) for its settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stripeq/stripeq/pkg/usage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil && !errors.Is(err, usage.ErrHelp) {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
