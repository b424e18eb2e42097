package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// ingest measures the api against the plain receiver: closed-loop load of
// unique pre-signed events at -conns connections, stripeq then the
// baseline in every round, with Redis emptied before each run. After each
// run every 200 must match a stored task (and, for stripeq, an index
// entry), and both receivers must pass the same checks first. The CPU
// figure is the receiver's and Redis's CPU time per stored event.
func (b *bench) ingest(ctx context.Context) error {
	api, err := b.startAPI(ctx)
	if err != nil {
		return err
	}
	defer api.stop()
	base, err := b.startBaselineReceiver(ctx)
	if err != nil {
		return err
	}
	defer base.stop()
	for _, r := range []struct{ name, addr string }{{"stripeq", b.apiAddr}, {"baseline", b.baseAddr}} {
		if err := b.flush(ctx); err != nil {
			return err
		}
		if err := checks(ctx, r.addr); err != nil {
			return fmt.Errorf("%s checks: %w", r.name, err)
		}
	}
	b.logf("ingest: both receivers answer 200 Received, 200 duplicate for a redelivery, 400 for a bad signature and for a 10-minute-old one")

	var rates, p99s, baseRates, baseP99s []float64
	var cpus, baseCPUs []float64 // receiver + Redis CPU µs per event
	limit := int(b.opt.maxRate * (b.opt.warmup + b.opt.ingestDur).Seconds())
	for round := 1; round <= b.opt.rounds; round++ {
		for _, stripeq := range []bool{true, false} {
			addr, name, pid := b.apiAddr, "stripeq ", api.cmd.Process.Pid
			if !stripeq {
				addr, name, pid = b.baseAddr, "baseline", base.cmd.Process.Pid
			}
			if err := b.flush(ctx); err != nil {
				return err
			}
			b.corpus.sign(time.Now())
			cpu := meterCPU(pid, b.redis.cmd.Process.Pid, os.Getpid())
			res := closedLoop(ctx, httpSender(addr, b.corpus), b.opt.conns, b.opt.warmup, b.opt.ingestDur, min(limit, b.corpus.len()))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			stored := count(ctx, b.redis.rdb, "asynq:{"+queue+"}:pending")
			lost := ""
			if stored != int64(res.okAll) {
				lost = fmt.Sprintf(" LOST: %d answered 200 but %d tasks stored", res.okAll, stored)
			}
			if stripeq {
				if idx := count(ctx, b.redis.rdb, execindex.KeyPrefix(queue)+"all"); idx != int64(res.okAll) {
					lost += fmt.Sprintf(" UNINDEXED: %d of %d", int64(res.okAll)-idx, res.okAll)
				}
			}
			us := cpu.perEvent(res.okAll)
			p50, p99 := quantile(res.lat, 0.5), quantile(res.lat, 0.99)
			b.logf("round %d/%d ingest %s %7.0f req/s  p50 %5.2f ms  p99 %5.2f ms  CPU µs/event: receiver %3.0f, redis %3.0f, load generator %3.0f  errors %d%s%s",
				round, b.opt.rounds, name, res.rate(), ms(p50), ms(p99), us[0], us[1], us[2], res.errorCount(), errSummary(res.errors), lost)
			if lost != "" {
				return fmt.Errorf("%w: %s", errLost, lost)
			}
			if stripeq {
				rates, p99s, cpus = append(rates, res.rate()), append(p99s, ms(p99)), append(cpus, us[0]+us[1])
			} else {
				baseRates, baseP99s, baseCPUs = append(baseRates, res.rate()), append(baseP99s, ms(p99)), append(baseCPUs, us[0]+us[1])
			}
		}
	}
	ratio := median(rates) / median(baseRates)
	b.results = append(b.results, line{
		target:   "ingest",
		figure:   fmt.Sprintf("%.0f req/s, p99 %.1f ms, %.0f µs CPU", median(rates), median(p99s), median(cpus)),
		baseline: fmt.Sprintf("%.0f req/s, p99 %.1f ms, %.0f µs CPU", median(baseRates), median(baseP99s), median(baseCPUs)),
		ratio:    fmt.Sprintf("%.2f×", ratio),
		goal:     fmt.Sprintf("≥ 2.0×, p99 < 10 ms at %d conns", b.opt.conns),
		verdict:  verdict(ratio >= 2 && median(p99s) < 10),
	})
	return nil
}

func (b *bench) flush(ctx context.Context) error { return b.redis.flush(ctx) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func errSummary(errs map[string]int) string {
	if len(errs) == 0 {
		return ""
	}
	return fmt.Sprintf(" %v", errs)
}

// checks sends the deliveries every receiver must answer rightly: a new
// event, its redelivery, a wrong signature and a stale timestamp.
func checks(ctx context.Context, addr string) error {
	now := time.Now()
	body := stripetest.Event("charge.failed", "evt_1BenchCheck00000000000001", now)
	for _, c := range []struct {
		name, sig string
		status    int
		message   string
	}{
		{"new event", stripetest.Sign(body, now, stripetest.Secret), http.StatusOK, "Received"},
		{"redelivery", stripetest.Sign(body, now, stripetest.Secret), http.StatusOK, "duplicate"},
		{"bad signature", stripetest.Sign(body, now, "whsec_other"), http.StatusBadRequest, ""},
		{"10-minute-old signature", stripetest.Sign(body, now.Add(-10*time.Minute), stripetest.Secret), http.StatusBadRequest, ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhooks/stripe", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", c.sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var answer struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.message != "" && answer.Message != c.message) {
			return fmt.Errorf("%s: got %d %q, want %d %q", c.name, resp.StatusCode, answer.Message, c.status, c.message)
		}
	}
	return nil
}
