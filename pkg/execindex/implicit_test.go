package execindex_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

const dahlia = "2026-08-26.dahlia"

// mixed is a queue whose first execution is live at 2023-10-16, the
// implicit values, with others in test mode and at dahlia; evt_l1 and
// evt_l2 are then written again as a release before implicit values did,
// into the sets of their implicit values too.
var mixed = []execindextest.Exec{
	{ID: "evt_a1", Type: "invoice.paid", Livemode: true, APIVersion: "2023-10-16", Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(1 * time.Minute)},
	{ID: "evt_a2", Type: "invoice.payment_failed", Livemode: true, APIVersion: "2023-10-16", Customer: "cus_B", State: "archived", ReceivedAt: t0.Add(2 * time.Minute)},
	{ID: "evt_a3", Type: "invoice.paid", Livemode: false, APIVersion: "2023-10-16", Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(3 * time.Minute)},
	{ID: "evt_a4", Type: "invoice.paid", Livemode: true, APIVersion: dahlia, Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(4 * time.Minute)},
	{ID: "evt_a5", Type: "invoice.payment_failed", Livemode: false, APIVersion: dahlia, Customer: "cus_B", State: "retry", ReceivedAt: t0.Add(5 * time.Minute)},
	{ID: "evt_a6", Type: "customer.created", Livemode: true, APIVersion: dahlia, Customer: "cus_C", State: "completed", ReceivedAt: t0.Add(6 * time.Minute)},
	{ID: "evt_l1", Type: "invoice.paid", Livemode: true, APIVersion: "2023-10-16", Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(7 * time.Minute)},
	{ID: "evt_l2", Type: "invoice.paid", Livemode: true, APIVersion: dahlia, Customer: "cus_B", State: "completed", ReceivedAt: t0.Add(8 * time.Minute)},
}

// TestImplicitValues: an execution with its field's implicit value (the
// first the index saw) is in no set of that field, and every filter on
// livemode and API version, alone or with others, answers as if it were:
// by Query's small walk, its large plan, on miniredis, by Scan, and in
// Values' counts; entries of older releases, in the implicit value's set
// too, answer alike.
func TestImplicitValues(t *testing.T) {
	filters := []execindex.Filter{
		{Livemode: "true"},
		{Livemode: "false"},
		{APIVersion: "2023-10-16"},
		{APIVersion: dahlia},
		{Livemode: "true", APIVersion: "2023-10-16"},
		{Livemode: "true", APIVersion: dahlia},
		{Livemode: "false", APIVersion: "2023-10-16"},
		{Livemode: "true", Type: "invoice.paid"},
		{Livemode: "true", TypePrefix: "invoice"},
		{APIVersion: "2023-10-16", Customer: "cus_A"},
		{Livemode: "true", States: []string{"completed"}},
		{Livemode: "true", From: t0.Add(4 * time.Minute), To: t0.Add(7 * time.Minute)},
		{ID: "evt_a1", Livemode: "true"},
		{ID: "evt_a1", APIVersion: dahlia},
		{APIVersion: "2020-08-27"},
	}
	// want is what f matches among mixed, newest first.
	want := func(f execindex.Filter) []string {
		var out []string
		for _, e := range slices.Backward(mixed) {
			ok := (f.Livemode == "" || f.Livemode == strconv.FormatBool(e.Livemode)) &&
				(f.APIVersion == "" || f.APIVersion == e.APIVersion) &&
				(f.Type == "" || f.Type == e.Type) &&
				(f.TypePrefix == "" || len(e.Type) > len(f.TypePrefix) && e.Type[:len(f.TypePrefix)+1] == f.TypePrefix+".") &&
				(f.Customer == "" || f.Customer == e.Customer) &&
				(len(f.States) == 0 || slices.Contains(f.States, e.State)) &&
				(f.From.IsZero() || !e.ReceivedAt.Before(f.From)) && (f.To.IsZero() || !e.ReceivedAt.After(f.To)) &&
				(f.ID == "" || f.ID == e.ID)
			if ok {
				out = append(out, e.ID)
			}
		}
		return out
	}
	check := func(t *testing.T, rdb redis.UniversalClient, env *execindextest.Env, plans map[string]*execindex.Index) {
		ctx := context.Background()
		pre := execindex.KeyPrefix("stripe")
		imp := rdb.HGetAll(ctx, keyspace.IndexImplicit("stripe")).Val()
		if imp["livemode"] != "true" || imp["apiVersion"] != "2023-10-16" {
			t.Fatalf("implicit values %v, want the first execution's: livemode true, 2023-10-16", imp)
		}
		for _, id := range []string{"evt_a1", "evt_a2"} {
			if slices.ContainsFunc(setsHolding(t, rdb, pre, id), func(k string) bool {
				return k == "livemode:true" || k == "apiVersion:2023-10-16"
			}) {
				t.Errorf("%s is in a set of an implicit value: %q", id, setsHolding(t, rdb, pre, id))
			}
		}
		for _, f := range filters {
			w := want(f)
			for name, ix := range plans {
				p, err := ix.Query(ctx, f, 0, 50)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p); !slices.Equal(got, w) || (len(f.States) == 0 && p.Total != len(w)) {
					t.Errorf("%s: %+v: got %v (total %d), want %v", name, f, got, p.Total, w)
				}
			}
			var scanned []string
			err := execindex.NewShards(rdb, stripetask.Options{}).Scan(ctx, f, func(items []execindex.Item) error {
				for _, it := range items {
					scanned = append(scanned, it.ID)
				}
				return nil
			})
			if err != nil || !slices.Equal(scanned, w) {
				t.Errorf("Scan %+v: got %v (%v), want %v", f, scanned, err, w)
			}
		}
		v, err := env.Index.Values(ctx, execindex.FieldAPIVersion)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v, []execindex.ValueCount{{Value: "2023-10-16", Count: 4}, {Value: dahlia, Count: 4}}) {
			t.Errorf("API versions %v, want 4 at 2023-10-16 (the implicit value) and 4 at %s", v, dahlia)
		}
	}
	legacy := func(t *testing.T, rdb redis.UniversalClient) {
		pre := execindex.KeyPrefix("stripe")
		for _, e := range mixed[6:] {
			z := redis.Z{Score: float64(e.ReceivedAt.UnixMilli()), Member: e.ID}
			rdb.ZAdd(context.Background(), pre+"livemode:"+strconv.FormatBool(e.Livemode), z)
			rdb.ZAdd(context.Background(), pre+"apiVersion:"+e.APIVersion, z)
		}
	}
	t.Run("redis", func(t *testing.T) {
		db := redistest.New(t)
		env := execindextest.Seed(t, db.Client, "stripe", mixed)
		legacy(t, db.Client)
		large := execindex.New(db.Client, "stripe")
		execindex.SetSmall(large, 1)
		check(t, db.Client, env, map[string]*execindex.Index{"small plan": env.Index, "large plan": large})
	})
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		env := execindextest.Seed(t, rdb, "stripe", mixed)
		legacy(t, rdb)
		check(t, rdb, env, map[string]*execindex.Index{"no ZINTERCARD": env.Index})
	})
}
