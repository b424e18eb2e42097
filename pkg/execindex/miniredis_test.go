package execindex_test

import (
	"context"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
)

// TestMiniredis runs the index's scripts on miniredis, the embedded Redis
// of the local dev stack.
func TestMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	env := execindextest.Seed(t, rdb, "stripe", []execindextest.Exec{seeds[0], seeds[2], seeds[4], seeds[7]})
	ctx := context.Background()
	p, err := env.Index.Query(ctx, execindex.Filter{Type: "invoice.payment_failed", Livemode: "true", States: []string{"archived"}}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p); !slices.Equal(got, []string{"evt_08", "evt_01"}) || p.Counts["completed"] != 0 {
		t.Errorf("got %v, counts %v", got, p.Counts)
	}
	if _, err := env.Index.Query(ctx, execindex.Filter{ID: "evt_03"}, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Index.Prune(ctx); err != nil {
		t.Fatal(err)
	}
}
