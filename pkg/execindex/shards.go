package execindex

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Shards is the execution index of a sharded queue (QUEUE_SHARDS): one
// [Index] per shard queue, each in its own shard's hash tag, seen as one.
// With a single shard every method is the method of that one Index.
type Shards struct {
	opts    stripetask.Options
	queues  []string
	indexes []*Index
}

// NewShards returns the index of every queue of o ([stripetask.Queues]) in
// rdb.
func NewShards(rdb redis.UniversalClient, o stripetask.Options) *Shards {
	s := &Shards{opts: o, queues: stripetask.Queues(o)}
	for _, q := range s.queues {
		s.indexes = append(s.indexes, New(rdb, q))
	}
	return s
}

// Queues returns the shard queues, in shard order. The caller must not
// modify it.
func (s *Shards) Queues() []string { return s.queues }

// Name describes the queues for people: "stripe", or "stripe-0 … stripe-2".
func (s *Shards) Name() string {
	if len(s.queues) == 1 {
		return s.queues[0]
	}
	return s.queues[0] + " … " + s.queues[len(s.queues)-1]
}

// Index returns the index of queue, or nil when queue is not a shard.
func (s *Shards) Index(queue string) *Index {
	if i := slices.Index(s.queues, queue); i >= 0 {
		return s.indexes[i]
	}
	return nil
}

// For returns the index of the shard task id belongs to
// ([stripetask.QueueFor]).
func (s *Shards) For(id string) *Index { return s.Index(stripetask.QueueFor(id, s.opts)) }

// Locate returns the queues where task id may be, most likely first: its
// own shard, then the others (a task stays where it was enqueued, even if
// QUEUE_SHARDS changed since).
func (s *Shards) Locate(id string) []string {
	own := stripetask.QueueFor(id, s.opts)
	out := make([]string, 0, len(s.queues))
	out = append(out, own)
	for _, q := range s.queues {
		if q != own {
			out = append(out, q)
		}
	}
	return out
}

// Add indexes task id in its shard; see [Index.Add].
func (s *Shards) Add(ctx context.Context, id string, m stripetask.Metadata, t time.Time) error {
	return s.For(id).Add(ctx, id, m, t)
}

// AddTo queues on p the writes that index task id in its shard; see
// [Index.AddTo].
func (s *Shards) AddTo(ctx context.Context, p redis.Pipeliner, id string, m stripetask.Metadata, t time.Time) redis.Cmder {
	return s.For(id).AddTo(ctx, p, id, m, t)
}

// AddEntriesTo is [Index.AddEntriesTo] with each entry in its shard: one
// merged batch per shard.
func (s *Shards) AddEntriesTo(ctx context.Context, p redis.Pipeliner, entries []Entry) []redis.Cmder {
	if len(s.indexes) == 1 {
		return s.indexes[0].AddEntriesTo(ctx, p, entries)
	}
	out := make([]redis.Cmder, len(entries))
	byShard := make(map[*Index][]int, len(s.indexes))
	for i, e := range entries {
		ix := s.For(e.ID)
		byShard[ix] = append(byShard[ix], i)
	}
	for _, ix := range s.indexes {
		at := byShard[ix]
		if len(at) == 0 {
			continue
		}
		part := make([]Entry, len(at))
		for j, i := range at {
			part[j] = entries[i]
		}
		for j, c := range ix.AddEntriesTo(ctx, p, part) {
			out[at[j]] = c
		}
	}
	return out
}

// SetMaxExamined is [Index.SetMaxExamined] for every shard.
func (s *Shards) SetMaxExamined(n int) {
	for _, ix := range s.indexes {
		ix.SetMaxExamined(n)
	}
}

