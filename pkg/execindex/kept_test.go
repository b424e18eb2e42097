package execindex_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// TestKeptOnly: a query says how many of the archived executions it
// counts only the failure store keeps (a re-run copies those), with every
// plan: the small walk, the large plan's set operations, asynq's own
// counts when unfiltered, and the walk of servers without ZINTERCARD.
func TestKeptOnly(t *testing.T) {
	check := func(t *testing.T, ixs map[string]*execindex.Index) {
		tests := []struct {
			name     string
			f        execindex.Filter
			archived int
			kept     int
		}{
			{"unfiltered", execindex.Filter{}, 2, 1},
			{"type", execindex.Filter{Type: "invoice.payment_failed"}, 2, 1},
			{"customer and state", execindex.Filter{Customer: "cus_A", States: []string{"archived"}}, 2, 1},
			{"the kept one by ID", execindex.Filter{ID: "evt_01"}, 1, 1},
			{"the one asynq still holds, by ID", execindex.Filter{ID: "evt_08"}, 1, 0},
			{"none archived", execindex.Filter{Type: "invoice.paid"}, 0, 0},
		}
		for name, ix := range ixs {
			for _, tt := range tests {
				t.Run(name+"/"+tt.name, func(t *testing.T) {
					p, err := ix.Query(context.Background(), tt.f, 0, 50)
					if err != nil {
						t.Fatal(err)
					}
					if p.Counts[execindex.StateArchived] != tt.archived || p.KeptOnly != tt.kept {
						t.Errorf("archived %d, kept only %d; want %d and %d", p.Counts[execindex.StateArchived], p.KeptOnly, tt.archived, tt.kept)
					}
				})
			}
		}
	}
	t.Run("redis", func(t *testing.T) {
		db := redistest.New(t)
		env := execindextest.Seed(t, db.Client, "stripe", seeds)
		env.Keep(t, "evt_01", true)  // trimmed: only the failure store keeps it
		env.Keep(t, "evt_08", false) // in asynq's archive and kept
		large := execindex.New(db.Client, "stripe")
		execindex.SetSmall(large, 1)
		check(t, map[string]*execindex.Index{"small plan": env.Index, "large plan": large})
	})
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		env := execindextest.Seed(t, rdb, "stripe", seeds)
		env.Keep(t, "evt_01", true)
		env.Keep(t, "evt_08", false)
		check(t, map[string]*execindex.Index{"no ZINTERCARD": env.Index})
	})
}
