// Command api is stripeq's webhook receiver. It verifies each Stripe
// delivery and stores it in Redis as one asynq task, then answers Stripe at
// once; the worker does the work.
//
// See README.md in this folder for what it does, and deploy/README.md
// (Configuration) for its settings.
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
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
