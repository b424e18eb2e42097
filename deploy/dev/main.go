// Command dev runs the whole stripeq stack on this machine: the api, the
// worker and the dashboard, against the Redis at REDIS_URL, or, when nothing
// answers there, against an embedded in-memory Redis (miniredis) whose data
// is lost on exit. It is what `go tool task dev` runs.
//
// It builds the three commands, starts them with their output prefixed by
// their name, waits until each answers, prints the URLs and credentials to
// open, and stops them all on Ctrl-C.
//
// With -demo (`go tool task demo`) it also runs a local SMTP server and
// plays a customer's lifecycle through the stack, with real failures: the
// SMTP server stops for a while, so notifications are retried, and one
// signed event's object does not decode, so it is archived.
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
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}
