package execindex_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestQuerySource: executions a recovery stored (header source=recovery)
// are in the set source:recovery, which Filter.Source selects on both
// plans and with the other filters; a webhook's execution is in no source
// set, so only recovered executions pay for it, and Remove empties it.
func TestQuerySource(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	env := execindextest.Seed(t, db.Client, "stripe", []execindextest.Exec{
		{ID: "evt_hook_1", Type: "invoice.paid", State: "completed", ReceivedAt: t0},
		{ID: "evt_hook_2", Type: "customer.created", State: "completed", ReceivedAt: t0.Add(time.Minute)},
	})
	set := keyspace.IndexSet("stripe", "source", stripetask.SourceRecovery)
	if n := db.Client.Exists(ctx, set).Val(); n != 0 {
		t.Fatalf("webhook executions alone made %s", set)
	}
	for i, e := range []execindextest.Exec{
		{ID: "evt_rec_1", Type: "invoice.paid", ReceivedAt: t0.Add(2 * time.Minute)},
		{ID: "evt_rec_2", Type: "customer.created", ReceivedAt: t0.Add(3 * time.Minute)},
	} {
		body := execindextest.Body(e)
		m, err := stripetask.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		m.Source, m.RecoveryID = stripetask.SourceRecovery, "rec_test"
		if _, err := env.Client.Enqueue(stripetask.NewFromMetadata(body, m, stripetask.Options{})); err != nil {
			t.Fatal(err)
		}
		if err := env.Index.Add(ctx, e.ID, m, e.ReceivedAt); err != nil {
			t.Fatal(i, err)
		}
	}
	large := execindex.New(db.Client, "stripe")
	execindex.SetSmall(large, 1)
	for _, tc := range []struct {
		name string
		f    execindex.Filter
		want []string
	}{
		{"source", execindex.Filter{Source: stripetask.SourceRecovery}, []string{"evt_rec_2", "evt_rec_1"}},
		{"source and type", execindex.Filter{Source: stripetask.SourceRecovery, Type: "invoice.paid"}, []string{"evt_rec_1"}},
		{"source and type prefix", execindex.Filter{Source: stripetask.SourceRecovery, TypePrefix: "customer"}, []string{"evt_rec_2"}},
		{"source and time", execindex.Filter{Source: stripetask.SourceRecovery, From: t0.Add(150 * time.Second)}, []string{"evt_rec_2"}},
		{"source and state", execindex.Filter{Source: stripetask.SourceRecovery, States: []string{execindex.StatePending}}, []string{"evt_rec_2", "evt_rec_1"}},
		{"unknown source", execindex.Filter{Source: "import"}, nil},
		{"no source: all", execindex.Filter{}, []string{"evt_rec_2", "evt_rec_1", "evt_hook_2", "evt_hook_1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, ix := range map[string]*execindex.Index{"small": env.Index, "large": large} {
				p, err := ix.Query(ctx, tc.f, 0, 50)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p); !slices.Equal(got, tc.want) || p.Total != len(tc.want) {
					t.Errorf("%s plan: %v (total %d), want %v", name, got, p.Total, tc.want)
				}
			}
		})
	}
	if err := (execindex.Filter{Source: "a\nb"}).Validate(); err == nil {
		t.Error("a source with a line break is valid")
	}
	for _, id := range []string{"evt_rec_1", "evt_rec_2"} {
		if err := env.Index.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Client.Exists(ctx, set).Val(); n != 0 {
		t.Errorf("%s outlives its entries", set)
	}
}
