package execindex_test

import (
	"context"
	"slices"
	"strconv"
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
	for name, rdb := range redisAndMiniredis(t) {
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
			// all, type, customer: the first entry's livemode and API
			// version are the implicit ones, which have no set.
			if left := setsHolding(t, rdb, pre, victim.ID); len(left) != 3 {
				t.Errorf("the untouched entry is in %q, want its 3 sets (no prefix set, no set of an implicit value)", left)
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

// TestKeysForms removes entries whose keys hash entry is in each form a
// deployment may hold: the compact one Add writes now, the length-prefixed
// one written before it, and keys joined by "\n" before that. Each entry
// has every field, a type of three levels, refs, and is a re-run copy;
// values hold the encodings' own separators. Add writes no prefix set;
// entries of older releases are in two (prefix:customer and
// prefix:customer.subscription), whatever the form, and Remove drains
// them. No index set may keep a removed ID, and an untouched entry keeps
// its sets. It runs on Redis and on miniredis.
func TestKeysForms(t *testing.T) {
	full := func(id string) stripetask.Metadata {
		return stripetask.Metadata{ID: id, Type: "customer.subscription.updated", Livemode: true, APIVersion: "2023-10-16",
			Customer: "cus_" + id, Account: "acct_1", ObjectID: "sub_" + id, Refs: []string{"in_" + id, id + "@example.com"}}
	}
	odd := stripetask.Metadata{ID: "evt_odd", Type: "a.=t3:x.b:12", Livemode: false, APIVersion: "=v1:2:", Customer: "cus_=c3:", Account: "acct_7:",
		ObjectID: "in_12:r", Refs: []string{"=", "", "r0:"}}
	for name, rdb := range redisAndMiniredis(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ix := execindex.New(rdb, "stripe")
			pre := execindex.KeyPrefix("stripe")
			now := time.Now()
			victim := full("evt_victim")
			if err := ix.Add(ctx, victim.ID, victim, now); err != nil {
				t.Fatal(err)
			}
			// The first entry: its livemode and API version are the
			// implicit ones, which have no set.
			want := setsHolding(t, rdb, pre, victim.ID)
			if len(want) != 7 || slices.ContainsFunc(want, func(k string) bool { return strings.HasPrefix(k, "prefix:") || strings.HasPrefix(k, "livemode:") }) {
				t.Fatalf("the entry is in %q, want 7 sets, no prefix set and no set of an implicit value", want)
			}
			// legacy writes the entry of id, with metadata m, as an older
			// release did: in the index's sets, and its keys hash entry as
			// join makes it from the keys.
			legacy := func(id string, m stripetask.Metadata, join func([]string) string) {
				keys := []string{"type:" + m.Type, "prefix:customer", "prefix:customer.subscription", "livemode:true", "apiVersion:" + m.APIVersion,
					"customer:" + m.Customer, "account:" + m.Account, "ref:" + m.ObjectID, "ref:" + m.Refs[0], "ref:" + m.Refs[1]}
				for _, k := range append(keys, "all") {
					rdb.ZAdd(ctx, pre+k, redis.Z{Score: 1, Member: id})
				}
				rdb.HSet(ctx, pre+"keys", id, join(keys))
			}
			tests := []struct {
				name  string
				id    string
				write func(id string)
			}{
				{"compact (Add)", "evt_new", func(id string) {
					if err := ix.Add(ctx, id, full(id), now); err != nil {
						t.Fatal(err)
					}
				}},
				{"compact (AddRerun)", "evt_new:rerun:1", func(id string) {
					if err := ix.AddRerun(ctx, "evt_new0", id, full("evt_new0"), now); err != nil {
						t.Fatal(err)
					}
				}},
				{"compact, separators in values", odd.ID, func(id string) {
					if err := ix.Add(ctx, id, odd, now); err != nil {
						t.Fatal(err)
					}
				}},
				{"compact, with prefix sets (an older release)", "evt_v2", func(id string) {
					legacy(id, full(id), execindex.JoinKeys)
				}},
				{"length-prefixed", "evt_v1", func(id string) {
					legacy(id, full(id), func(keys []string) string {
						var b strings.Builder
						for _, k := range keys {
							b.WriteString(strconv.Itoa(len(k)) + ":" + k)
						}
						return b.String()
					})
				}},
				{"joined by line breaks", "evt_v0", func(id string) {
					legacy(id, full(id), func(keys []string) string { return strings.Join(keys, "\n") })
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.write(tt.id)
					in := setsHolding(t, rdb, pre, tt.id)
					if len(in) == 0 {
						t.Fatalf("%s is in no set", tt.id)
					}
					if legacy := strings.HasPrefix(tt.id, "evt_v"); legacy != slices.Contains(in, "prefix:customer.subscription") {
						t.Fatalf("%s is in %q: want prefix sets only for an older release's entry", tt.id, in)
					}
					if err := ix.Remove(ctx, tt.id); err != nil {
						t.Fatal(err)
					}
					if left := setsHolding(t, rdb, pre, tt.id); len(left) > 0 {
						t.Errorf("after Remove, %s is still in %q", tt.id, left)
					}
					if n, _ := rdb.HExists(ctx, pre+"keys", tt.id).Result(); n {
						t.Errorf("after Remove, %s keeps its keys hash entry", tt.id)
					}
				})
			}
			if got := setsHolding(t, rdb, pre, victim.ID); !slices.Equal(sorted(got), sorted(want)) {
				t.Errorf("the untouched entry is in %q, want %q", got, want)
			}
			if n, _ := rdb.Exists(ctx, pre+"reruns:evt_new0").Result(); n != 0 {
				t.Errorf("the re-run history of evt_new0 still holds the removed copy")
			}
		})
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestJoinKeys pins the compact form of the keys hash entry, which
// deployments keep: its tags are permanent.
func TestJoinKeys(t *testing.T) {
	got := execindex.JoinKeys([]string{"type:invoice.paid", "prefix:invoice", "livemode:false", "apiVersion:2023-10-16",
		"customer:cus_1", "account:acct_1", "ref:in_1", "ref:a@b.c", "reruns:evt_1", "other:x"})
	want := "=t12:invoice.paidm5:falsev10:2023-10-16c5:cus_1a6:acct_1r4:in_1r5:a@b.cR5:evt_1k7:other:x"
	if got != want {
		t.Errorf("JoinKeys = %q, want %q", got, want)
	}
}

// redisAndMiniredis returns a real Redis and a miniredis, by name, for the
// tests that must hold on both: the index's scripts run on miniredis in
// the local dev stack.
func redisAndMiniredis(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	mr := miniredis.RunT(t)
	mini := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { mini.Close() })
	return map[string]redis.UniversalClient{"redis": redistest.New(t).Client, "miniredis": mini}
}
