package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// memory measures the Redis memory a retained execution costs: -memory-events
// events over one customer in ten, through the api and the worker until
// completed, against the same events enqueued raw (no headers, no index) and
// completed by the bare worker.
func (b *bench) memory(ctx context.Context) error {
	n := b.opt.memEvents
	c := newCorpus(n, b.opt.memCusts, b.secret)
	// Redis 7 allocates a latency histogram for each command the first
	// time it runs (latency-tracking), about 1 MB for stripeq's, which
	// would be charged to the first run's executions.
	if err := b.redis.rdb.ConfigSet(ctx, "latency-tracking", "no").Err(); err != nil {
		b.logf("memory: CONFIG SET latency-tracking no: %v (Redis before 7?)", err)
	}
	var figures [2]memFigures
	for k, stripeq := range []bool{true, false} {
		f, err := b.memoryRun(ctx, c, stripeq)
		if err != nil {
			return err
		}
		figures[k] = f
	}
	// PAYLOAD_COMPRESSION=zstd, through an api of its own.
	if b.api != nil {
		b.api.stop()
	}
	api, err := b.startAPI(ctx, "PAYLOAD_COMPRESSION=zstd")
	if err != nil {
		return err
	}
	b.api = api
	z, err := b.memoryRun(ctx, c, true)
	api.stop()
	b.api = nil // the next target starts a default one
	if err != nil {
		return fmt.Errorf("with PAYLOAD_COMPRESSION=zstd: %w", err)
	}
	s, base := figures[0], figures[1]
	agree := fmt.Sprintf("used_memory Δ %.0f less clients %.0f: %+.1f%%", s.used, s.clients, 100*s.gap())
	b.results = append(b.results,
		line{
			target:   "memory",
			figure:   fmt.Sprintf("%.0f B/execution (%s)", s.perExecution(), agree),
			baseline: fmt.Sprintf("%d B target; bare asynq task %.0f B", memoryTarget, base.perExecution()),
			ratio:    fmt.Sprintf("%.2f×", s.perExecution()/memoryTarget),
			goal:     fmt.Sprintf("≤ %s B/execution without compression; %.0f-byte bodies", thousands(memoryTarget), c.meanBody()),
			verdict:  verdict(s.perExecution() <= memoryTarget),
		},
		line{
			target:   "memory/zstd",
			figure:   fmt.Sprintf("%.0f B/execution with PAYLOAD_COMPRESSION=zstd (used_memory Δ %.0f less clients %.0f)", z.perExecution(), z.used, z.clients),
			baseline: fmt.Sprintf("%.0f B/execution without", s.perExecution()),
			ratio:    fmt.Sprintf("%.2f×", z.perExecution()/s.perExecution()),
			goal:     "report",
			verdict:  "—",
		},
		line{
			target:   "marker",
			figure:   fmt.Sprintf("%.0f B/event kept for DEDUPE_WINDOW (%s*)", s.marker, keyspace.Seen(queue, "")),
			baseline: fmt.Sprintf("%.0f B/task kept instead", base.perExecution()),
			ratio:    fmt.Sprintf("%.3f×", s.marker/base.perExecution()),
			goal:     "report",
			verdict:  "—",
		},
		line{
			// What 1 event/s sustained keeps in Redis: every execution for
			// TASK_RETENTION (72 h) and its marker for DEDUPE_WINDOW (7 days),
			// against keeping the whole task for the 7-day window, as
			// deduplicating by the task alone requires.
			target: "memory/ev/s",
			figure: fmt.Sprintf("%.2f GB (72 h of executions + 7 days of markers)",
				(s.perExecution()*sustain72h+s.marker*(sustain7d-sustain72h))/1e9),
			baseline: fmt.Sprintf("%.2f GB (bare tasks kept 7 days)", base.perExecution()*sustain7d/1e9),
			ratio:    fmt.Sprintf("%.2f×", (s.perExecution()*sustain72h+s.marker*(sustain7d-sustain72h))/(base.perExecution()*sustain7d)),
			goal:     "report",
			verdict:  "—",
		},
		line{
			target:   "index",
			figure:   fmt.Sprintf("%.0f B/event (%s*; keys hash entry %.0f)", s.index, keyspace.Index(queue), s.indexParts["keys"]),
			baseline: "0 (no index)",
			ratio:    fmt.Sprintf("+%.0f%%", 100*s.index/(s.perExecution()-s.index)),
			goal:     "report",
			verdict:  "—",
		})
	return nil
}

