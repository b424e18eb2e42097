package execindex

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
)

// scanChunk is how many entries Scan checks per round trip.
const scanChunk = 500

// Scan calls fn with every execution matching f, in batches of at most
// 500, newest first within each shard, shard after shard. Unlike Query it
// has no cap: it is for exports and bulk actions over any number of
// executions. It reads the IDs of the filter's smallest set first, then
// checks them in chunks with a few pipelined commands each, so it never
// holds Redis for long. An error of fn stops it and is returned.
func (s *Shards) Scan(ctx context.Context, f Filter, fn func([]Item) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	for i, ix := range s.indexes {
		if err := ix.scan(ctx, f, s.queues[i], fn); err != nil {
			return err
		}
	}
	return nil
}

func (ix *Index) scan(ctx context.Context, f Filter, queue string, fn func([]Item) error) error {
	var keys []string
	for _, suf := range f.keys() {
		keys = append(keys, ix.pre+suf)
	}
	if len(keys) == 0 {
		keys = append(keys, ix.pre+"all")
	}
	hi, lo := "+inf", "-inf"
	if !f.To.IsZero() {
		hi = strconv.FormatInt(f.To.UnixMilli(), 10)
	}
	if !f.From.IsZero() {
		lo = strconv.FormatInt(f.From.UnixMilli(), 10)
	}
	// The candidates: the smallest set in range, or the exact ID and its
	// re-runs.
	var cand []redis.Z
	if f.ID != "" {
		ids := []string{f.ID}
		reruns, err := ix.rdb.ZRange(ctx, ix.pre+"reruns:"+f.ID, 0, -1).Result()
		if err != nil {
			return fmt.Errorf("execindex: scan: %w", err)
		}
		ids = append(ids, reruns...)
		sc, err := ix.rdb.ZMScore(ctx, ix.pre+"all", ids...).Result()
		if err != nil {
			return fmt.Errorf("execindex: scan: %w", err)
		}
		for i, id := range ids {
			if sc[i] != 0 {
				cand = append(cand, redis.Z{Member: id, Score: sc[i]})
			}
		}
		slices.SortFunc(cand, func(a, b redis.Z) int { return int(b.Score - a.Score) })
	} else {
		driver, size := keys[0], int64(-1)
		for _, k := range keys {
			n, err := ix.rdb.ZCard(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("execindex: scan: %w", err)
			}
			if size < 0 || n < size {
				driver, size = k, n
			}
		}
		for off := int64(0); ; off += 5000 {
			zs, err := ix.rdb.ZRevRangeByScoreWithScores(ctx, driver, &redis.ZRangeBy{Max: hi, Min: lo, Offset: off, Count: 5000}).Result()
			if err != nil {
				return fmt.Errorf("execindex: scan: %w", err)
			}
			cand = append(cand, zs...)
			if len(zs) < 5000 {
				break
			}
		}
	}
	tpre, frec := "asynq:{"+ix.queue+"}:t:", failures.KeyPrefix(ix.queue)+"t:"
	for start := 0; start < len(cand); start += scanChunk {
		chunk := cand[start:min(start+scanChunk, len(cand))]
		ids := make([]string, len(chunk))
		for i, z := range chunk {
			ids[i] = z.Member.(string)
		}
		var inSets []*redis.FloatSliceCmd
		states := make([]*redis.StringCmd, len(ids))
		kept := make([]*redis.IntCmd, len(ids))
		if _, err := ix.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				inSets = append(inSets, p.ZMScore(ctx, k, ids...))
			}
			for i, id := range ids {
				states[i] = p.HGet(ctx, tpre+id, "state")
				kept[i] = p.Exists(ctx, frec+id)
			}
			return nil
		}); err != nil && err != redis.Nil {
			return fmt.Errorf("execindex: scan: %w", err)
		}
		var batch []Item
	next:
		for i, id := range ids {
			for _, c := range inSets {
				if c.Val()[i] == 0 {
					continue next
				}
			}
			st := states[i].Val()
			if st == "" && kept[i].Val() == 1 {
				st = StateArchived
			}
			if st == "" || (len(f.States) > 0 && !slices.Contains(f.States, st)) {
				continue
			}
			batch = append(batch, Item{ID: id, ReceivedAt: msTime(chunk[i].Score), State: st, Queue: queue})
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func msTime(score float64) time.Time { return time.UnixMilli(int64(score)) }
