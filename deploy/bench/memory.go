package main

import (
	"context"
	"fmt"
	"time"

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
		s, rec, err := b.e2eRun(ctx, stripeq, c)
		if err != nil {
			return err
		}
		used0, err := b.redis.usedMemory(ctx)
		if err != nil {
			return err
		}
		w, err := b.startWorker(ctx, stripeq)
		if err != nil {
			return err
		}
		res := closedLoop(ctx, s, 8, 0, time.Minute, n)
		handled := rec.waitHandled(res.okAll, time.Minute)
		err = b.checkStored(ctx, stripeq, c, res.okAll, handled)
		w.stop()
		if err == nil && res.okAll != n {
			err = fmt.Errorf("stored %d of %d events: %v", res.okAll, n, res.errors)
		}
		if err != nil {
			return err
		}
		if figures[k], err = b.measureMemory(ctx, n, used0); err != nil {
			return err
		}
		f := figures[k]
		b.logf("memory %s %d completed executions: task hash %.0f B + completed set %.0f B + index %.0f B = %.0f B each; used_memory Δ %.0f B per event",
			kindName(stripeq), n, f.task, f.completed, f.index, f.perExecution(), f.used)
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
			target:   "index",
			figure:   fmt.Sprintf("%.0f B/event (stripeq:idx:*)", s.index),
			baseline: "0 (no index)",
			ratio:    fmt.Sprintf("+%.0f%%", 100*s.index/(s.perExecution()-s.index)),
			goal:     "report",
			verdict:  "—",
		})
	return nil
}

// memFigures are bytes per execution.
type memFigures struct {
	task      float64 // MEMORY USAGE of asynq:{q}:t:<id>, mean of a sample
	completed float64 // MEMORY USAGE of asynq:{q}:completed / n
	index     float64 // every stripeq:idx:{q}:* key / n
	used      float64 // INFO used_memory growth / n (records and fixed keys too)
}

func (f memFigures) perExecution() float64 { return f.task + f.completed + f.index }

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
	iter := rdb.Scan(ctx, 0, execindex.KeyPrefix(queue)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		u, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			return f, err
		}
		f.index += float64(u)
	}
	if err := iter.Err(); err != nil {
		return f, err
	}
	f.index /= float64(n)
	used, err := b.redis.usedMemory(ctx)
	if err != nil {
		return f, err
	}
	f.used = float64(used-used0) / float64(n)
	return f, nil
}