// Query is [Index.Query] over every shard: each shard's first
// offset+limit matches, merged newest first, with counts and totals
// summed. Items carry their queue.
func (s *Shards) Query(ctx context.Context, f Filter, offset, limit int) (Page, error) {
	if len(s.indexes) == 1 {
		p, err := s.indexes[0].Query(ctx, f, offset, limit)
		setQueue(p.Items, s.queues[0])
		return p, err
	}
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	limit = min(max(limit, 1), MaxLimit)
	offset = max(offset, 0)
	if offset > MaxOffset {
		return Page{}, fmt.Errorf("%w: offset %d is past %d; narrow the filter or the time range", ErrInvalidFilter, offset, MaxOffset)
	}
	want := offset + limit
	out := Page{Counts: Counts{}}
	// One cursor per shard; each reads its shard in pages of at most
	// MaxLimit, only as far as the merge needs.
	type cursor struct {
		ix    *Index
		items []Item
		next  int // offset of the shard's next page
		done  bool
	}
	fill := func(c *cursor, first bool) error {
		n := min(want-c.next, MaxLimit)
		if n <= 0 {
			c.done = true
			return nil
		}
		p, err := c.ix.Query(ctx, f, c.next, n)
		if err != nil {
			return err
		}
		setQueue(p.Items, c.ix.Queue())
		if first {
			for st, k := range p.Counts {
				out.Counts[st] += k
			}
			out.Total += p.Total
			out.KeptOnly += p.KeptOnly
		}
		out.Capped = out.Capped || p.Capped
		out.Dropped += p.Dropped
		c.items = append(c.items, p.Items...)
		c.next += len(p.Items)
		c.done = len(p.Items) < n || c.next >= p.Total
		return nil
	}
	cursors := make([]*cursor, len(s.indexes))
	for i, ix := range s.indexes {
		cursors[i] = &cursor{ix: ix}
		if err := fill(cursors[i], true); err != nil {
			return Page{}, err
		}
	}
	for taken := 0; taken < want; taken++ {
		var best *cursor
		for _, c := range cursors {
			if len(c.items) == 0 && !c.done {
				if err := fill(c, false); err != nil {
					return Page{}, err
				}
			}
			if len(c.items) > 0 && (best == nil || newer(c.items[0], best.items[0])) {
				best = c
			}
		}
		if best == nil {
			break
		}
		if taken >= offset {
			out.Items = append(out.Items, best.items[0])
		}
		best.items = best.items[1:]
	}
	return out, nil
}

// newer orders items newest first, ties by ID for a stable order.
func newer(a, b Item) bool {
	if !a.ReceivedAt.Equal(b.ReceivedAt) {
		return a.ReceivedAt.After(b.ReceivedAt)
	}
	return a.ID > b.ID
}

func setQueue(items []Item, queue string) {
	for i := range items {
		items[i].Queue = queue
	}
}

// IDs is [Index.IDs] over every shard, newest first, with the total
// summed. At most max items are returned.
func (s *Shards) IDs(ctx context.Context, f Filter, max int) ([]Item, int, error) {
	var items []Item
	total := 0
	for i, ix := range s.indexes {
		its, n, err := ix.IDs(ctx, f, max)
		if err != nil {
			return nil, 0, err
		}
		setQueue(its, s.queues[i])
		items = append(items, its...)
		total += n
	}
	if len(s.indexes) > 1 {
		slices.SortStableFunc(items, func(a, b Item) int {
			switch {
			case newer(a, b):
				return -1
			case newer(b, a):
				return 1
			}
			return 0
		})
	}
	if len(items) > max {
		items = items[:max]
	}
	return items, total, nil
}

// Values is [Index.Values] over every shard, with the counts of a value
// summed.
func (s *Shards) Values(ctx context.Context, field string) ([]ValueCount, error) {
	if len(s.indexes) == 1 {
		return s.indexes[0].Values(ctx, field)
	}
	sum := map[string]int64{}
	for _, ix := range s.indexes {
		vs, err := ix.Values(ctx, field)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			sum[v.Value] += v.Count
		}
	}
	out := make([]ValueCount, 0, len(sum))
	for v, n := range sum {
		out = append(out, ValueCount{v, n})
	}
	slices.SortFunc(out, func(a, b ValueCount) int { return strings.Compare(a.Value, b.Value) })
	return out, nil
}

// Reconcile runs [Index.Reconcile] on every shard and returns how many
// entries it added in all.
func (s *Shards) Reconcile(ctx context.Context, tasks TaskGetter) (int, error) {
	added := 0
	for _, ix := range s.indexes {
		n, err := ix.Reconcile(ctx, tasks)
		added += n
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// Prune runs [Index.Prune] on every shard and returns how many entries it
// dropped in all.
func (s *Shards) Prune(ctx context.Context) (int, error) {
	dropped := 0
	for _, ix := range s.indexes {
		n, err := ix.Prune(ctx)
		dropped += n
		if err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}
