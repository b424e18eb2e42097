// Command dashboard is the operators' console: asynqmon at /monitoring/,
// behind authentication, with stripeq's own Console page at /.
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

// usageText is what -h and --help print.
const usageText = `
Usage: dashboard

dashboard is the operators' console: the Console at / and asynqmon at
/monitoring/, behind sign-in (DASHBOARD_ADDR, default 127.0.0.1:8081).

It takes no arguments. Every setting is an environment variable, read at start
(REDIS_URL, DASHBOARD_ADDR, DASHBOARD_USER, DASHBOARD_PASSWORD, …):
deploy/README.md, "Configuration". What it does: dashboard/README.md.
`

func main() {
	if err := usage.Check("dashboard", os.Args[1:], usageText, os.Stdout); err != nil {
		if !errors.Is(err, usage.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dashboard:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}
