package execindex_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestRemoveWithLineBreaks removes entries whose metadata holds line
// breaks, which the keys hash once joined its keys with, and an entry
// written in that old form: no index set may keep the removed ID, and
// another entry must keep its place. It runs on Redis and on miniredis.
func TestRemoveWithLineBreaks(t *testing.T) {
	mr := miniredis.RunT(t)
	mini := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { mini.Close() })
	for name, rdb := range map[string]redis.UniversalClient{"redis": redistest.New(t).Client, "miniredis": mini} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ix := execindex.New(rdb, "stripe")
			pre := execindex.KeyPrefix("stripe")
			now := time.Now()
			victim := stripetask.Metadata{ID: "evt_victim", Type: "invoice.paid", APIVersion: "2023-10-16", Customer: "cus_victim"}
			if err := ix.Add(ctx, victim.ID, victim, now); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name string
				m    stripetask.Metadata
			}{
				{"a type with a line break", stripetask.Metadata{ID: "evt_t", Type: "invoice.paid\ncustomer:cus_victim", APIVersion: "2023-10-16"}},
				{"an API version with a line break", stripetask.Metadata{ID: "evt_v", Type: "invoice.paid", APIVersion: "2023-10-16\ncustomer:cus_victim", Customer: "cus_X"}},
				{"a customer with digits after a break", stripetask.Metadata{ID: "evt_c", Type: "invoice.paid", Customer: "cus_X\n12:type:x"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if err := ix.Add(ctx, tt.m.ID, tt.m, now); err != nil {
						t.Fatal(err)
					}
					if err := ix.Remove(ctx, tt.m.ID); err != nil {
						t.Fatal(err)
					}
					if left := setsHolding(t, rdb, pre, tt.m.ID); len(left) > 0 {
						t.Errorf("after Remove, %s is still in %q", tt.m.ID, left)
					}
				})
			}
			t.Run("an entry written with line breaks", func(t *testing.T) {
				rdb.ZAdd(ctx, pre+"type:invoice.paid", redis.Z{Score: 1, Member: "evt_old"})
				rdb.ZAdd(ctx, pre+"livemode:false", redis.Z{Score: 1, Member: "evt_old"})
				rdb.ZAdd(ctx, pre+"all", redis.Z{Score: 1, Member: "evt_old"})
				rdb.HSet(ctx, pre+"keys", "evt_old", "type:invoice.paid\nlivemode:false")
				if err := ix.Remove(ctx, "evt_old"); err != nil {
					t.Fatal(err)
				}
				if left := setsHolding(t, rdb, pre, "evt_old"); len(left) > 0 {
					t.Errorf("after Remove, evt_old is still in %q", left)
				}
			})
			if left := setsHolding(t, rdb, pre, victim.ID); len(left) != 6 {
				t.Errorf("the untouched entry is in %q, want its 6 sets", left)
			}
		})
	}
}

// setsHolding returns the index sets under pre that hold id.
func setsHolding(t *testing.T, rdb redis.UniversalClient, pre, id string) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, strings.ReplaceAll(strings.ReplaceAll(pre, "{", `\{`), "}", `\}`)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if rdb.Type(ctx, k).Val() != "zset" {
			continue
		}
		if _, err := rdb.ZScore(ctx, k, id).Result(); err == nil {
			out = append(out, strings.TrimPrefix(k, pre))
		}
	}
	return out
}
