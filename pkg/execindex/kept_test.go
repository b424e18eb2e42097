package execindex_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// keep keeps id's failure in the failure store; trim then deletes its
// task from asynq, as asynq's archive trimming does.
func keep(t *testing.T, env *execindextest.Env, rdb redis.UniversalClient, id string, trim bool) {
	t.Helper()
	at := time.Now().Add(-time.Minute).UTC()
	if err := failures.New(rdb, 0).Keep(context.Background(), failures.Record{ID: id, Queue: "stripe", TaskType: "stripe:invoice.payment_failed", FailedAt: at, MaxRetry: 7, Err: "boom"},
		failures.Attempt{At: at, Start: at.Add(-time.Second), MS: 1000, Worker: "w:1", Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if trim {
		if err := env.Inspector.DeleteTask("stripe", id); err != nil {
			t.Fatal(err)
		}
	}
}

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
		keep(t, env, db.Client, "evt_01", true)  // trimmed: only the failure store keeps it
		keep(t, env, db.Client, "evt_08", false) // in asynq's archive and kept
		large := execindex.New(db.Client, "stripe")
		execindex.SetSmall(large, 1)
		check(t, map[string]*execindex.Index{"small plan": env.Index, "large plan": large})
	})
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		env := execindextest.Seed(t, rdb, "stripe", seeds)
		keep(t, env, rdb, "evt_01", true)
		keep(t, env, rdb, "evt_08", false)
		check(t, map[string]*execindex.Index{"no ZINTERCARD": env.Index})
	})
}