// memoryTarget is issue 20's bound on Redis bytes per retained execution,
// without compression.
const memoryTarget = 5530

// thousands formats n with comma separators: 5,530.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Seconds of one event per second kept for 72 hours and for 7 days.
const (
	sustain72h = 72 * 3600
	sustain7d  = 7 * 24 * 3600
)

// memoryRun sends c through stripeq (api and worker) or the baseline until
// every event is handled, and measures what stays in Redis.
func (b *bench) memoryRun(ctx context.Context, c *corpus, stripeq bool) (memFigures, error) {
	n := c.len()
	s, rec, err := b.e2eRun(ctx, stripeq, c)
	if err != nil {
		return memFigures{}, err
	}
	stats0, err := b.redis.memoryStats(ctx)
	if err != nil {
		return memFigures{}, err
	}
	w, err := b.startWorker(ctx, stripeq)
	if err != nil {
		return memFigures{}, err
	}
	res := closedLoop(ctx, s, 8, 0, time.Minute, n)
	handled := rec.waitHandled(res.okAll, time.Minute)
	err = b.checkStored(ctx, stripeq, c, res.okAll, handled)
	w.stop()
	if err == nil && res.okAll != n {
		err = fmt.Errorf("stored %d of %d events: %v", res.okAll, n, res.errors)
	}
	if err != nil {
		return memFigures{}, err
	}
	f, err := b.measureMemory(ctx, n, stats0)
	if err != nil {
		return f, err
	}
	b.logf("memory %s %d completed executions, bytes each: %s = %.0f B; not per execution: %s; all %.0f B vs used_memory Δ %.0f B less client buffers %.0f B = %.0f B (%+.1f%%)",
		b.kindName(stripeq), n, f.parts.sum(execParts), f.perExecution(), f.parts.sum(otherParts), f.all(), f.used, f.clients, f.used-f.clients, 100*f.gap())
	if f.index > 0 {
		b.logf("memory %s index per family, bytes each: %s = %.0f B", b.kindName(stripeq), f.indexParts.sum(indexFamilies), f.index)
	}
	return f, nil
}

// The key families memFigures counts. execParts are what a retained
// execution keeps: they make up [memFigures.perExecution].
const (
	partTask      = "task hash"       // asynq:{q}:t:<id>
	partCompleted = "completed set"   // asynq:{q}:completed
	partIndex     = "index"           // stripeq:idx:{q}:*
	partAttempts  = "attempt history" // stripeq:fail:{q}:att:<id>
	partFailures  = "failure store"   // every other stripeq:fail:{q}:* key
	partMarker    = "duplicate marker"
	partKeyspace  = "keyspace"              // the main and expires dictionaries' bucket slots and expires entries, from MEMORY STATS
	partRecords   = "other keys of stripeq" // the worker's records of customers, subscriptions…, slots, alerts: per object or fixed, not per execution
	partAsynq     = "asynq's other keys"
	partOther     = "other keys"
)

var (
	execParts  = []string{partTask, partCompleted, partIndex, partAttempts, partFailures, partMarker, partKeyspace}
	otherParts = []string{partRecords, partAsynq, partOther}
	// indexFamilies are the index's key families (execindex.go), the part
	// of each key name between the prefix and the next ':'.
	indexFamilies = []string{"all", "type", "prefix", "livemode", "apiVersion", "customer", "account", "ref", "keys", "values", "reruns", "rerunseq"}
)

// memParts are bytes per execution by key family.
type memParts map[string]float64

// sum prints the parts in order, "name 12 + name 34 …", leaving out those
// that are 0 (but for the first).
func (p memParts) sum(order []string) string {
	var s []string
	for _, k := range order {
		if p[k] != 0 || len(s) == 0 && k == order[0] {
			s = append(s, fmt.Sprintf("%s %.0f", k, p[k]))
		}
	}
	for k, v := range p { // a family not in order: shown, never lost
		if !slices.Contains(order, k) && !slices.Contains(execParts, k) && !slices.Contains(otherParts, k) {
			s = append(s, fmt.Sprintf("%s %.0f", k, v))
		}
	}
	return strings.Join(s, " + ")
}

// memFigures are bytes per execution: every key in Redis after the run,
// by family (its MEMORY USAGE), divided by the executions retained.
type memFigures struct {
	parts      memParts // by family, execParts and otherParts
	indexParts memParts // the index, by indexFamilies
	task       float64  // parts[partTask]
	index      float64  // parts[partIndex]
	marker     float64  // parts[partMarker]
	used       float64  // used_memory's growth / n
	clients    float64  // the growth of the clients' buffers within used / n: the api's connections, not records
}

