package execindex_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// prefixTypes are the types of TestTypePrefix's executions: three
// prefixes of several types, a two-level one, and one of a single type.
var prefixTypes = []string{"invoice.paid", "invoice.payment_failed", "invoice.finalized", "customer.created",
	"customer.subscription.updated", "customer.subscription.created", "charge.failed"}

// TestTypePrefix answers type-prefix filters, which have no set of their
// own, from the type sets under the prefix, and checks every answer
// against the set a release before wrote per prefix: a ZSET holding the
// same entries, queried as an exact type. Items, their order (ties
// included), counts, totals and Capped must agree on every plan (small,
// large, capped, and miniredis's walk), at every offset, alone and with
// the other filters, for entries written with prefix sets (an older
// release) and without alike. Removing the older entries drains their
// prefix sets.
func TestTypePrefix(t *testing.T) {
	states := []string{"completed", "completed", "archived", "retry", "scheduled", "pending", "completed"}
	var execs []execindextest.Exec
	for i := range 84 {
		execs = append(execs, execindextest.Exec{
			ID:       fmt.Sprintf("evt_p%03d", i),
			Type:     prefixTypes[(i*5)%len(prefixTypes)],
			Livemode: i%3 != 0,
			Customer: fmt.Sprintf("cus_%d", i%4),
			State:    states[i%len(states)],
			// Pairs share a received time: ties are ordered by ID.
			ReceivedAt: t0.Add(time.Duration(i/2) * time.Second),
		})
	}
	for name, rdb := range redisAndMiniredis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			env := execindextest.Seed(t, rdb, "stripe", execs)
			pre := execindex.KeyPrefix("stripe")
			// Every third entry is as an older release wrote it: in the
			// prefix sets of its type as well.
			var older []string
			for i, e := range execs {
				if i%3 != 1 {
					continue
				}
				older = append(older, e.ID)
				for j := range len(e.Type) {
					if e.Type[j] == '.' {
						rdb.ZAdd(ctx, pre+"prefix:"+e.Type[:j], redis.Z{Score: float64(e.ReceivedAt.UnixMilli()), Member: e.ID})
					}
				}
			}
			// The oracle: for each prefix, one set of every entry of a
			// type under it, as the prefix set was, under a type name
			// that no entry has ("type:=oracle=<prefix>").
			oracle := func(p string) string { return "=oracle=" + p }
			for _, p := range []string{"invoice", "customer", "customer.subscription", "charge", "nope"} {
				for _, e := range execs {
					if strings.HasPrefix(e.Type, p+".") {
						rdb.ZAdd(ctx, pre+"type:"+oracle(p), redis.Z{Score: float64(e.ReceivedAt.UnixMilli()), Member: e.ID})
					}
				}
			}
			from, to := t0.Add(5*time.Second), t0.Add(30*time.Second)
			filters := []struct {
				name string
				f    execindex.Filter
			}{
				{"alone", execindex.Filter{}},
				{"livemode", execindex.Filter{Livemode: "true"}},
				{"customer (the prefix is checked, not walked)", execindex.Filter{Customer: "cus_1"}},
				{"customer and livemode", execindex.Filter{Customer: "cus_2", Livemode: "false"}},
				{"states", execindex.Filter{States: []string{"archived", "retry"}}},
				{"one state, livemode", execindex.Filter{States: []string{"completed"}, Livemode: "true"}},
				{"time range", execindex.Filter{From: from, To: to}},
				{"time range and livemode", execindex.Filter{From: from, Livemode: "true", States: []string{"completed", "pending"}}},
				{"exact ID", execindex.Filter{ID: "evt_p015"}},
				{"exact ID of another type", execindex.Filter{ID: "evt_p001"}},
			}
			plans := []struct {
				name           string
				small, examine int
			}{{"small plan", 5000, 0}, {"large plan", 0, 0}, {"small plan, capped", 5000, 9}, {"large plan, capped", 0, 9}}
			for _, plan := range plans {
				ix := execindex.New(rdb, "stripe")
				execindex.SetSmall(ix, plan.small)
				ix.SetMaxExamined(plan.examine)
				for _, p := range []string{"invoice", "customer.*", "customer.subscription", "charge", "nope"} {
					trimmed := strings.TrimSuffix(p, ".*")
					for _, ft := range filters {
						for _, page := range [][2]int{{0, 50}, {0, 4}, {5, 4}, {20, 7}} {
							t.Run(fmt.Sprintf("%s/%s/%s/%d+%d", plan.name, p, ft.name, page[0], page[1]), func(t *testing.T) {
								f := ft.f
								f.TypePrefix = p
								got, err := ix.Query(ctx, f, page[0], page[1])
								if err != nil {
									t.Fatal(err)
								}
								f.TypePrefix, f.Type = "", oracle(trimmed)
								want, err := ix.Query(ctx, f, page[0], page[1])
								if err != nil {
									t.Fatal(err)
								}
								if !slices.Equal(ids(got), ids(want)) || !slices.Equal(receivedAt(got), receivedAt(want)) ||
									!mapsEqual(got.Counts, want.Counts) || got.Total != want.Total || got.Capped != want.Capped || got.Dropped != 0 {
									t.Errorf("got %v, counts %v, total %d, capped %v; the prefix set gives %v, counts %v, total %d, capped %v",
										ids(got), got.Counts, got.Total, got.Capped, ids(want), want.Counts, want.Total, want.Capped)
								}
								if plan.examine == 0 && page[0] == 0 && page[1] == 50 && p != "nope" && ft.name == "alone" && len(ids(got)) == 0 {
									t.Error("the prefix matches nothing")
								}
							})
						}
					}
				}
			}
			t.Run("scan", func(t *testing.T) {
				shards := execindex.NewShards(rdb, stripetask.Options{Queue: "stripe"})
				for _, p := range []string{"invoice", "customer.subscription", "charge", "nope"} {
					for _, ft := range filters {
						scan := func(f execindex.Filter) []string {
							var out []string
							if err := shards.Scan(ctx, f, func(items []execindex.Item) error {
								for _, it := range items {
									out = append(out, it.ID+" "+it.State+" "+it.ReceivedAt.String())
								}
								return nil
							}); err != nil {
								t.Fatal(err)
							}
							return out
						}
						f := ft.f
						f.TypePrefix = p
						got := scan(f)
						f.TypePrefix, f.Type = "", oracle(p)
						if want := scan(f); !slices.Equal(got, want) {
							t.Errorf("%s, %s: scan gives %q, want %q", p, ft.name, got, want)
						}
					}
				}
			})
			t.Run("older entries drain their prefix sets", func(t *testing.T) {
				for _, id := range older {
					if err := env.Index.Remove(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				keys, err := rdb.Keys(ctx, strings.ReplaceAll(strings.ReplaceAll(pre, "{", `\{`), "}", `\}`)+"prefix:*").Result()
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) > 0 {
					t.Errorf("prefix sets left: %q", keys)
				}
				p, err := env.Index.Query(ctx, execindex.Filter{TypePrefix: "invoice"}, 0, 50)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ids(p) {
					if slices.Contains(older, id) {
						t.Errorf("removed %s is still found", id)
					}
				}
				if len(p.Items) == 0 {
					t.Error("the newer invoice entries are gone too")
				}
			})
		})
	}
}

