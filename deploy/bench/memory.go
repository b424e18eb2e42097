package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// memory measures the Redis memory a retained execution costs: -memory-events
// events over one customer in ten, through the api and the worker until
// completed, against the same events enqueued raw (no headers, no index) and
// completed by the bare worker.
func (b *bench) memory(ctx context.Context) error {
	n := b.opt.memEvents
	c := newCorpus(n, b.opt.memCusts, b.secret)
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
	b.results = append(b.results,
		line{
			target:   "memory",
			figure:   fmt.Sprintf("%.0f B/execution (used_memory Δ %.0f)", s.perExecution(), s.used),
			baseline: fmt.Sprintf("%.0f B/task (used_memory Δ %.0f)", base.perExecution(), base.used),
			ratio:    fmt.Sprintf("%.2f×", s.perExecution()/base.perExecution()),
			goal:     fmt.Sprintf("report; %.0f-byte bodies", c.meanBody()),
			verdict:  "—",
		},
		line{
			target:   "memory/zstd",
			figure:   fmt.Sprintf("%.0f B/execution with PAYLOAD_COMPRESSION=zstd (used_memory Δ %.0f)", z.perExecution(), z.used),
			baseline: fmt.Sprintf("%.0f B/execution without", s.perExecution()),
			ratio:    fmt.Sprintf("%.2f×", z.perExecution()/s.perExecution()),
			goal:     "report (optional)",
			verdict:  "—",
		},
		line{
			target:   "marker",
			figure:   fmt.Sprintf("%.0f B/event kept for DEDUPE_WINDOW (stripeq:seen:*)", s.marker),
			baseline: fmt.Sprintf("%.0f B/task kept instead", base.perExecution()),
			ratio:    fmt.Sprintf("%.3f×", s.marker/base.perExecution()),
			goal:     "≤ 150 B/event",
			verdict:  verdict(s.marker > 0 && s.marker <= 150),
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
			figure:   fmt.Sprintf("%.0f B/event (stripeq:idx:*)", s.index),
			baseline: "0 (no index)",
			ratio:    fmt.Sprintf("+%.0f%%", 100*s.index/(s.perExecution()-s.index)),
			goal:     "report",
			verdict:  "—",
		})
	return nil
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
	used0, err := b.redis.usedMemory(ctx)
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
	f, err := b.measureMemory(ctx, n, used0)
	if err != nil {
		return f, err
	}
	b.logf("memory %s %d completed executions: task hash %.0f B + completed set %.0f B + index %.0f B + duplicate marker %.0f B = %.0f B each; used_memory Δ %.0f B per event",
		kindName(stripeq), n, f.task, f.completed, f.index, f.marker, f.perExecution(), f.used)
	return f, nil
}

// memFigures are bytes per execution.
type memFigures struct {
	task      float64 // MEMORY USAGE of asynq:{q}:t:<id>, mean of a sample
	completed float64 // MEMORY USAGE of asynq:{q}:completed / n
	index     float64 // every stripeq:idx:{q}:* key / n
	marker    float64 // every stripeq:seen:{q}:* key / n
	used      float64 // INFO used_memory growth / n (records and fixed keys too)
}

func (f memFigures) perExecution() float64 { return f.task + f.completed + f.index + f.marker }

func (b *bench) measureMemory(ctx context.Context, n int, used0 int64) (memFigures, error) {
	rdb := b.redis.rdb
	var f memFigures
	step := max(1, n/500)
	sampled := 0
	for i := 0; i < n; i += step {
		u, err := rdb.MemoryUsage(ctx, "asynq:{"+queue+"}:t:"+eventID(i), 0).Result()
		if err != nil {
			return f, fmt.Errorf("MEMORY USAGE of task %s: %w", eventID(i), err)
		}
		f.task += float64(u)
		sampled++
	}
	f.task /= float64(sampled)
	u, err := rdb.MemoryUsage(ctx, "asynq:{"+queue+"}:completed", 0).Result()
	if err != nil {
		return f, err
	}
	f.completed = float64(u) / float64(n)
	if f.index, err = sumMemory(ctx, rdb, execindex.KeyPrefix(queue)+"*"); err != nil {
		return f, err
	}
	f.index /= float64(n)
	if f.marker, err = sumMemory(ctx, rdb, "stripeq:seen:{"+queue+"}:*"); err != nil {
		return f, err
	}
	f.marker /= float64(n)
	used, err := b.redis.usedMemory(ctx)
	if err != nil {
		return f, err
	}
	f.used = float64(used-used0) / float64(n)
	return f, nil
}

// sumMemory returns the MEMORY USAGE of every key matching pattern, summed.
func sumMemory(ctx context.Context, rdb redis.UniversalClient, pattern string) (float64, error) {
	var sum float64
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		u, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			return 0, err
		}
		sum += float64(u)
	}
	return sum, iter.Err()
}
