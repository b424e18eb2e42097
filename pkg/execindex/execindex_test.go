package execindex_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

var t0 = time.Now().Add(-time.Hour).Truncate(time.Second)

// seeds is a small, varied queue; IDs sort by received time, newest last.
var seeds = []execindextest.Exec{
	{ID: "evt_01", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_A", State: "archived", ReceivedAt: t0.Add(1 * time.Minute)},
	{ID: "evt_02", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_B", State: "retry", ReceivedAt: t0.Add(2 * time.Minute)},
	{ID: "evt_03", Type: "invoice.payment_failed", Livemode: false, Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(3 * time.Minute)},
	{ID: "evt_04", Type: "invoice.paid", Livemode: true, Customer: "cus_A", State: "completed", ReceivedAt: t0.Add(4 * time.Minute)},
	{ID: "evt_05", Type: "customer.created", Livemode: true, Customer: "cus_C", Account: "acct_1", State: "pending", ReceivedAt: t0.Add(5 * time.Minute)},
	{ID: "evt_06", Type: "customer.subscription.updated", Livemode: true, Customer: "cus_A", State: "scheduled", ReceivedAt: t0.Add(6 * time.Minute)},
	{ID: "evt_07", Type: "charge.failed", Livemode: false, Customer: "cus_B", Account: "acct_1", State: "active", ReceivedAt: t0.Add(7 * time.Minute)},
	{ID: "evt_08", Type: "invoice.payment_failed", Livemode: true, Customer: "cus_A", State: "archived", ReceivedAt: t0.Add(8 * time.Minute)},
}

func ids(p execindex.Page) []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestQuery(t *testing.T) {
	db := redistest.New(t)
	env := execindextest.Seed(t, db.Client, "stripe", seeds)
	ix := env.Index
	ctx := context.Background()

	tests := []struct {
		name string
		f    execindex.Filter
		want []string
	}{
		{"everything", execindex.Filter{}, []string{"evt_08", "evt_07", "evt_06", "evt_05", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"type", execindex.Filter{Type: "invoice.payment_failed"}, []string{"evt_08", "evt_03", "evt_02", "evt_01"}},
		{"type prefix", execindex.Filter{TypePrefix: "invoice"}, []string{"evt_08", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"type prefix with .*", execindex.Filter{TypePrefix: "customer.*"}, []string{"evt_06", "evt_05"}},
		{"two-level prefix", execindex.Filter{TypePrefix: "customer.subscription"}, []string{"evt_06"}},
		{"livemode false", execindex.Filter{Livemode: "false"}, []string{"evt_07", "evt_03"}},
		{"apiVersion", execindex.Filter{APIVersion: "2023-10-16", Livemode: "false"}, []string{"evt_07", "evt_03"}},
		{"unknown apiVersion", execindex.Filter{APIVersion: "2020-08-27"}, nil},
		{"customer", execindex.Filter{Customer: "cus_B"}, []string{"evt_07", "evt_02"}},
		{"account", execindex.Filter{Account: "acct_1"}, []string{"evt_07", "evt_05"}},
		{"state", execindex.Filter{States: []string{"archived"}}, []string{"evt_08", "evt_01"}},
		{"states", execindex.Filter{States: []string{"retry", "archived"}}, []string{"evt_08", "evt_02", "evt_01"}},
		{"active", execindex.Filter{States: []string{"active"}}, []string{"evt_07"}},
		{"time range", execindex.Filter{From: t0.Add(3 * time.Minute), To: t0.Add(5 * time.Minute)}, []string{"evt_05", "evt_04", "evt_03"}},
		{"the issue's query", execindex.Filter{Type: "invoice.payment_failed", Livemode: "true", Customer: "cus_A", States: []string{"retry", "archived"}, From: t0}, []string{"evt_08", "evt_01"}},
		{"exact ID", execindex.Filter{ID: "evt_04"}, []string{"evt_04"}},
		{"exact ID not matching the rest", execindex.Filter{ID: "evt_04", Livemode: "false"}, nil},
		{"unknown ID", execindex.Filter{ID: "evt_nope"}, nil},
		// Search by what an event is about: its data.object or what that
		// names (the charge names its invoice), or the customer's email.
		{"ref: an invoice", execindex.Filter{Ref: "in_stripeq_demo"}, []string{"evt_08", "evt_07", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"ref: a subscription", execindex.Filter{Ref: "sub_stripeq_demo"}, []string{"evt_08", "evt_06", "evt_04", "evt_03", "evt_02", "evt_01"}},
		{"ref: a charge, failed", execindex.Filter{Ref: "ch_stripeq_demo", States: []string{"retry", "archived"}}, []string{"evt_08", "evt_02", "evt_01"}},
		{"ref: an email, one customer", execindex.Filter{Ref: "jenny.rosen@example.com", Customer: "cus_C"}, []string{"evt_05"}},
		{"ref: unknown", execindex.Filter{Ref: "in_nope"}, nil},
	}
	large := execindex.New(db.Client, "stripe")
	execindex.SetSmall(large, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ix.Query(ctx, tt.f, 0, 50)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if p.Total != len(tt.want) {
				t.Errorf("total = %d, want %d", p.Total, len(tt.want))
			}
			// The plan for large sets gives the same answer.
			pl, err := large.Query(ctx, tt.f, 0, 50)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(pl); !slices.Equal(got, tt.want) || pl.Total != p.Total || !mapsEqual(pl.Counts, p.Counts) {
				t.Errorf("large plan: got %v, total %d, counts %v; small plan: total %d, counts %v", got, pl.Total, pl.Counts, p.Total, p.Counts)
			}
		})
	}

	t.Run("counts ignore the state filter", func(t *testing.T) {
		p, err := ix.Query(ctx, execindex.Filter{Type: "invoice.payment_failed", States: []string{"completed"}}, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		want := execindex.Counts{"pending": 0, "active": 0, "scheduled": 0, "retry": 1, "archived": 2, "completed": 1}
		if !mapsEqual(p.Counts, want) {
			t.Errorf("counts = %v, want %v", p.Counts, want)
		}
	})
	t.Run("unfiltered counts come from asynq", func(t *testing.T) {
		p, err := ix.Query(ctx, execindex.Filter{}, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := execindex.Counts{"pending": 1, "active": 1, "scheduled": 1, "retry": 1, "archived": 2, "completed": 2}
		if !mapsEqual(p.Counts, want) || p.Total != 8 || len(p.Items) != 2 {
			t.Errorf("counts = %v, total %d, %d items", p.Counts, p.Total, len(p.Items))
		}
	})
	for name, ix := range map[string]*execindex.Index{"small plan": ix, "large plan": large} {
		t.Run("pages/"+name, func(t *testing.T) {
			var got []string
			for off := 0; off < 10; off += 3 {
				p, err := ix.Query(ctx, execindex.Filter{Livemode: "true"}, off, 3)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(p)...)
			}
			if want := []string{"evt_08", "evt_06", "evt_05", "evt_04", "evt_02", "evt_01"}; !slices.Equal(got, want) {
				t.Errorf("pages = %v, want %v", got, want)
			}
			for _, f := range []execindex.Filter{{States: []string{"archived"}}, {Livemode: "true", States: []string{"archived"}}} {
				p, _ := ix.Query(ctx, f, 1, 5)
				if got := ids(p); !slices.Equal(got, []string{"evt_01"}) {
					t.Errorf("second page of %+v = %v", f, got)
				}
			}
			p, _ := ix.Query(ctx, execindex.Filter{Livemode: "true", States: []string{"completed", "pending"}}, 0, 5)
			if got := ids(p); !slices.Equal(got, []string{"evt_05", "evt_04"}) {
				t.Errorf("completed or pending = %v", got)
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		for _, f := range []execindex.Filter{{States: []string{"done"}}, {Livemode: "yes"}, {From: t0, To: t0.Add(-time.Second)}} {
			if _, err := ix.Query(ctx, f, 0, 1); err == nil {
				t.Errorf("%+v: no error", f)
			}
		}
	})
	t.Run("values", func(t *testing.T) {
		v, err := ix.Values(ctx, execindex.FieldType)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 5 || v[0] != (execindex.ValueCount{Value: "charge.failed", Count: 1}) || v[3] != (execindex.ValueCount{Value: "invoice.paid", Count: 1}) || v[4].Count != 4 {
			t.Errorf("types = %v", v)
		}
	})
}

func mapsEqual(a, b execindex.Counts) bool {
	for _, s := range execindex.States {
		if a[s] != b[s] {
			return false
		}
	}
	return true
}

func TestReruns(t *testing.T) {
	db := redistest.New(t)
	env := execindextest.Seed(t, db.Client, "stripe", seeds[3:4]) // evt_04, completed
	ix, ctx := env.Index, context.Background()
	for want := 1; want <= 2; want++ {
		id, err := ix.NextRerunID(ctx, "evt_04")
		if err != nil {
			t.Fatal(err)
		}
		if id != "evt_04:rerun:"+string(rune('0'+want)) {
			t.Errorf("re-run ID = %q", id)
		}
		// The index only links; the copy must exist in asynq to be listed.
		task, m, err := stripetask.New(env.Bodies["evt_04"], stripetask.Options{Queue: env.Queue})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.Client.Enqueue(task, asynq.TaskID(id)); err != nil {
			t.Fatal(err)
		}
		if err := ix.AddRerun(ctx, "evt_04", id, m, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := ix.Reruns(ctx, "evt_04")
	if err != nil || len(runs) != 2 || runs[0].ID != "evt_04:rerun:1" {
		t.Fatalf("re-runs = %v, %v", runs, err)
	}
	p, err := ix.Query(ctx, execindex.Filter{ID: "evt_04"}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p); !slices.Equal(got, []string{"evt_04:rerun:2", "evt_04:rerun:1", "evt_04"}) {
		t.Errorf("search by event ID = %v", got)
	}
}

func TestPruneAndLazyDrop(t *testing.T) {
	db := redistest.New(t)
	env := execindextest.Seed(t, db.Client, "stripe", []execindextest.Exec{
		{ID: "evt_a", Type: "invoice.paid", Customer: "cus_A"},
		{ID: "evt_b", Type: "invoice.paid", Customer: "cus_A"},
		{ID: "evt_c", Type: "invoice.paid", Customer: "cus_A"},
	})
	ix, ctx := env.Index, context.Background()
	// An operator deletes two tasks behind the index's back.
	for _, id := range []string{"evt_a", "evt_b"} {
		if err := env.Inspector.DeleteTask("stripe", id); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ix.Query(ctx, execindex.Filter{Customer: "cus_A", ID: "evt_a"}, 0, 10)
	if err != nil || len(p.Items) != 0 || p.Dropped != 1 {
		t.Fatalf("query met a deleted task: %+v, %v", p, err)
	}
	n, err := ix.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("prune dropped %d, %v; want 1", n, err)
	}
	if n, _ := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"customer:cus_A").Result(); n != 1 {
		t.Errorf("customer set has %d entries, want 1", n)
	}
	if n, _ := db.Client.HLen(ctx, execindex.KeyPrefix("stripe")+"keys").Result(); n != 1 {
		t.Errorf("keys hash has %d entries, want 1", n)
	}
}

func TestReconcile(t *testing.T) {
	db := redistest.New(t)
	env := execindextest.Seed(t, db.Client, "stripe", seeds[:2])
	ctx := context.Background()
	// Forget the index, as if the tasks predated it.
	keys, _ := db.Client.Keys(ctx, execindex.KeyPrefix("stripe")+"*").Result()
	db.Client.Del(ctx, keys...)
	n, err := env.Index.Reconcile(ctx, env.Inspector)
	if err != nil || n != 2 {
		t.Fatalf("reconciled %d, %v; want 2", n, err)
	}
	p, _ := env.Index.Query(ctx, execindex.Filter{Customer: "cus_B"}, 0, 10)
	if got := ids(p); !slices.Equal(got, []string{"evt_02"}) {
		t.Errorf("after reconcile: %v", got)
	}
	if n, _ := env.Index.Reconcile(ctx, env.Inspector); n != 0 {
		t.Errorf("second reconcile added %d", n)
	}
}
