package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// ingest measures the api against the plain receiver and the ceiling
// receiver (baseline.go): closed-loop load of unique pre-signed events at
// -conns connections, from wrk or the Go generator (-load), stripeq, the
// baseline and the ceiling in every round, with Redis emptied before each
// run. After each run every 200 must match a stored task (and, for
// stripeq, an index entry), and every receiver must pass the same checks
// first. The CPU figures are the receiver's and Redis's CPU time per
// stored event, each the median of the rounds' figures.
func (b *bench) ingest(ctx context.Context) error {
	api, err := b.startAPI(ctx)
	if err != nil {
		return err
	}
	defer api.stop()
	base, baseAddr, err := b.startBaselineReceiver(ctx, "receiver")
	if err != nil {
		return err
	}
	defer base.stop()
	ceil, ceilAddr, err := b.startBaselineReceiver(ctx, "ceiling")
	if err != nil {
		return err
	}
	defer ceil.stop()
	receivers := []*ingestReceiver{
		{name: "stripeq ", addr: b.apiAddr, pid: api.Pid(), indexed: true},
		{name: "baseline", addr: baseAddr, pid: base.Pid()},
		{name: "ceiling ", addr: ceilAddr, pid: ceil.Pid()},
	}
	for _, r := range receivers {
		if err := b.flush(ctx); err != nil {
			return err
		}
		if err := checks(ctx, r.addr); err != nil {
			return fmt.Errorf("%s checks: %w", strings.TrimSpace(r.name), err)
		}
	}
	b.logf("ingest: the three receivers answer 200 Received, 200 duplicate for a redelivery, 400 for a bad signature and for a 10-minute-old one")

	limit := min(int(b.opt.maxRate*(b.opt.warmup+b.opt.ingestDur).Seconds()), b.corpus.len())
	for round := 1; round <= b.opt.rounds; round++ {
		for _, rc := range receivers {
			if err := b.flush(ctx); err != nil {
				return err
			}
			b.corpus.sign(time.Now())
			if err := b.redis.resetCommandStats(ctx); err != nil {
				return err
			}
			var r ingestRun
			if b.load == loadWrk {
				if r, err = b.ingestWrk(ctx, rc.addr, rc.pid, limit, strings.TrimSpace(rc.name)); err != nil {
					return err
				}
			} else {
				r = b.ingestGo(ctx, rc.addr, rc.pid, limit)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			stats, err := b.redis.commandStats(ctx)
			if err != nil {
				return err
			}
			// Every 200 "Received" must be a stored task (and, for stripeq,
			// an index entry), and nothing else may be stored. When wrk was
			// stopped with answers unread (a thread did not quiesce in
			// time), those requests may or may not have been stored, so the
			// check can only bound the count: ok ≤ stored ≤ ok + unread.
			check := func(what string, got int64) string {
				if got >= int64(r.ok) && got <= int64(r.ok+r.inflight) {
					return ""
				}
				return fmt.Sprintf(" %s: %d answered 200 but %d %s", strings.ToUpper(what), r.ok, got, what)
			}
			lost := check("stored", count(ctx, b.redis.rdb, keyspace.Pending(queue)))
			if rc.indexed {
				// The api writes index entries in the background: give
				// the last ones a moment.
				indexed := count(ctx, b.redis.rdb, execindex.KeyPrefix(queue)+"all")
				for deadline := time.Now().Add(2 * time.Second); indexed < int64(r.ok) && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
					indexed = count(ctx, b.redis.rdb, execindex.KeyPrefix(queue)+"all")
				}
				lost += check("indexed", indexed)
			}
			if r.inflight > 0 {
				r.note += fmt.Sprintf(" (%d answers never read: stored checked within [%d, %d])", r.inflight, r.ok, r.ok+r.inflight)
			}
			busy := ""
			if r.others >= 0.2 {
				busy = " (figures disturbed?)"
			}
			b.logf("round %d/%d ingest %s %7.0f req/s  p50 %5.2f ms  p99 %5.2f ms  CPU µs/event: receiver %3.0f, redis %3.0f, load generator %3.0f  other load %.2f cores%s  errors %d%s%s%s",
				round, b.opt.rounds, rc.name, r.rate, ms(r.p50), ms(r.p99), r.us[0], r.us[1], r.us[2], r.others, busy, errorCount(r.errors), errSummary(r.errors), r.note, lost)
			if lost != "" {
				return fmt.Errorf("%w: %s", errLost, lost)
			}
			b.logf("    %s", commandProfile(stats, r.ok, 6))
			rc.rates, rc.p99s = append(rc.rates, r.rate), append(rc.p99s, ms(r.p99))
			rc.apiCPU, rc.redisCPU = append(rc.apiCPU, r.us[0]), append(rc.redisCPU, r.us[1])
		}
	}
	s, plain, ceil0 := receivers[0], receivers[1], receivers[2]
	toCeil, p99 := median(s.rates)/median(ceil0.rates), median(s.p99s)
	apiCPU, redisCPU := median(s.apiCPU)/median(plain.apiCPU), median(s.redisCPU)/median(plain.redisCPU)
	b.redisIngest, b.redisIngestBase = median(s.redisCPU), median(plain.redisCPU)
	b.results = append(b.results,
		line{
			target:   "ingest",
			figure:   s.summary(),
			baseline: ceil0.summary() + " (ceiling)",
			ratio:    fmt.Sprintf("%.2f×", toCeil),
			goal:     "≥ 0.85× the ceiling receiver",
			verdict:  verdict(toCeil >= 0.85),
		},
		line{
			target:   "ingest p99",
			figure:   fmt.Sprintf("p99 %.1f ms at %d conns", p99, b.opt.conns),
			baseline: fmt.Sprintf("p99 %.1f ms (plain receiver)", median(plain.p99s)),
			ratio:    fmt.Sprintf("%.2f×", p99/median(plain.p99s)),
			goal:     "< 10 ms at 16 conns",
			verdict:  at16(b.opt.conns, p99 < 10),
		},
		line{
			target:   "api CPU",
			figure:   fmt.Sprintf("%.0f µs/event (api)", median(s.apiCPU)),
			baseline: fmt.Sprintf("%.0f µs/event (plain receiver)", median(plain.apiCPU)),
			ratio:    fmt.Sprintf("%.2f×", apiCPU),
			goal:     "≤ 0.7× the plain receiver's",
			verdict:  verdict(apiCPU <= 0.7),
		},
		line{
			target:   "redis CPU",
			figure:   fmt.Sprintf("%.0f µs/event (behind the api)", median(s.redisCPU)),
			baseline: fmt.Sprintf("%.0f µs/event (plain receiver)", median(plain.redisCPU)),
			ratio:    fmt.Sprintf("%.2f×", redisCPU),
			goal:     "≤ 1.1× the plain receiver's",
			verdict:  verdict(redisCPU <= 1.1),
		},
		line{
			// How the product compares with the plain receiver it
			// replaces, and how far that is from the ceiling.
			target:   "ingest/plain",
			figure:   s.summary(),
			baseline: plain.summary() + " (plain)",
			ratio:    fmt.Sprintf("%.2f×", median(s.rates)/median(plain.rates)),
			goal:     fmt.Sprintf("report; plain receiver %.2f× of the ceiling", median(plain.rates)/median(ceil0.rates)),
			verdict:  "—",
		})
	return nil
}

