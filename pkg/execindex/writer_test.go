package execindex_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestWriter adds 3,000 entries from 16 goroutines: after Flush every one
// is in the index, and Close writes what was added after it.
func TestWriter(t *testing.T) {
	db := redistest.New(t)
	ix := execindex.New(db.Client, "stripe")
	w := execindex.NewWriter(db.Client, ix, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	const n, senders = 3000, 16
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := g; i < n; i += senders {
				id := fmt.Sprintf("evt_writer_%05d", i)
				w.Add(id, stripetask.Metadata{ID: id, Type: "invoice.paid", APIVersion: "2023-10-16", Customer: "cus_w", Created: 1}, time.Now())
			}
		})
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"all").Val(); got != n {
		t.Errorf("%d entries indexed after Flush, want %d", got, n)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"customer:cus_w").Val(); got != n {
		t.Errorf("%d entries in the customer's set, want %d", got, n)
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped() = %d", w.Dropped())
	}
	// An entry added after a Flush is written by Close.
	w.Add("evt_writer_last", stripetask.Metadata{ID: "evt_writer_last", Type: "invoice.paid", Created: 1}, time.Now())
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"all").Val(); got != n+1 {
		t.Errorf("%d entries indexed after Close, want %d", got, n+1)
	}
	// A request that outlives the server's shutdown may still add: the
	// entry is dropped (reconcile indexes it), without a panic.
	w.Add("evt_writer_late", stripetask.Metadata{ID: "evt_writer_late", Type: "invoice.paid", Created: 1}, time.Now())
	if w.Dropped() != 1 {
		t.Errorf("Dropped() after a late Add = %d, want 1", w.Dropped())
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestWriterRedisDown: entries that cannot be written are counted as
// dropped, Flush still returns, and the Writer goes on once Redis is back.
func TestWriterRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	db := redis.NewClient(opt)
	defer db.Close()
	ix := execindex.New(db, "stripe")
	w := execindex.NewWriter(db, ix, slog.New(slog.DiscardHandler))
	defer w.Close(context.Background())
	srv.Kill()
	w.Add("evt_down", stripetask.Metadata{ID: "evt_down", Type: "invoice.paid", Created: 1}, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush with Redis down: %v", err)
	}
	if w.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", w.Dropped())
	}
	srv.Restart()
	w.Add("evt_up", stripetask.Metadata{ID: "evt_up", Type: "invoice.paid", Created: 1}, time.Now())
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.ZScore(context.Background(), execindex.KeyPrefix("stripe")+"all", "evt_up").Err(); got != nil {
		t.Errorf("evt_up not indexed after Redis came back: %v", got)
	}
}

// TestAddEntriesLikeAddTo indexes the same entries one by one with AddTo
// in queue "one" and merged with AddEntriesTo in queue "all": every key of
// the two indexes holds the same, with fewer commands for the merged
// batch. The entries share types, customers and values, repeat an ID
// (its first time is kept), and include one with no type (not indexed).
// It runs on Redis and on miniredis.
func TestAddEntriesLikeAddTo(t *testing.T) {
	t0 := time.UnixMilli(1_760_000_000_000)
	md := func(id, typ, cus string, live bool, version string, refs ...string) stripetask.Metadata {
		return stripetask.Metadata{ID: id, Type: typ, Customer: cus, Livemode: live, APIVersion: version, Refs: refs, Created: 1}
	}
	entries := []execindex.Entry{
		{ID: "evt_1", Meta: md("evt_1", "invoice.paid", "cus_a", false, "2023-10-16", "in_1", "sub_1"), At: t0},
		{ID: "evt_2", Meta: md("evt_2", "invoice.paid", "cus_a", false, "2023-10-16", "in_2", "sub_1"), At: t0.Add(time.Millisecond)},
		{ID: "evt_3", Meta: md("evt_3", "charge.failed", "cus_b", true, "2026-08-26.dahlia", "ch_3", "a@example.com"), At: t0.Add(2 * time.Millisecond)},
		{ID: "evt_4", Meta: stripetask.Metadata{ID: "evt_4", Type: "customer.updated", Customer: "cus_a", ObjectID: "cus_a", Account: "acct_1", APIVersion: "2023-10-16", Source: "recovery"}, At: t0.Add(3 * time.Millisecond)},
		{ID: "evt_2", Meta: md("evt_2", "invoice.paid", "cus_a", false, "2023-10-16", "in_2", "sub_1"), At: t0.Add(9 * time.Millisecond)},
		{ID: "evt_5", Meta: stripetask.Metadata{ID: "evt_5"}, At: t0},
		{ID: "evt_6", Meta: md("evt_6", "charge.failed", "", false, "2023-10-16", "ch_6"), At: t0.Add(4 * time.Millisecond)},
	}
	for name, rdb := range redisAndMiniredis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			one, all := execindex.New(rdb, "one"), execindex.New(rdb, "all")
			var oneByOne int
			for _, e := range entries {
				p := rdb.Pipeline()
				c := one.AddTo(ctx, p, e.ID, e.Meta, e.At)
				oneByOne += p.Len()
				if _, err := p.Exec(ctx); err != nil && c != nil {
					t.Fatal(err)
				}
			}
			p := rdb.Pipeline()
			cmds := all.AddEntriesTo(ctx, p, entries)
			merged := p.Len()
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for i, c := range cmds {
				if (c == nil) != (entries[i].Meta.Type == "") || (c != nil && c.Err() != nil) {
					t.Errorf("entry %d (%s): command %v", i, entries[i].ID, c)
				}
			}
			if got, want := dumpIndex(t, rdb, "all"), dumpIndex(t, rdb, "one"); !slices.Equal(got, want) {
				t.Errorf("merged index:\n%s\nwant, as one by one:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if merged >= oneByOne/2 {
				t.Errorf("merged batch: %d commands, one by one %d; want fewer than half", merged, oneByOne)
			}
			t.Logf("%d entries: %d commands merged, %d one by one", len(entries), merged, oneByOne)

			// Shards: each entry in its shard's index, as AddTo puts it.
			o := stripetask.Options{Queue: "sone", Shards: 3}
			sone, sall := execindex.NewShards(rdb, o), execindex.NewShards(rdb, stripetask.Options{Queue: "sall", Shards: 3})
			for _, e := range entries {
				p := rdb.Pipeline()
				sone.AddTo(ctx, p, e.ID, e.Meta, e.At)
				p.Exec(ctx)
			}
			p = rdb.Pipeline()
			sall.AddEntriesTo(ctx, p, entries)
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			used := 0
			for i, q := range sone.Queues() {
				got, want := dumpIndex(t, rdb, sall.Queues()[i]), dumpIndex(t, rdb, q)
				if !slices.Equal(got, want) {
					t.Errorf("shard %d merged:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if len(want) > 0 {
					used++
				}
			}
			if used < 2 {
				t.Errorf("the entries fell in %d shard(s); the test wants them spread", used)
			}
		})
	}
}

