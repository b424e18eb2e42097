package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// forwardSecret is the destination's signing secret in the forward target.
var forwardSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-destination-secret-32bytes"))

// forward fills the queue with -drain-events events (through the api, or
// raw), then starts the worker and measures how fast the events reach a
// destination: stripeq's worker with DESTINATION_URL (each event's task
// runs its built-in handler, then signs and POSTs the event inline while
// the destination is healthy, else enqueues a delivery task), against the bare Go forwarder (baseline.go: an
// asynq server whose handler POSTs the payload). Both POST to the
// recorder over -forward-conns connections (16, as issue 20 sets):
// DESTINATION_CONCURRENCY = the baseline's concurrency = -forward-conns.
func (b *bench) forward(ctx context.Context) error {
	s, base, err := b.drain(ctx, "forward", "forwarded", b.startForwarder, func(stripeq bool, n, handled int, w *proc) error {
		if handled != n {
			return fmt.Errorf("%s: %d of %d events forwarded within a minute:\n%s", b.kindName(stripeq), handled, n, w.tail())
		}
		return nil
	})
	if err != nil {
		return err
	}
	ratio := median(s.rates) / median(base.rates)
	if b.opt.before != "" {
		b.results = append(b.results, b.beforeLine("forward", "forwarded", s, base))
		return nil
	}
	b.results = append(b.results, line{
		target:   "forward",
		figure:   fmt.Sprintf("%.0f/s forwarded at %d conns", median(s.rates), b.opt.forwardConns),
		baseline: fmt.Sprintf("%.0f/s forwarded (bare Go forwarder)", median(base.rates)),
		ratio:    fmt.Sprintf("%.2f×", ratio),
		goal:     "≥ 0.7× the bare forwarder at 16 conns",
		verdict:  at16(b.opt.forwardConns, ratio >= 0.7),
	})
	return nil
}

// startForwarder starts stripeq's worker with one destination, the
// recorder, or the bare forwarder, and waits until asynq lists it.
func (b *bench) startForwarder(ctx context.Context, stripeq bool) (*proc, error) {
	var p *proc
	var err error
	env := []string{
		"REDIS_URL=redis://" + b.redis.Addr + "/0", "DESTINATION_URL=" + b.rec.url + "/forward",
		"DESTINATION_SECRET=" + forwardSecret, fmt.Sprintf("DESTINATION_CONCURRENCY=%d", b.opt.forwardConns),
		fmt.Sprintf("WORKER_CONCURRENCY=%d", b.opt.concurrency), fmt.Sprintf("GLOBAL_CONCURRENCY=%d", b.opt.global),
	}
	if stripeq {
		p, err = startProc("worker-forward", b.bins["worker"], b.dir, env)
	} else if b.opt.before != "" {
		p, err = startProc("worker-forward-before", b.opt.before, b.dir, env)
	} else {
		p, err = startProc("baseline-forwarder", b.self, b.dir, []string{
			childEnv + "=forwarder", "BENCH_REDIS_ADDR=" + b.redis.Addr, "BENCH_RECORDER=" + b.rec.url,
			fmt.Sprintf("BENCH_CONCURRENCY=%d", b.opt.forwardConns),
		})
	}
	if err != nil {
		return nil, err
	}
	return b.registered(ctx, p)
}

// serveBaselineForwarder is the bare Go forwarder: an asynq server whose
// handler POSTs each task's payload to BENCH_RECORDER/forward with the
// task ID as webhook-id, and nothing else (no signature, no record of the
// attempt, no handler).
func serveBaselineForwarder(ctx context.Context, redisOpt asynq.RedisClientOpt, recorder string, concurrency int) error {
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:       concurrency,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: 25 * time.Millisecond, // as stripeq's worker
		LogLevel:          asynq.WarnLevel,
	})
	h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, recorder+"/forward", bytes.NewReader(t.Payload()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %s", strconv.Itoa(resp.StatusCode))
		}
		return nil
	})
	if err := srv.Start(h); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