func receivedAt(p execindex.Page) []int64 {
	var out []int64
	for _, it := range p.Items {
		out = append(out, it.ReceivedAt.UnixMilli())
	}
	return out
}

// TestValuesForget: Values forgets a type once its set is empty, but never
// one whose set holds an entry when it drops it (an entry written between
// Values's count and its drop), since a type-prefix filter reads its
// types from values:type. It runs on Redis and on miniredis.
func TestValuesForget(t *testing.T) {
	for name, rdb := range redisAndMiniredis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ix := execindex.New(rdb, "stripe")
			pre := execindex.KeyPrefix("stripe")
			m := stripetask.Metadata{ID: "evt_f1", Type: "invoice.paid", APIVersion: "2023-10-16"}
			if err := ix.Add(ctx, m.ID, m, t0); err != nil {
				t.Fatal(err)
			}
			// Its set filled again after Values counted it empty.
			if n, err := execindex.Forget(ix, execindex.FieldType, "invoice.paid"); err != nil || n != 0 {
				t.Fatalf("Forget of a type with an entry dropped %d (%v)", n, err)
			}
			if ok, _ := rdb.SIsMember(ctx, pre+"values:type", "invoice.paid").Result(); !ok {
				t.Fatal("a type with an entry was forgotten")
			}
			if err := ix.Remove(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			v, err := ix.Values(ctx, execindex.FieldType)
			if err != nil || len(v) != 0 {
				t.Errorf("Values = %v (%v), want none", v, err)
			}
			if ok, _ := rdb.SIsMember(ctx, pre+"values:type", "invoice.paid").Result(); ok {
				t.Error("a type with no entry left is still listed")
			}
		})
	}
}
