package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// queue is the asynq queue of every run, stripeq's and the baselines'.
const queue = "stripe"

// options are the command-line settings; -smoke replaces the durations
// and counts with tiny ones.
type options struct {
	smoke         bool
	rounds        int           // ingest rounds (A B each)
	e2eRounds     int           // rounds of each end-to-end target
	conns         int           // ingest connections
	warmup        time.Duration // ingest warm-up, not measured
	ingestDur     time.Duration // ingest measured window
	maxRate       float64       // ingest corpus size per second of run
	rate          float64       // e2e-rate events/s
	e2eDur        time.Duration // e2e-rate send time
	drainEvents   int           // e2e-capacity backlog
	latRate       float64       // e2e-latency events/s
	latDur        time.Duration // e2e-latency send time
	memEvents     int           // memory: retained executions
	memCusts      int           // memory: distinct customers
	concurrency   int           // WORKER_CONCURRENCY of both workers
	global        int           // GLOBAL_CONCURRENCY of stripeq's worker
	forwardConns  int           // forward: connections to the destination
	consoleExecs  int           // console: retained executions
	consoleRounds int           // console: times each filter is timed
	only          string        // comma list of targets to run
	load          string        // ingest load generator: wrk, go, or empty for wrk when on PATH
	before        string        // a worker binary of an earlier build, the worker targets' baseline instead of asynq's
}

func parseOptions(args []string, out io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var o options
	fs.BoolVar(&o.smoke, "smoke", false, "one short round of every target, for CI (about 15 s)")
	fs.IntVar(&o.rounds, "rounds", 5, "ingest rounds, each running stripeq then the baseline")
	fs.IntVar(&o.e2eRounds, "e2e-rounds", 3, "rounds of each end-to-end target")
	fs.IntVar(&o.conns, "conns", 16, "ingest: connections of the closed-loop load")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "ingest: warm-up before measuring")
	fs.DurationVar(&o.ingestDur, "duration", 3*time.Second, "ingest: measured time per run")
	fs.Float64Var(&o.maxRate, "max-rate", 30000, "ingest: the most events/s the corpus must cover")
	fs.Float64Var(&o.rate, "rate", 3000, "e2e-rate: events/s sent through the api")
	fs.DurationVar(&o.e2eDur, "e2e-duration", 5*time.Second, "e2e-rate: send time per run")
	fs.IntVar(&o.drainEvents, "drain-events", 20000, "e2e-capacity: backlog the worker drains")
	fs.Float64Var(&o.latRate, "latency-rate", 200, "e2e-latency: events/s")
	fs.DurationVar(&o.latDur, "latency-duration", 5*time.Second, "e2e-latency: send time per run")
	fs.IntVar(&o.memEvents, "memory-events", 5000, "memory: retained executions to measure")
	fs.IntVar(&o.concurrency, "worker-concurrency", 5, "WORKER_CONCURRENCY of stripeq's worker and the baseline worker")
	fs.IntVar(&o.global, "global-concurrency", 5, "GLOBAL_CONCURRENCY of stripeq's worker")
	fs.IntVar(&o.forwardConns, "forward-conns", 16, "forward: DESTINATION_CONCURRENCY of stripeq's worker and the bare forwarder's concurrency")
	fs.StringVar(&o.load, "load", "", "ingest: load generator, wrk or go (default wrk when it is on PATH, else go)")
	fs.IntVar(&o.consoleExecs, "console-executions", 100_000, "console: retained executions the Console filters")
	fs.IntVar(&o.consoleRounds, "console-rounds", 15, "console: times each filter's first page is fetched")
	fs.StringVar(&o.before, "before", "", "with -only e2e-capacity and/or forward: compare with this worker binary, an earlier build of ./worker fed by the same api, instead of the bare asynq baselines (before/after ratios, to report)")
	fs.StringVar(&o.only, "only", "", "comma-separated targets to run (ingest, e2e-rate, e2e-capacity, e2e-latency, forward, memory, console); default all")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.before != "" {
		for t := range strings.SplitSeq(o.only, ",") {
			if t = strings.TrimSpace(t); t != "e2e-capacity" && t != "forward" {
				return o, fmt.Errorf("-before needs -only e2e-capacity, forward or both, not %q", t)
			}
		}
	}
	if o.smoke {
		o.rounds, o.e2eRounds = 1, 1
		o.warmup, o.ingestDur = 100*time.Millisecond, 400*time.Millisecond
		o.maxRate = 20000
		o.rate, o.e2eDur = 400, 500*time.Millisecond
		o.drainEvents = 300
		o.latDur = 500 * time.Millisecond
		o.memEvents = 100
		o.consoleExecs, o.consoleRounds = 2000, 2
	}
	o.memCusts = max(1, o.memEvents/10)
	return o, nil
}

