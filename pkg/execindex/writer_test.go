package execindex_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestWriter adds 3,000 entries from 16 goroutines: after Flush every one
// is in the index, and Close writes what was added after it.
func TestWriter(t *testing.T) {
	db := redistest.New(t)
	ix := execindex.New(db.Client, "stripe")
	w := execindex.NewWriter(db.Client, ix, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	const n, senders = 3000, 16
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := g; i < n; i += senders {
				id := fmt.Sprintf("evt_writer_%05d", i)
				w.Add(id, stripetask.Metadata{ID: id, Type: "invoice.paid", APIVersion: "2023-10-16", Customer: "cus_w", Created: 1}, time.Now())
			}
		})
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"all").Val(); got != n {
		t.Errorf("%d entries indexed after Flush, want %d", got, n)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"customer:cus_w").Val(); got != n {
		t.Errorf("%d entries in the customer's set, want %d", got, n)
	}
	if w.Dropped() != 0 {
		t.Errorf("Dropped() = %d", w.Dropped())
	}
	// An entry added after a Flush is written by Close.
	w.Add("evt_writer_last", stripetask.Metadata{ID: "evt_writer_last", Type: "invoice.paid", Created: 1}, time.Now())
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.Client.ZCard(ctx, execindex.KeyPrefix("stripe")+"all").Val(); got != n+1 {
		t.Errorf("%d entries indexed after Close, want %d", got, n+1)
	}
	// A request that outlives the server's shutdown may still add: the
	// entry is dropped (reconcile indexes it), without a panic.
	w.Add("evt_writer_late", stripetask.Metadata{ID: "evt_writer_late", Type: "invoice.paid", Created: 1}, time.Now())
	if w.Dropped() != 1 {
		t.Errorf("Dropped() after a late Add = %d, want 1", w.Dropped())
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestWriterRedisDown: entries that cannot be written are counted as
// dropped, Flush still returns, and the Writer goes on once Redis is back.
func TestWriterRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	db := redis.NewClient(opt)
	defer db.Close()
	ix := execindex.New(db, "stripe")
	w := execindex.NewWriter(db, ix, slog.New(slog.DiscardHandler))
	defer w.Close(context.Background())
	srv.Kill()
	w.Add("evt_down", stripetask.Metadata{ID: "evt_down", Type: "invoice.paid", Created: 1}, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush with Redis down: %v", err)
	}
	if w.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", w.Dropped())
	}
	srv.Restart()
	w.Add("evt_up", stripetask.Metadata{ID: "evt_up", Type: "invoice.paid", Created: 1}, time.Now())
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.ZScore(context.Background(), execindex.KeyPrefix("stripe")+"all", "evt_up").Err(); got != nil {
		t.Errorf("evt_up not indexed after Redis came back: %v", got)
	}
}
