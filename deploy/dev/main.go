// Command dev runs the whole stripeq stack on this machine: the api, the
// worker and the dashboard, against the Redis at REDIS_URL, or, when nothing
// answers there, against an embedded in-memory Redis (miniredis) whose data
// is lost on exit. It is what `go tool task dev` runs.
//
// It builds the three commands, starts them with their output prefixed by
// their name, waits until each answers, prints the URLs and credentials to
// open, and stops them all on Ctrl-C.
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
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}
