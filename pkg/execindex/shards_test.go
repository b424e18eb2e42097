package execindex_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestShardsQueryPages merges pages deeper than one shard query returns
// (MaxLimit): 1,500 completed executions over 3 shards, one every
// millisecond, every page equal to the same slice of the global order.
func TestShardsQueryPages(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	opts := stripetask.Options{Queue: "stripe", Shards: 3}
	ix := execindex.NewShards(db.Client, opts)
	const n = 1500
	base := time.Now().Add(-time.Hour)
	var all []string // newest first
	p := db.Client.Pipeline()
	for i := range n {
		id := fmt.Sprintf("evt_pg_%04d", i)
		all = append([]string{id}, all...)
		q := stripetask.QueueFor(id, opts)
		// Just what Query reads of asynq: the task's state.
		p.HSet(ctx, "asynq:{"+q+"}:t:"+id, "state", "completed")
		p.ZAdd(ctx, "asynq:{"+q+"}:completed", redis.Z{Member: id})
		if err := ix.Add(ctx, id, stripetask.Metadata{ID: id, Type: "invoice.paid", APIVersion: "2023-10-16"}, base.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ offset, limit int }{{0, 50}, {450, 100}, {1000, 200}, {1400, 200}, {1499, 5}, {1500, 5}} {
		t.Run(fmt.Sprintf("%d+%d", tt.offset, tt.limit), func(t *testing.T) {
			pg, err := ix.Query(ctx, execindex.Filter{}, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range pg.Items {
				got = append(got, it.ID)
				if it.Queue != stripetask.QueueFor(it.ID, opts) {
					t.Errorf("%s: queue %q", it.ID, it.Queue)
				}
			}
			want := all[min(tt.offset, n):min(tt.offset+tt.limit, n)]
			if !slices.Equal(got, want) {
				t.Errorf("page of %d from %d: got %d items %v…, want %v…", tt.limit, tt.offset, len(got), head(got), head(want))
			}
			if pg.Total != n || pg.Counts[execindex.StateCompleted] != n {
				t.Errorf("total %d, counts %v, want %d completed", pg.Total, pg.Counts, n)
			}
		})
	}
	items, total, err := ix.IDs(ctx, execindex.Filter{}, 700)
	if err != nil || total != n || len(items) != 700 || items[0].ID != all[0] || items[699].ID != all[699] {
		t.Errorf("IDs: %d items, total %d, %v", len(items), total, err)
	}
}

func head(s []string) []string { return s[:min(len(s), 3)] }
