package execindex

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
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

// scan is Scan over one shard's index: it finds the candidates, then
// checks them against the filter a chunk at a time and hands each
// chunk's matches to fn.
func (ix *Index) scan(ctx context.Context, f Filter, queue string, fn func([]Item) error) error {
	keys, excl, err := ix.scanKeys(ctx, f)
	if err != nil {
		return fmt.Errorf("execindex: scan: %w", err)
	}
	var cand []redis.Z
	if f.ID != "" {
		cand, err = ix.exactCandidates(ctx, f.ID)
	} else {
		hi, lo := scoreRange(f)
		cand, err = ix.driverCandidates(ctx, keys, hi, lo)
	}
	if err != nil {
		return fmt.Errorf("execindex: scan: %w", err)
	}
	for start := 0; start < len(cand); start += scanChunk {
		batch, err := ix.checkChunk(ctx, f, queue, keys, excl, cand[start:min(start+scanChunk, len(cand))])
		if err != nil {
			return fmt.Errorf("execindex: scan: %w", err)
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

// scanKeys returns the sets an entry must be in to match f, and those it
// must not be in. Each of the first is one set, or, for a type prefix, the
// type sets of the types under it, of which an entry is in at most one.
// A field's implicit value has no set: an entry must be in none of the
// field's other values' sets (implicit.go). With no set left it is the
// all set.
func (ix *Index) scanKeys(ctx context.Context, f Filter) (keys [][]string, excl []string, err error) {
	implicit, err := ix.rdb.HGetAll(ctx, keyspace.IndexImplicit(ix.queue)).Result()
	if err != nil {
		return nil, nil, err
	}
	for _, suf := range f.keys() {
		field, v, _ := strings.Cut(suf, ":")
		iv, isImplicit := implicit[field]
		isImplicit = isImplicit && iv == v
		switch {
		case field == "prefix":
			types, err := ix.typesUnder(ctx, f.typePrefix())
			if err != nil {
				return nil, nil, err
			}
			keys = append(keys, types)
			continue
		case field == "livemode" && isImplicit:
			excl = append(excl, keyspace.IndexSet(ix.queue, field, strconv.FormatBool(v != "true")))
			continue
		case field == FieldAPIVersion && isImplicit:
			others, err := ix.rdb.SMembers(ctx, keyspace.IndexValues(ix.queue, field)).Result()
			if err != nil {
				return nil, nil, err
			}
			for _, o := range others {
				if o != v {
					excl = append(excl, keyspace.IndexSet(ix.queue, field, o))
				}
			}
			continue
		}
		keys = append(keys, []string{ix.pre + suf})
	}
	if len(keys) == 0 {
		keys = append(keys, []string{keyspace.IndexAll(ix.queue)})
	}
	return keys, excl, nil
}

// scoreRange returns f's time range as the index's scores (unix ms),
// "+inf" and "-inf" where it is open.
func scoreRange(f Filter) (hi, lo string) {
	hi, lo = "+inf", "-inf"
	if !f.To.IsZero() {
		hi = strconv.FormatInt(f.To.UnixMilli(), 10)
	}
	if !f.From.IsZero() {
		lo = strconv.FormatInt(f.From.UnixMilli(), 10)
	}
	return hi, lo
}

// exactCandidates returns the execution id and its re-runs that the index
// holds, newest first.
func (ix *Index) exactCandidates(ctx context.Context, id string) ([]redis.Z, error) {
	ids := []string{id}
	reruns, err := ix.rdb.ZRange(ctx, keyspace.IndexReruns(ix.queue, id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	ids = append(ids, reruns...)
	sc, err := ix.rdb.ZMScore(ctx, keyspace.IndexAll(ix.queue), ids...).Result()
	if err != nil {
		return nil, err
	}
	var cand []redis.Z
	for i, id := range ids {
		if sc[i] != 0 {
			cand = append(cand, redis.Z{Member: id, Score: sc[i]})
		}
	}
	slices.SortFunc(cand, func(a, b redis.Z) int { return int(b.Score - a.Score) })
	return cand, nil
}

// driverCandidates returns the entries in [lo, hi] of the smallest of
// keys (the driver), newest first, read 5,000 at a time.
func (ix *Index) driverCandidates(ctx context.Context, keys [][]string, hi, lo string) ([]redis.Z, error) {
	driver, size := keys[0], int64(-1)
	for _, k := range keys {
		n := int64(0)
		for _, key := range k {
			c, err := ix.rdb.ZCard(ctx, key).Result()
			if err != nil {
				return nil, err
			}
			n += c
		}
		if size < 0 || n < size {
			driver, size = k, n
		}
	}
	var cand []redis.Z
	for _, key := range driver {
		for off := int64(0); ; off += 5000 {
			zs, err := ix.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: hi, Min: lo, Offset: off, Count: 5000}).Result()
			if err != nil {
				return nil, err
			}
			cand = append(cand, zs...)
			if len(zs) < 5000 {
				break
			}
		}
	}
	if len(driver) > 1 {
		// Newest first, as one set orders them: by score, then by
		// member, both descending.
		slices.SortStableFunc(cand, func(a, b redis.Z) int {
			if c := cmp.Compare(b.Score, a.Score); c != 0 {
				return c
			}
			return strings.Compare(b.Member.(string), a.Member.(string))
		})
		cand = slices.CompactFunc(cand, func(a, b redis.Z) bool { return a.Member == b.Member })
	}
	return cand, nil
}

// checkChunk checks a chunk of candidates in one pipeline: in every one
// of keys, in none of excl, and in one of f's states (asynq's, or archived when only the
// failure store keeps it). It returns those that match, as items of
// queue.
func (ix *Index) checkChunk(ctx context.Context, f Filter, queue string, keys [][]string, excl []string, chunk []redis.Z) ([]Item, error) {
	tpre, frec := keyspace.Task(ix.queue, ""), keyspace.FailRecord(ix.queue, "")
	ids := make([]string, len(chunk))
	for i, z := range chunk {
		ids[i] = z.Member.(string)
	}
	inSets := make([][]*redis.FloatSliceCmd, len(keys))
	states := make([]*redis.StringCmd, len(ids))
	kept := make([]*redis.IntCmd, len(ids))
	outSets := make([]*redis.FloatSliceCmd, len(excl))
	if _, err := ix.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			for _, key := range k {
				inSets[i] = append(inSets[i], p.ZMScore(ctx, key, ids...))
			}
		}
		for i, key := range excl {
			outSets[i] = p.ZMScore(ctx, key, ids...)
		}
		for i, id := range ids {
			states[i] = p.HGet(ctx, tpre+id, "state")
			kept[i] = p.Exists(ctx, frec+id)
		}
		return nil
	}); err != nil && err != redis.Nil {
		return nil, err
	}
	var batch []Item
next:
	for i, id := range ids {
		for _, k := range inSets {
			if !slices.ContainsFunc(k, func(c *redis.FloatSliceCmd) bool { return c.Val()[i] != 0 }) {
				continue next
			}
		}
		if slices.ContainsFunc(outSets, func(c *redis.FloatSliceCmd) bool { return c.Val()[i] != 0 }) {
			continue
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
	return batch, nil
}

func msTime(score float64) time.Time { return time.UnixMilli(int64(score)) }

// typesUnder returns the type sets of the types under prefix p (those
// that start with p and a dot), sorted, from the values set of types.
func (ix *Index) typesUnder(ctx context.Context, p string) ([]string, error) {
	types, err := ix.rdb.SMembers(ctx, keyspace.IndexValues(ix.queue, FieldType)).Result()
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, t := range types {
		if strings.HasPrefix(t, p+".") {
			keys = append(keys, keyspace.IndexSet(ix.queue, FieldType, t))
		}
	}
	slices.Sort(keys)
	return keys, nil
}
