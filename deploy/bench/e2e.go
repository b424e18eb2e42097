package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/records"
)

// ensureAPI starts stripeq's api once; run stops it at the end.
func (b *bench) ensureAPI(ctx context.Context) error {
	if b.api != nil {
		return nil
	}
	p, err := b.startAPI(ctx)
	if err != nil {
		return err
	}
	b.api = p
	return nil
}

// e2eRun prepares one end-to-end run of c, stripeq's (api + worker) or
// the baseline's (raw enqueue + bare asynq server): an empty Redis, c
// signed now, a new recording. It returns the sender that delivers
// events.
func (b *bench) e2eRun(ctx context.Context, stripeq bool, c *corpus) (sender, *recording, error) {
	if err := b.flush(ctx); err != nil {
		return nil, nil, err
	}
	c.sign(time.Now())
	rec := b.rec.reset(c)
	if stripeq || b.opt.before != "" {
		if err := b.ensureAPI(ctx); err != nil {
			return nil, nil, err
		}
		return httpSender(b.apiAddr, c), rec, nil
	}
	return b.rawSender(asynq.NewClientFromRedisClient(b.redis.rdb), c), rec, nil
}

func (b *bench) kindName(stripeq bool) string {
	switch {
	case stripeq:
		return "stripeq "
	case b.opt.before != "":
		return "before  "
	}
	return "baseline"
}

// beforeLine is a drain target's line against the -before worker: rate,
// and the worker's and Redis's CPU per event, after/before, to report.
func (b *bench) beforeLine(target, verb string, s, before drainFigures) line {
	return line{
		target:   target + " vs before",
		figure:   fmt.Sprintf("%.0f/s %s; CPU µs/event: worker %.0f, Redis %.0f", median(s.rates), verb, median(s.workerCPU), median(s.redisCPU)),
		baseline: fmt.Sprintf("%.0f/s; worker %.0f, Redis %.0f (before)", median(before.rates), median(before.workerCPU), median(before.redisCPU)),
		ratio: fmt.Sprintf("%.2f×; worker %.2f×, Redis %.2f×", median(s.rates)/median(before.rates),
			median(s.workerCPU)/median(before.workerCPU), median(s.redisCPU)/median(before.redisCPU)),
		goal:    "report (-before)",
		verdict: "—",
	}
}

// e2eRate sends -rate events/s for -e2e-duration and measures handler
// starts per second and the backlog (pending tasks) while it runs.
func (b *bench) e2eRate(ctx context.Context) error {
	n := int(b.opt.rate * b.opt.e2eDur.Seconds())
	var rates, slopes, drains, sents, baseRates, baseSlopes []float64
	for round := 1; round <= b.opt.e2eRounds; round++ {
		for _, stripeq := range []bool{true, false} {
			s, rec, err := b.e2eRun(ctx, stripeq, b.corpus)
			if err != nil {
				return err
			}
			w, err := b.startWorker(ctx, stripeq)
			if err != nil {
				return err
			}
			samples := b.sampleBacklog(ctx)
			start := time.Now()
			res := openLoop(ctx, s, 16, b.opt.rate, n)
			sent := time.Now()
			backlog := samples()
			handled := rec.waitHandled(res.okAll, 30*time.Second)
			drain := time.Since(sent)
			err = b.checkStored(ctx, stripeq, b.corpus, res.okAll, handled)
			w.stop()
			if err != nil {
				return err
			}
			from := start.Add(sent.Sub(start) / 5)
			rate := float64(rec.startsBetween(from, sent)) / sent.Sub(from).Seconds()
			sentRate := float64(res.okAll) / sent.Sub(start).Seconds()
			slope, maxBacklog := backlogSlope(backlog, start.Add(sent.Sub(start)/2))
			b.logf("round %d/%d e2e-rate %s sent %5.0f/s  handler starts %5.0f/s  backlog max %d, slope %+.0f/s  all handled %4.0f ms after the last send  errors %d%s",
				round, b.opt.e2eRounds, b.kindName(stripeq), sentRate, rate, maxBacklog, slope, ms(drain),
				res.errorCount(), errSummary(res.errors))
			if stripeq {
				rates, slopes, drains, sents = append(rates, rate), append(slopes, slope), append(drains, ms(drain)), append(sents, sentRate)
			} else {
				baseRates, baseSlopes = append(baseRates, rate), append(baseSlopes, slope)
			}
		}
	}
	ok := median(sents) >= 0.97*b.opt.rate && median(rates) >= 0.97*b.opt.rate && median(slopes) <= 0.02*b.opt.rate && median(drains) <= 1000
	b.results = append(b.results, line{
		target:   "e2e-rate",
		figure:   fmt.Sprintf("%.0f/s taken, %.0f/s handled, backlog %+.0f/s", median(sents), median(rates), median(slopes)),
		baseline: fmt.Sprintf("%.0f/s handled, backlog %+.0f/s", median(baseRates), median(baseSlopes)),
		ratio:    fmt.Sprintf("%.2f×", median(rates)/median(baseRates)),
		goal:     fmt.Sprintf("report; %.0f/s sustained, backlog flat: %s", b.opt.rate, sustained(ok)),
		verdict:  "—",
	})
	return nil
}

