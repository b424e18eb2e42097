package execindex_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// TestQueryIsBounded: one query examines at most its cap of entries,
// newest first, whatever the filter and the depth of the page; past the
// cap it says so (Capped), and offsets past MaxOffset are refused.
func TestQueryIsBounded(t *testing.T) {
	db := redistest.New(t)
	var execs []execindextest.Exec
	for i := range 60 {
		st := "completed"
		if i%10 == 0 {
			st = "archived"
		}
		execs = append(execs, execindextest.Exec{ID: fmt.Sprintf("evt_%03d", i), Type: "invoice.paid", Livemode: i%2 == 0, Customer: "cus_A", State: st,
			ReceivedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	env := execindextest.Seed(t, db.Client, "stripe", execs)
	ctx := context.Background()
	newest := func(n int, keep func(i int) bool) []string {
		var out []string
		for i := 59; i >= 0 && len(out) < n; i-- {
			if keep(i) {
				out = append(out, fmt.Sprintf("evt_%03d", i))
			}
		}
		return out
	}
	all := func(int) bool { return true }
	for _, plan := range []struct {
		name  string
		small int
	}{{"small plan", 5000}, {"large plan", 0}} {
		ix := execindex.New(db.Client, env.Queue)
		execindex.SetSmall(ix, plan.small)
		ix.SetMaxExamined(20)
		tests := []struct {
			name        string
			f           execindex.Filter
			offset, lim int
			want        []string
			capped      bool
		}{
			{"time range", execindex.Filter{From: t0.Add(-time.Hour)}, 0, 5, newest(5, all), true},
			{"time range, deep page", execindex.Filter{From: t0.Add(-time.Hour)}, 30, 5, nil, true},
			{"metadata", execindex.Filter{Type: "invoice.paid", Customer: "cus_A"}, 0, 5, newest(5, all), true},
			{"two sets", execindex.Filter{Livemode: "true", Type: "invoice.paid"}, 0, 3, newest(3, func(i int) bool { return i%2 == 0 }), true},
			{"under the cap", execindex.Filter{From: t0.Add(45 * time.Second)}, 0, 50, newest(15, func(i int) bool { return i >= 45 }), false},
			{"sparse state past the cap", execindex.Filter{Type: "invoice.paid", States: []string{"archived"}}, 0, 10, nil, true},
		}
		for _, tt := range tests {
			t.Run(plan.name+"/"+tt.name, func(t *testing.T) {
				p, err := ix.Query(ctx, tt.f, tt.offset, tt.lim)
				if err != nil {
					t.Fatal(err)
				}
				if p.Capped != tt.capped {
					t.Errorf("capped = %v, want %v (total %d, counts %v)", p.Capped, tt.capped, p.Total, p.Counts)
				}
				got := ids(p)
				if tt.want != nil && !slices.Equal(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
				if tt.capped && p.Total > 20 {
					t.Errorf("total %d counts more than the 20 examined", p.Total)
				}
				if !tt.capped && p.Total != len(tt.want) {
					t.Errorf("total %d, want exact %d", p.Total, len(tt.want))
				}
			})
		}
		t.Run(plan.name+"/bulk refuses a capped filter", func(t *testing.T) {
			if _, _, err := ix.IDs(ctx, execindex.Filter{Type: "invoice.paid"}, 100); !errors.Is(err, execindex.ErrInvalidFilter) {
				t.Errorf("IDs over a capped filter: %v, want ErrInvalidFilter", err)
			}
		})
	}
	if _, err := env.Index.Query(ctx, execindex.Filter{}, execindex.MaxOffset+1, 50); !errors.Is(err, execindex.ErrInvalidFilter) {
		t.Errorf("offset past MaxOffset: %v, want ErrInvalidFilter", err)
	}
}
