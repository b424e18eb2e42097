// Command bench measures stripeq against plain baselines on this machine,
// the harness of GitHub issues 8 and 20. It is what `go tool task bench`
// runs.
//
// It builds the api and worker binaries, starts its own redis-server on a
// free loopback port, and runs each target with its baseline interleaved
// (A B A B …, several rounds), printing every round and then the results:
// first one line per target of issues 20 and 29, with the median figure, the
// baseline's median, their ratio, the goal and PASS or FAIL (n/a when the
// run is not at the size the issue sets), then the lines that only report.
//
//	ingest        the api vs the ceiling receiver (Gin + the HMAC check
//	              + asynq enqueue), closed loop at -conns connections, from
//	              wrk (-load wrk, the default when wrk is on PATH) or a Go
//	              load generator (-load go): req/s ≥ 0.85×, and p99 < 10 ms
//	api CPU,      the api's and Redis's CPU per event vs the plain receiver's
//	redis CPU     (Gin + webhook.ConstructEvent + asynq enqueue): ≤ 0.7×
//	              and ≤ 1.1×; ingest/plain reports req/s vs the plain one
//	e2e-rate      api + worker processes at -rate events/s: handler starts/s
//	              and backlog growth, vs raw asynq enqueue into a bare asynq
//	              server (report)
//	e2e-capacity  the same, as fast as the worker drains a backlog: ≥ 0.75×;
//	worker CPU    and the worker's CPU per event: ≤ 1.5× the bare server's
//	e2e-latency   the 200 (or the raw enqueue's return) to handler start at
//	              -latency-rate events/s (report)
//	forward       a backlog of -drain-events forwarded by the worker to a
//	              destination (DESTINATION_URL) at -forward-conns (16), vs
//	              the bare Go forwarder (asynq task, then POST): ≥ 0.7×
//	memory        Redis bytes per retained completed execution, every key
//	              by family and the keyspace's dictionaries, beside
//	              used_memory's growth: ≤ 5,530 B; with zstd (report)
//	index         what the Console's index (stripeq:idx:*) adds per event
//	marker        the duplicate marker kept for DEDUPE_WINDOW (stripeq:seen:*),
//	              per event, vs keeping the whole task
//	memory/ev/s   what 1 event/s sustained keeps: executions for 72 h and
//	              markers for 7 days, vs bare tasks kept 7 days
//	redis e2e     Redis's CPU per event at ingest plus in the e2e-capacity
//	              drain, vs the plain receiver's plus the bare server's
//	              (asynq alone): ≤ 1.3× (issue 29; needs both targets)
//	console       the Console's first filtered page over 100,000 retained
//	              executions, from the dashboard binary, for every filter
//	              and search: each median < 100 ms; vs asynqmon's
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
