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
		name   string
		f      execindex.Filter
		offset int
	}{
		{"unfiltered", execindex.Filter{}, 0},
		{"livemode=true", execindex.Filter{Livemode: "true"}, 0},
		{"type=invoice.payment_failed,livemode=true,state=archived", execindex.Filter{Type: "invoice.payment_failed", Livemode: "true", States: []string{"archived"}}, 0},
		{"prefix=invoice,last24h", execindex.Filter{TypePrefix: "invoice", From: time.Now().Add(-24 * time.Hour)}, 0},
		{"customer", execindex.Filter{Customer: "cus_bulk_42"}, 0},
		{"ref=in_bulk_4242", execindex.Filter{Ref: "in_bulk_4242"}, 0},
		{"ref=email", execindex.Filter{Ref: "cus_bulk_42@example.com"}, 0},
		{"ref=email,state=failed", execindex.Filter{Ref: "cus_bulk_42@example.com", States: []string{"retry", "archived"}}, 0},
		{"state=archived", execindex.Filter{States: []string{"archived"}}, 0},
		// The deep page: every execution of the last 7 days, page 2.
		{"since=7d,page=2", execindex.Filter{From: time.Now().Add(-7 * 24 * time.Hour)}, 50},
		{"since=7d,page=200", execindex.Filter{From: time.Now().Add(-7 * 24 * time.Hour)}, 9950},
		{"state=pending", execindex.Filter{States: []string{"pending"}}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Query(context.Background(), bc.f, bc.offset, 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
