package execindextest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// ConsoleQueries are the Console filters (query strings of GET
// /api/executions) that the benchmarks time over Bulk's executions, as an
// operator types them: none, one field, several, a type prefix over a time
// window, a type prefix with a smaller filter (test mode: its type sets are
// looked up per candidate), one customer ("cus_bulk_42"), a state, all of them at once, and
// the searches (q=): an event ID, a customer ID, each kind of object an
// event names (in_, ch_, pi_, sub_, dp_, cs_) and a customer's email.
var ConsoleQueries = []string{
	"",
	"livemode=true",
	"type=invoice.payment_failed&livemode=true&state=archived",
	"type=invoice.*&since=24h",
	"type=customer.*&livemode=false",
	"customer=cus_bulk_42",
	"state=failed",
	"type=invoice.payment_failed&livemode=true&customer=cus_bulk_42&state=failed&since=1h",
	"q=evt_bulk_0004242",
	"q=cus_bulk_42",
	"q=in_bulk_4242",
	"q=ch_bulk_4240",
	"q=pi_bulk_4241",
	"q=sub_bulk_4242",
	"q=dp_bulk_4243",
	"q=cs_bulk_4244",
	"q=cus_bulk_42@example.com",
}

// bulkRefs are the kinds of object Bulk's executions name besides their
// invoice, one each in turn: execution i names <bulkRefs[i%5]>_bulk_<i>.
var bulkRefs = []string{"ch", "pi", "sub", "dp", "cs"}

// BulkShape describes the executions Bulk writes.
type BulkShape struct {
	N         int     // executions; 100,000 in the benchmark
	Customers int     // distinct customers, "cus_bulk_<n>"
	Archived  float64 // share left archived; the rest completes
	Span      time.Duration
}

// Bulk writes shape.N real asynq tasks of every fixture type to queue, as
// the api would (task ID = event ID, headers, MaxRetry, Retention), indexes
// them with received times spread over shape.Span up to now, then completes
// them with a no-op asynq server, except a shape.Archived share that it
// archives. 10% are test mode. It returns the IDs in write order.
func Bulk(tb testing.TB, rdb redis.UniversalClient, queue string, shape BulkShape) []string {
	tb.Helper()
	ids, err := BulkContext(context.Background(), rdb, queue, shape)
	if err != nil {
		tb.Fatalf("execindextest: %v", err)
	}
	return ids
}

// BulkContext is [Bulk] for a caller without a testing.TB, such as
// deploy/bench: it returns what went wrong.
func BulkContext(ctx context.Context, rdb redis.UniversalClient, queue string, shape BulkShape) ([]string, error) {
	types := stripetest.FixtureTypes()
	templates := map[string][]byte{}
	for _, typ := range types {
		for _, live := range []bool{true, false} {
			templates[typ+strconv.FormatBool(live)] = stripetest.Edit(stripetest.Fixture(typ), func(m map[string]any) {
				m["id"] = "__EVENT_ID__"
				m["livemode"] = live
				o := stripetest.Object(m)
				if o["object"] == "customer" {
					o["id"] = "__CUSTOMER__"
				} else {
					o["customer"] = "__CUSTOMER__"
				}
			})
		}
	}
	client := asynq.NewClientFromRedisClient(rdb)
	ix := execindex.New(rdb, queue)
	nArchived := int(float64(shape.N) * shape.Archived)
	ids := make([]string, shape.N)
	now := time.Now()
	write := func(from, to int) error {
		r := rand.New(rand.NewPCG(uint64(from), 7))
		for i := from; i < to; i++ {
			typ := types[r.IntN(len(types))]
			live := r.IntN(10) != 0
			m := stripetask.Metadata{
				ID:         fmt.Sprintf("evt_bulk_%07d", i),
				Type:       typ,
				Livemode:   live,
				APIVersion: "2023-10-16",
				Customer:   fmt.Sprintf("cus_bulk_%d", r.IntN(max(shape.Customers, 1))),
				Created:    now.Unix(),
			}
			// What search finds it by: an invoice of its own, one other
			// object (a charge, payment intent, subscription, dispute or
			// checkout session, in turn), and its customer's email.
			m.Refs = []string{fmt.Sprintf("in_bulk_%d", i), fmt.Sprintf("%s_bulk_%d", bulkRefs[i%len(bulkRefs)], i), m.Customer + "@example.com"}
			body := templates[typ+strconv.FormatBool(live)]
			body = bytes.Replace(body, []byte("__EVENT_ID__"), []byte(m.ID), 1)
			body = bytes.ReplaceAll(body, []byte("__CUSTOMER__"), []byte(m.Customer))
			if _, err := client.EnqueueContext(ctx, stripetask.NewFromMetadata(body, m, stripetask.Options{Queue: queue})); err != nil {
				return err
			}
			at := now.Add(-shape.Span + shape.Span/time.Duration(shape.N)*time.Duration(i))
			if err := ix.Add(ctx, m.ID, m, at); err != nil {
				return err
			}
			ids[i] = m.ID
		}
		return nil
	}
	parallel := func(from, to int) error {
		const workers = 8
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		per := (to - from + workers - 1) / workers
		for w := range workers {
			a, b := from+w*per, min(from+(w+1)*per, to)
			if a >= b {
				continue
			}
			wg.Go(func() {
				if err := write(a, b); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return fmt.Errorf("bulk write: %w", err)
		}
		return nil
	}
	// The archived share first, archived in one call; then the rest, run
	// to completion.
	if err := parallel(0, nArchived); err != nil {
		return nil, err
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	if nArchived > 0 {
		if _, err := insp.ArchiveAllPendingTasks(queue); err != nil {
			return nil, err
		}
	}
	if err := parallel(nArchived, shape.N); err != nil {
		return nil, err
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Queues: map[string]int{queue: 1}, Concurrency: 20, TaskCheckInterval: 20 * time.Millisecond,
		Logger: quietLogger{}, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		qi, err := insp.GetQueueInfo(queue)
		if err != nil {
			return nil, err
		}
		if qi.Pending == 0 && qi.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d tasks still pending after 2 minutes", qi.Pending)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return ids, nil
}
