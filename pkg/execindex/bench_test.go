package execindex_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// BenchmarkQuery100k measures the first page (50 rows) of filtered lists
// over 100,000 retained executions. The Console adds one GetTaskInfo per
// row on top; see the dashboard's BenchmarkConsoleList.
func BenchmarkQuery100k(b *testing.B) {
	db := redistest.New(b)
	start := time.Now()
	execindextest.Bulk(b, db.Client, "stripe", execindextest.BulkShape{N: 100_000, Customers: 2000, Archived: 0.03, Span: 7 * 24 * time.Hour})
	b.Logf("seeded 100,000 executions in %v", time.Since(start).Round(time.Millisecond))
	ix := execindex.New(db.Client, "stripe")
	for _, bc := range []struct {
		name string
		f    execindex.Filter
	}{
		{"unfiltered", execindex.Filter{}},
		{"livemode=true", execindex.Filter{Livemode: "true"}},
		{"type=invoice.payment_failed,livemode=true,state=archived", execindex.Filter{Type: "invoice.payment_failed", Livemode: "true", States: []string{"archived"}}},
		{"prefix=invoice,last24h", execindex.Filter{TypePrefix: "invoice", From: time.Now().Add(-24 * time.Hour)}},
		{"customer", execindex.Filter{Customer: "cus_bulk_42"}},
		{"state=archived", execindex.Filter{States: []string{"archived"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Query(context.Background(), bc.f, 0, 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