func (o options) wants(target string) bool {
	if o.only == "" {
		return true
	}
	for t := range strings.SplitSeq(o.only, ",") {
		if strings.TrimSpace(t) == target || (t == "memory" && (target == "index" || target == "marker")) {
			return true
		}
	}
	return false
}

// bench is one run of the harness: its Redis, binaries, receivers and
// the recorder of handler starts.
type bench struct {
	opt    options
	out    io.Writer
	dir    string
	bins   map[string]string
	self   string
	redis  *redisServer
	rec    *recorder
	corpus *corpus
	secret string
	load   string // ingest load generator: loadWrk or loadGo
	wrk    string // path of wrk, with loadWrk
	wrkDir string // where wrk's corpus file and scripts go

	api     *proc // stripeq's api for the end-to-end targets
	apiAddr string
	results []line

	// Redis CPU µs per event, medians, for the end-to-end line: behind
	// the api and the plain receiver (ingest), and behind stripeq's
	// worker and the bare asynq server (e2e-capacity); 0 when not run.
	redisIngest, redisIngestBase float64
	redisWorker, redisWorkerBase float64
}

// line is one target's result.
type line struct {
	target, figure, baseline, ratio, goal, verdict string
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	opt, err := parseOptions(args, out)
	if err != nil {
		return err
	}
	b := &bench{opt: opt, out: out, secret: stripetest.Secret}
	var why string
	if b.load, b.wrk, why, err = chooseLoad(opt.load); err != nil {
		return err
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "stripeq-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)

	started := time.Now()
	fmt.Fprintf(out, "stripeq bench: %d cores (GOMAXPROCS %d), %s/%s, %s; building api and worker…\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if b.bins, err = build(ctx, b.dir); err != nil {
		return err
	}
	if b.redis, err = startRedis(ctx, b.dir); err != nil {
		return err
	}
	defer b.redis.Kill()
	defer b.redis.rdb.Close()
	if b.rec, err = startRecorder(); err != nil {
		return err
	}
	defer b.rec.close()
	defer func() {
		if b.api != nil {
			b.api.stop()
		}
	}()

	n := int(opt.maxRate*(opt.warmup+opt.ingestDur).Seconds()) + 1000
	n = max(n, int(opt.rate*opt.e2eDur.Seconds())+100, opt.drainEvents, int(opt.latRate*opt.latDur.Seconds())+100)
	// About ten events per customer, each with its own subscription,
	// invoice, charge…, as a real account's: the index's customer and ref
	// sets and the worker's records are then many small ones, not one
	// shared by every event.
	b.corpus = newCorpus(n, max(1, n/10), b.secret)
	fmt.Fprintf(out, "redis-server %s; %d unique events of %s, %.0f bytes on average\n",
		b.redis.Addr, n, strings.Join(mix, ", "), b.corpus.meanBody())
	if opt.wants("ingest") {
		fmt.Fprintf(out, "ingest load generator: %s (%s)\n", b.load, why)
		if b.load == loadWrk {
			if b.wrkDir = wrkDir(b.dir); b.wrkDir != b.dir {
				defer os.RemoveAll(b.wrkDir)
			}
		}
	}

	if opt.wants("ingest") {
		if err := b.ingest(ctx); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	for _, t := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"e2e-rate", b.e2eRate},
		{"e2e-capacity", b.e2eCapacity},
		{"e2e-latency", b.e2eLatency},
		{"forward", b.forward},
		{"memory", b.memory},
		{"console", b.console},
	} {
		if !opt.wants(t.name) {
			continue
		}
		if err := t.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	b.redisEndToEnd()
	b.print(time.Since(started))
	return nil
}

func (b *bench) logf(format string, args ...any) { fmt.Fprintf(b.out, "  "+format+"\n", args...) }

func (b *bench) print(took time.Duration) {
	mode := fmt.Sprintf("medians over %d end-to-end rounds", b.opt.e2eRounds)
	if b.opt.wants("ingest") {
		mode = fmt.Sprintf("medians over %d ingest rounds (load: %s) and %d end-to-end rounds", b.opt.rounds, b.load, b.opt.e2eRounds)
	}
	if b.opt.smoke {
		mode = "SMOKE: one tiny round, figures are not meaningful"
	}
	fmt.Fprintf(b.out, "\nresults (%s; %d cores; %v)\n", mode, runtime.NumCPU(), took.Round(time.Second))
	// Issues 20's and 29's targets first, each with PASS, FAIL or n/a (not measured
	// as the issue sets it); then the lines that only report.
	targets, reports := []line{{target: "target", figure: "stripeq", baseline: "baseline", ratio: "ratio", goal: "goal (issues 20, 29)"}}, []line{}
	for _, l := range b.results {
		if l.verdict == "—" {
			reports = append(reports, l)
		} else {
			targets = append(targets, l)
		}
	}
	var w [5]int
	for _, l := range append(targets[:1:1], b.results...) {
		for i, f := range []string{l.target, l.figure, l.baseline, l.ratio, l.goal} {
			w[i] = max(w[i], utf8.RuneCountInString(f), 8)
		}
	}
	pad := func(s string, n int) string { return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s))) }
	row := func(l line) {
		fmt.Fprintln(b.out, strings.TrimRight(pad(l.target, w[0])+"  "+pad(l.figure, w[1])+"  "+pad(l.baseline, w[2])+"  "+pad(l.ratio, w[3])+"  "+pad(l.goal, w[4])+"  "+l.verdict, " "))
	}
	for _, l := range targets {
		row(l)
	}
	if len(reports) > 0 {
		fmt.Fprintln(b.out, "report only:")
		for _, l := range reports {
			row(l)
		}
	}
}

