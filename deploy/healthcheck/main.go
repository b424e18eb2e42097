// Command healthcheck is the container image's health probe. The image is
// distroless, with no shell and no curl, so Docker's HEALTHCHECK runs this
// instead: it GETs one URL and exits 0 when the answer is 2xx, 1 otherwise.
//
//	healthcheck http://127.0.0.1:8080/healthz
//	healthcheck -timeout 2s http://127.0.0.1:8081/healthz
//
// It follows no redirects, reads no environment and prints one line on
// failure (to stderr, which Docker keeps in the container's health log).
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
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}
