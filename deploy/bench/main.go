// Command bench measures stripeq against plain baselines on this machine,
// the harness of GitHub issue 8. It is what `go tool task bench` runs.
//
// It builds the api and worker binaries, starts its own redis-server on a
// free loopback port, and runs each target with its baseline interleaved
// (A B A B …, several rounds), printing every round and then one line per
// target: the median figure, the baseline's median and their ratio.
//
//	ingest        the api vs a plain receiver (Gin + webhook.ConstructEvent +
//	              asynq enqueue), closed loop at -conns connections, from
//	              wrk (-load wrk, the default when wrk is on PATH) or a Go
//	              load generator (-load go)
//	e2e-rate      api + worker processes at -rate events/s: handler starts/s
//	              and backlog growth, vs raw asynq enqueue into a bare asynq
//	              server
//	e2e-capacity  the same, as fast as the api takes events
//	e2e-latency   the 200 (or the raw enqueue's return) to handler start at
//	              -latency-rate events/s
//	forward       a backlog of -drain-events forwarded by the worker to a
//	              destination (DESTINATION_URL), vs the bare Go forwarder
//	              (asynq task, then POST)
//	memory        Redis bytes per retained completed execution, vs a raw
//	              asynq task of the same payload
//	index         what the Console's index (stripeq:idx:*) adds per event
//	marker        the duplicate marker kept for DEDUPE_WINDOW (stripeq:seen:*),
//	              per event, vs keeping the whole task
//	memory/ev/s   what 1 event/s sustained keeps: executions for 72 h and
//	              markers for 7 days, vs bare tasks kept 7 days
//	console       the Console's first filtered page over 100,000 retained
//	              executions, from the dashboard binary, vs asynqmon's
//	              unfiltered first page
//
// Every ingest run sends unique events, each with its own body and
// Stripe-Signature, re-signed before the run (Stripe's tolerance is 300 s),
// never one twice. With wrk (wrk.go) each run is a warm-up wrk process of
// -warmup and a measured one of -duration, each thread sending its own
// slice of the events from a file; the figures are the measured run's.
// With the Go generator, one run measures what starts after -warmup.
// After every run, each 200 must be a stored task.
//
// Handler start is observed from outside: the worker runs with
// STRIPE_SECRET_KEY and STRIPE_API_BASE pointing at an HTTP server in this
// process that serves /v1/events/{id} and records when each request
// arrives; the baseline's handler makes the same request.
//
// -smoke runs every target once with tiny durations, for the test that
// keeps this harness from rotting. Everything listens on 127.0.0.1 only,
// and every load is bounded in time and count.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if child := os.Getenv(childEnv); child != "" {
		if err := runChild(child, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