// at16 is the verdict of a target the issue sets at 16 connections: n/a
// when measured at others.
func at16(conns int, ok bool) string {
	if conns != 16 {
		return "n/a"
	}
	return verdict(ok)
}

// ingestReceiver is one receiver the ingest target loads, and its figures
// over the rounds.
type ingestReceiver struct {
	name, addr string
	pid        int
	indexed    bool // stripeq: every stored event has a Console index entry
	rates      []float64
	p99s       []float64 // ms
	apiCPU     []float64 // the receiver's CPU µs per event
	redisCPU   []float64 // Redis's CPU µs per event
}

func (r *ingestReceiver) summary() string {
	return fmt.Sprintf("%.0f req/s, p99 %.1f ms", median(r.rates), median(r.p99s))
}

// ingestRun is one ingest run, whichever load generator made it.
type ingestRun struct {
	rate     float64       // 200 "Received" answers per second of the measured window
	p50, p99 time.Duration // latency in the measured window
	ok       int           // 200 "Received" answers in the whole run, warm-up included
	inflight int           // requests whose answer was never read (wrk only)
	errors   map[string]int
	us       []float64 // CPU µs per ok: receiver, Redis, load generator
	others   float64   // cores the rest of the machine kept busy meanwhile
	note     string
}

// otherLoad returns how many cores the machine kept busy from busy0 and
// start until now beyond ours, the CPU time of the processes measured: what
// other work took from the run. Kernel work for the run's own traffic that
// is not charged to a process (softirq) counts as other, so an idle
// machine shows a few hundredths.
func otherLoad(busy0 time.Duration, start time.Time, ours time.Duration) float64 {
	return max(0, (machineBusy()-busy0-ours).Seconds()/time.Since(start).Seconds())
}

