// Command dashboard is the operators' console: asynqmon at /monitoring/,
// behind authentication, with stripeq's own Console page at /.
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
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}