// dumpIndex returns every key of queue's index with its contents, the
// queue's name replaced by Q, sorted.
func dumpIndex(t *testing.T, rdb redis.UniversalClient, queue string) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, execindex.KeyPrefix(queue)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		var v any
		switch rdb.Type(ctx, k).Val() {
		case "zset":
			v = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "set":
			v = sorted(rdb.SMembers(ctx, k).Val())
		case "hash":
			h := rdb.HGetAll(ctx, k).Val()
			var fields []string
			for f, x := range h {
				fields = append(fields, f+"="+x)
			}
			v = sorted(fields)
		default:
			v = "type " + rdb.Type(ctx, k).Val()
		}
		out = append(out, fmt.Sprintf("%s %v", strings.Replace(k, "{"+queue+"}", "{Q}", 1), v))
	}
	slices.Sort(out)
	return out
}

// TestWriterLingers adds entries a millisecond apart: each batch waits
// WriterLinger for more, so the Writer sends at most one pipeline per
// WriterLinger of the adding (not one per entry), and every entry is
// written without a Flush.
func TestWriterLingers(t *testing.T) {
	db := redistest.New(t)
	opt, err := redis.ParseURL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	var count redistest.PipelineCounter
	rdb.AddHook(&count)
	w := execindex.NewWriter(rdb, execindex.New(rdb, "stripe"), slog.New(slog.DiscardHandler))
	defer w.Close(context.Background())
	const n = 40
	start := time.Now()
	for i := range n {
		id := fmt.Sprintf("evt_linger_%02d", i)
		w.Add(id, stripetask.Metadata{ID: id, Type: "invoice.paid", APIVersion: "2023-10-16", Created: 1}, time.Now())
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	// Each batch waits WriterLinger from its first entry before it is
	// sent, so batches begun while adding are at most took/WriterLinger
	// + 1; one more may follow, and one pipeline reads the index's
	// implicit values.
	bound := int64(took/execindex.WriterLinger) + 3
	if bound >= n/2 {
		t.Skipf("adding %d entries took %v on this machine: too slow to tell batches from entries", n, took)
	}
	all := execindex.KeyPrefix("stripe") + "all"
	deadline := time.Now().Add(10 * time.Second)
	for db.Client.ZCard(context.Background(), all).Val() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries written 10 s after the last Add, without a Flush", db.Client.ZCard(context.Background(), all).Val(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := count.N()
	t.Logf("%d entries added over %v: %d pipelines (at most %d)", n, took.Round(time.Millisecond), got, bound)
	if got > bound {
		t.Errorf("%d pipelines for %d entries added over %v; want at most %d", got, n, took, bound)
	}
}