func sustained(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// e2eCapacity fills the queue with -drain-events events (through the api,
// or raw), then starts the worker and measures how fast it drains them:
// the most the worker can sustain.
func (b *bench) e2eCapacity(ctx context.Context) error {
	s, base, err := b.drain(ctx, "e2e-capacity", "drained", b.startWorker, func(stripeq bool, n, handled int, _ *proc) error {
		return b.checkStored(ctx, stripeq, b.corpus, n, handled)
	})
	if err != nil {
		return err
	}
	if b.opt.before != "" {
		b.results = append(b.results, b.beforeLine("e2e-capacity", "drained", s, base))
		return nil
	}
	capacity := median(s.rates) / median(base.rates)
	cpu := median(s.workerCPU) / median(base.workerCPU)
	b.redisWorker, b.redisWorkerBase = median(s.redisCPU), median(base.redisCPU)
	b.results = append(b.results,
		line{
			target:   "e2e-capacity",
			figure:   fmt.Sprintf("%.0f/s drained", median(s.rates)),
			baseline: fmt.Sprintf("%.0f/s drained (bare asynq server)", median(base.rates)),
			ratio:    fmt.Sprintf("%.2f×", capacity),
			goal:     "≥ 0.75× the bare asynq server",
			verdict:  verdict(capacity >= 0.75),
		},
		line{
			target:   "worker CPU",
			figure:   fmt.Sprintf("%.0f µs/event (worker), Redis %.0f", median(s.workerCPU), median(s.redisCPU)),
			baseline: fmt.Sprintf("%.0f µs/event (bare server), Redis %.0f", median(base.workerCPU), median(base.redisCPU)),
			ratio:    fmt.Sprintf("%.2f×", cpu),
			goal:     "≤ 1.5× the bare server's",
			verdict:  verdict(cpu <= 1.5),
		})
	return nil
}

// e2eLatency sends -latency-rate events/s and measures, per event, the
// time from the 200 (or the raw enqueue's return) to its handler start.
func (b *bench) e2eLatency(ctx context.Context) error {
	n := int(b.opt.latRate * b.opt.latDur.Seconds())
	var p50s, p99s, baseP50s, baseP99s []float64
	for round := 1; round <= b.opt.e2eRounds; round++ {
		for _, stripeq := range []bool{true, false} {
			s, rec, err := b.e2eRun(ctx, stripeq, b.corpus)
			if err != nil {
				return err
			}
			w, err := b.startWorker(ctx, stripeq)
			if err != nil {
				return err
			}
			res := openLoop(ctx, s, 4, b.opt.latRate, n)
			handled := rec.waitHandled(res.okAll, 30*time.Second)
			err = b.checkStored(ctx, stripeq, b.corpus, res.okAll, handled)
			w.stop()
			if err != nil {
				return err
			}
			var lat []time.Duration
			for i := range n {
				if d, a := res.doneAt[i], rec.arrivals[i].Load(); d > 0 && a > 0 {
					lat = append(lat, time.Duration(a-d))
				}
			}
			p50, p99 := ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99))
			b.logf("round %d/%d e2e-latency %s %d events at %.0f/s: 200 → handler start p50 %5.1f ms  p99 %5.1f ms  (receiver p50 %.2f ms)",
				round, b.opt.e2eRounds, b.kindName(stripeq), len(lat), b.opt.latRate, p50, p99, ms(quantile(res.lat, 0.5)))
			if stripeq {
				p50s, p99s = append(p50s, p50), append(p99s, p99)
			} else {
				baseP50s, baseP99s = append(baseP50s, p50), append(baseP99s, p99)
			}
		}
	}
	b.results = append(b.results, line{
		target:   "e2e-latency",
		figure:   fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", median(p50s), median(p99s)),
		baseline: fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", median(baseP50s), median(baseP99s)),
		ratio:    fmt.Sprintf("%.2f×", median(p50s)/median(baseP50s)),
		goal:     fmt.Sprintf("report; at %.0f/s", b.opt.latRate),
		verdict:  "—",
	})
	return nil
}