// dictEntry is the size of a Redis dictionary entry (64-bit), which
// MEMORY USAGE counts once per key.
const dictEntry = 24

// perExecution is what one retained execution keeps: its task hash, its
// share of the completed set, its index entry, its attempt history and
// any other failure-store key, its duplicate marker, and its keys' share
// of the keyspace's dictionaries.
func (f memFigures) perExecution() float64 {
	var sum float64
	for _, k := range execParts {
		sum += f.parts[k]
	}
	return sum
}

// all is every key and the keyspace's dictionaries, per execution.
func (f memFigures) all() float64 {
	var sum float64
	for _, v := range f.parts {
		sum += v
	}
	return sum
}

// gap is how far used_memory's growth (less the clients' buffers) is from
// what the key families account for, as a share of the latter.
func (f memFigures) gap() float64 { return (f.used - f.clients - f.all()) / f.all() }

// keyFamily names the family of key (execParts, otherParts), and for an
// index key its index family.
func keyFamily(key string) (part, index string) {
	asynqQ, idx := keyspace.Queue(queue), keyspace.Index(queue)
	switch {
	case strings.HasPrefix(key, asynqQ+"t:"):
		return partTask, ""
	case key == asynqQ+"completed":
		return partCompleted, ""
	case strings.HasPrefix(key, idx):
		fam, _, _ := strings.Cut(key[len(idx):], ":")
		return partIndex, fam
	case strings.HasPrefix(key, keyspace.FailAttempts(queue, "")):
		return partAttempts, ""
	case strings.HasPrefix(key, keyspace.Fail(queue)):
		return partFailures, ""
	case strings.HasPrefix(key, keyspace.Seen(queue, "")):
		return partMarker, ""
	case strings.HasPrefix(key, keyspace.Prefix):
		return partRecords, ""
	case strings.HasPrefix(key, keyspace.AsynqPrefix):
		return partAsynq, ""
	}
	return partOther, ""
}

// measureMemory sums the MEMORY USAGE (exact: SAMPLES 0) of every key in
// Redis by family, per execution, and the growth of used_memory since
// used0. Wherever a record of an execution lives (a key of its own, or a
// field of asynq's task hash), it is counted.
func (b *bench) measureMemory(ctx context.Context, n int, stats0 map[string]int64) (memFigures, error) {
	f := memFigures{}
	var err error
	if f.parts, f.indexParts, err = b.keyMemory(ctx, "*", n); err != nil {
		return f, err
	}
	f.task, f.index, f.marker = f.parts[partTask], f.parts[partIndex], f.parts[partMarker]
	stats, err := b.redis.memoryStats(ctx)
	if err != nil {
		return f, err
	}
	per := func(k string) float64 { return float64(stats[k]-stats0[k]) / float64(n) }
	// MEMORY USAGE counts a key's entry in the main dictionary but not
	// its bucket slots, nor its entry in the expires dictionary.
	f.parts[partKeyspace] = per("db.0.overhead.hashtable.main") - dictEntry*per("keys.count") + per("db.0.overhead.hashtable.expires")
	f.used, f.clients = per("total.allocated"), per("clients.normal")
	return f, nil
}

// keyMemory sums the MEMORY USAGE (exact: SAMPLES 0) of every key matching
// pattern, by family (keyFamily), and the index's keys by index family,
// each divided by n.
func (b *bench) keyMemory(ctx context.Context, pattern string, n int) (parts, index memParts, err error) {
	rdb := b.redis.rdb
	parts, index = memParts{}, memParts{}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return nil, nil, err
		}
		cmds := make([]*redis.IntCmd, len(keys))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, fmt.Errorf("MEMORY USAGE: %w", err)
		}
		for i, k := range keys {
			u, err := cmds[i].Result()
			if errors.Is(err, redis.Nil) {
				continue // expired meanwhile
			}
			if err != nil {
				return nil, nil, fmt.Errorf("MEMORY USAGE of %s: %w", k, err)
			}
			part, fam := keyFamily(k)
			parts[part] += float64(u) / float64(n)
			if part == partIndex {
				index[fam] += float64(u) / float64(n)
			}
		}
		if cursor = next; cursor == 0 {
			return parts, index, nil
		}
	}
}