// redisEndToEnd adds issue 29's line, the Redis CPU an event costs end to
// end: at ingest (behind the api) plus in the worker (the e2e-capacity
// drain), against asynq alone (behind the plain receiver, plus behind the
// bare asynq server). It needs both targets in the run.
func (b *bench) redisEndToEnd() {
	if b.redisIngest == 0 || b.redisWorker == 0 || b.redisIngestBase == 0 || b.redisWorkerBase == 0 {
		return
	}
	s, base := b.redisIngest+b.redisWorker, b.redisIngestBase+b.redisWorkerBase
	ratio := s / base
	b.results = append(b.results, line{
		target:   "redis e2e",
		figure:   fmt.Sprintf("%.0f µs/event (ingest %.0f + worker %.0f)", s, b.redisIngest, b.redisWorker),
		baseline: fmt.Sprintf("%.0f µs/event (plain receiver %.0f + bare server %.0f)", base, b.redisIngestBase, b.redisWorkerBase),
		ratio:    fmt.Sprintf("%.2f×", ratio),
		goal:     "≤ 1.3× asynq's",
		verdict:  verdict(ratio <= 1.3),
	})
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// startAPI starts stripeq's api, as deployed: default settings (but for
// env, NAME=value), JSON logs at info level with one access-log line per
// request.
func (b *bench) startAPI(ctx context.Context, env ...string) (*proc, error) {
	addr, err := proctest.PickFreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc("api", b.bins["api"], b.dir, append([]string{
		"API_ADDR=" + addr, "REDIS_URL=redis://" + b.redis.Addr + "/0", "STRIPE_WEBHOOK_SECRET=" + b.secret,
	}, env...))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/healthz", 20*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	b.apiAddr = addr
	return p, nil
}

// startBaselineReceiver starts the plain receiver, or with kind "ceiling"
// the ceiling receiver (baseline.go).
func (b *bench) startBaselineReceiver(ctx context.Context, kind string) (*proc, string, error) {
	addr, err := proctest.PickFreeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := startProc("baseline-"+kind, b.self, b.dir, []string{
		childEnv + "=" + kind, "BENCH_ADDR=" + addr, "BENCH_REDIS_ADDR=" + b.redis.Addr, "BENCH_SECRET=" + b.secret,
	})
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/healthz", 20*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

// startWorker starts stripeq's worker (stripeq true) or the baseline
// worker, and waits until its asynq server is registered.
func (b *bench) startWorker(ctx context.Context, stripeq bool) (*proc, error) {
	var p *proc
	var err error
	if stripeq {
		p, err = startProc("worker", b.bins["worker"], b.dir, b.workerEnv())
	} else if b.opt.before != "" {
		p, err = startProc("worker-before", b.opt.before, b.dir, b.workerEnv())
	} else {
		p, err = startProc("baseline-worker", b.self, b.dir, []string{
			childEnv + "=worker", "BENCH_REDIS_ADDR=" + b.redis.Addr, "BENCH_RECORDER=" + b.rec.url,
			fmt.Sprintf("BENCH_CONCURRENCY=%d", b.opt.concurrency),
		})
	}
	if err != nil {
		return nil, err
	}
	return b.registered(ctx, p)
}

// workerEnv is the environment of stripeq's worker in the end-to-end
// targets.
func (b *bench) workerEnv() []string {
	return []string{
		"REDIS_URL=redis://" + b.redis.Addr + "/0", "STRIPE_SECRET_KEY=sk_test_bench", "STRIPE_API_BASE=" + b.rec.url,
		fmt.Sprintf("WORKER_CONCURRENCY=%d", b.opt.concurrency), fmt.Sprintf("GLOBAL_CONCURRENCY=%d", b.opt.global),
	}
}

// registered waits until p's asynq server is registered, and stops p if
// it is not within 20 s.
func (b *bench) registered(ctx context.Context, p *proc) (*proc, error) {
	insp := asynq.NewInspectorFromRedisClient(b.redis.rdb)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if servers, err := insp.Servers(); err == nil && len(servers) > 0 {
			return p, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("%s exited:\n%s", p.Name, p.tail())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not register with asynq within 20s:\n%s", p.Name, p.tail())
		}
	}
}

// rawSender enqueues the corpus's events straight into asynq, as the
// baseline of the end-to-end targets: no HTTP, no verification.
func (b *bench) rawSender(client *asynq.Client, c *corpus) sender {
	return func() (sendFunc, func()) {
		return func(ctx context.Context, i int) error {
			_, err := client.EnqueueContext(ctx, baselineTask(c.types[i], eventID(i), c.body(i)))
			return err
		}, func() {}
	}
}

// count returns the length of a list or the cardinality of a sorted set.
func count(ctx context.Context, rdb *redis.Client, key string) int64 {
	switch t, _ := rdb.Type(ctx, key).Result(); t {
	case "list":
		return rdb.LLen(ctx, key).Val()
	case "zset":
		return rdb.ZCard(ctx, key).Val()
	}
	return 0
}

var errLost = errors.New("events lost")