// ingestGo runs the Go generator (load.go) for -warmup and -duration;
// the load generator's CPU is this process's.
func (b *bench) ingestGo(ctx context.Context, addr string, pid, limit int) ingestRun {
	start, busy0 := time.Now(), machineBusy()
	cpu := meterCPU(pid, b.redis.Pid(), os.Getpid())
	res := closedLoop(ctx, httpSender(addr, b.corpus), b.opt.conns, b.opt.warmup, b.opt.ingestDur, limit)
	return ingestRun{
		rate: res.rate(), p50: quantile(res.lat, 0.5), p99: quantile(res.lat, 0.99),
		ok: res.okAll, errors: res.errors, us: cpu.perEvent(res.okAll),
		others: otherLoad(busy0, start, cpu.total()),
	}
}

// ingestWrk runs wrk (wrk.go): a warm-up run of -warmup on the first
// events of the signed corpus, then the measured run of -duration on the
// next ones, each a wrk process of its own with new connections. The
// figures are the measured run's: its 200s per second of -duration (every
// event it sent was started within it) and wrk's latency percentiles, which
// include wrk's correction for coordinated omission. CPU per event covers
// both runs, as the Go generator's does, and the load generator's is the
// two wrk processes' own.
func (b *bench) ingestWrk(ctx context.Context, addr string, pid, limit int, name string) (ingestRun, error) {
	wc, err := writeWrkCorpus(b.corpus, limit, filepath.Join(b.wrkDir, "corpus"))
	if err != nil {
		return ingestRun{}, err
	}
	warmN := min(int(b.opt.maxRate*b.opt.warmup.Seconds()), limit/2)
	start, busy0 := time.Now(), machineBusy()
	cpu := meterCPU(pid, b.redis.Pid(), os.Getpid())
	var runs []wrkRun
	for _, w := range []struct {
		name     string
		window   time.Duration
		from, to int
	}{{name + "-warmup", b.opt.warmup, 0, warmN}, {name, b.opt.ingestDur, warmN, limit}} {
		if w.window <= 0 || w.to <= w.from {
			continue
		}
		r, err := runWrk(ctx, b.wrk, b.wrkDir, wc, addr, b.opt.conns, w.window, w.from, w.to-w.from, w.name)
		if err != nil {
			return ingestRun{}, fmt.Errorf("%s: %w", w.name, err)
		}
		runs = append(runs, r)
	}
	m := runs[len(runs)-1]
	res := ingestRun{rate: float64(m.ok) / b.opt.ingestDur.Seconds(), p50: m.p50, p99: m.p99, errors: map[string]int{}}
	var wrkCPU time.Duration
	for _, r := range runs {
		res.ok += r.ok
		res.inflight += r.inflight()
		wrkCPU += r.cpu
		for k, v := range r.errors {
			res.errors[k] += v
		}
	}
	res.others = otherLoad(busy0, start, cpu.total()+wrkCPU)
	res.us = append(cpu.perEvent(res.ok)[:2], float64(wrkCPU)/float64(time.Microsecond)/float64(max(1, res.ok)))
	res.note = fmt.Sprintf("  (wrk's own: %d answers in %.2f s)", m.requests, m.duration.Seconds())
	return res, nil
}

func errorCount(errs map[string]int) int {
	n := 0
	for _, v := range errs {
		n += v
	}
	return n
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
