// Command api is stripeq's webhook receiver. It verifies each Stripe
// delivery and stores it in Redis as one asynq task, then answers Stripe at
// once; the worker does the work.
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
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