// checkStored checks that every stored event reached its handler and, for
// stripeq, that its task completed and the records were written.
func (b *bench) checkStored(ctx context.Context, stripeq bool, c *corpus, stored, handled int) error {
	if handled != stored {
		return fmt.Errorf("%w: %s: %d events stored, %d reached a handler within the wait", errLost, b.kindName(stripeq), stored, handled)
	}
	if !stripeq && b.opt.before == "" {
		return nil
	}
	completed := keyspace.Completed(queue)
	deadline := time.Now().Add(10 * time.Second)
	for count(ctx, b.redis.rdb, completed) < int64(stored) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := count(ctx, b.redis.rdb, completed); c != int64(stored) {
		return fmt.Errorf("%w: %d events handled, %d tasks completed", errLost, stored, c)
	}
	if key := records.CustomerKey(c.customer(0)); stored > 0 && b.redis.rdb.Exists(ctx, key).Val() != 1 {
		return fmt.Errorf("the worker wrote no customer record %s", key)
	}
	return nil
}

// backlogSample is the number of pending tasks at a time.
type backlogSample struct {
	at      time.Time
	pending int64
}

// sampleBacklog samples the pending tasks every 100 ms until the returned
// function is called, which returns the samples.
func (b *bench) sampleBacklog(ctx context.Context) func() []backlogSample {
	var mu sync.Mutex
	var samples []backlogSample
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				n := count(ctx, b.redis.rdb, keyspace.Pending(queue))
				mu.Lock()
				samples = append(samples, backlogSample{time.Now(), n})
				mu.Unlock()
			}
		}
	}()
	return func() []backlogSample {
		close(stop)
		<-done
		return samples
	}
}

// backlogSlope fits a line to the samples after from and returns its slope
// (tasks per second; about 0 when the worker keeps up), and the largest
// backlog seen.
func backlogSlope(samples []backlogSample, from time.Time) (float64, int64) {
	var n, sx, sy, sxx, sxy float64
	var most int64
	for _, s := range samples {
		most = max(most, s.pending)
		if s.at.Before(from) {
			continue
		}
		x, y := s.at.Sub(from).Seconds(), float64(s.pending)
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n < 2 || n*sxx-sx*sx == 0 {
		return 0, most
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx), most
}

// drainFigures are one side's figures of a drain target, per round.
type drainFigures struct {
	rates     []float64 // events/s
	workerCPU []float64 // the worker's (or the bare server's) CPU µs per event
	redisCPU  []float64 // Redis's CPU µs per event
}

// drain runs the rounds of a drain target (e2e-capacity, forward): in
// each, for stripeq and then the baseline, it fills the queue with
// -drain-events events, starts the process start gives, and measures how
// fast the recorder sees them all, and the CPU each side used. check
// judges what was handled before the process stops. It returns the
// figures of each side.
func (b *bench) drain(ctx context.Context, target, verb string, start func(context.Context, bool) (*proc, error),
	check func(stripeq bool, n, handled int, w *proc) error) (stripeqs, base drainFigures, err error) {
	n := min(b.opt.drainEvents, b.corpus.len())
	for round := 1; round <= b.opt.e2eRounds; round++ {
		for _, stripeq := range []bool{true, false} {
			s, rec, err := b.e2eRun(ctx, stripeq, b.corpus)
			if err != nil {
				return stripeqs, base, err
			}
			res := closedLoop(ctx, s, 16, 0, time.Minute, n)
			if res.okAll != n {
				return stripeqs, base, fmt.Errorf("%s: stored %d of %d events: %v", b.kindName(stripeq), res.okAll, n, res.errors)
			}
			if err := b.redis.resetCommandStats(ctx); err != nil {
				return stripeqs, base, err
			}
			w, err := start(ctx, stripeq)
			if err != nil {
				return stripeqs, base, err
			}
			cpu := meterCPU(w.Pid(), b.redis.Pid(), os.Getpid())
			handled := rec.waitHandled(n, time.Minute)
			us := cpu.perEvent(n)
			stats, err := b.redis.commandStats(ctx)
			if err != nil {
				return stripeqs, base, err
			}
			err = check(stripeq, n, handled, w)
			w.stop()
			if err != nil {
				return stripeqs, base, err
			}
			first, last := int64(0), int64(0)
			for i := range n {
				a := rec.arrivals[i].Load()
				if first == 0 || a < first {
					first = a
				}
				last = max(last, a)
			}
			rate := float64(n-1) / time.Duration(last-first).Seconds()
			b.logf("round %d/%d %s %s %s %d events at %5.0f/s  CPU µs/event: worker %3.0f, redis %3.0f, recorder %3.0f",
				round, b.opt.e2eRounds, target, b.kindName(stripeq), verb, n, rate, us[0], us[1], us[2])
			b.logf("    %s", commandProfile(stats, n, 8))
			f := &base
			if stripeq {
				f = &stripeqs
			}
			f.rates, f.workerCPU, f.redisCPU = append(f.rates, rate), append(f.workerCPU, us[0]), append(f.redisCPU, us[1])
		}
	}
	return stripeqs, base, nil
}
