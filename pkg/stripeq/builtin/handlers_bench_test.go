package builtin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// roundTrips counts the commands and pipelines a client sends to Redis.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkHandlers runs each handled type's handler as asynq would
// (parse, then the handler's Redis work) against a real Redis,
// without a Stripe key or global concurrency, and reports the Redis round
// trips per event. Each type cycles through 1,000 distinct events of one
// customer with rising creation times; a dispute's charge is linked first.
// stripeq's BenchmarkParse is the decode share of these figures.
func BenchmarkHandlers(b *testing.B) {
	w, _ := setup(b)
	trips := &roundTrips{}
	w.Redis().AddHook(trips)
	mux := w
	ctx := context.Background()
	charge, _, _ := stripetask.New(stripetest.Fixture(events.ChargeFailed), stripetask.Options{})
	if err := mux.ProcessTask(ctx, charge); err != nil {
		b.Fatal(err)
	}
	t0 := time.Unix(1767225600, 0)
	for _, typ := range events.Handled() {
		tasks := make([]*asynq.Task, 1000)
		for i := range tasks {
			body := stripetest.Event(typ, fmt.Sprintf("evt_1BenchWorker%08d", i), t0.Add(time.Duration(i)*time.Second))
			tasks[i], _, _ = stripetask.New(body, stripetask.Options{})
		}
		b.Run(typ, func(b *testing.B) {
			b.ReportAllocs()
			before := trips.n.Load()
			i := 0
			for b.Loop() {
				if err := mux.ProcessTask(ctx, tasks[i%len(tasks)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(trips.n.Load()-before)/float64(i), "roundtrips/op")
		})
	}

	// With STRIPE_SECRET_KEY, as deploy/bench runs it: each handler first
	// retrieves the event from a local Stripe API.
	stripeAPI := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(stripetest.Fixture(events.ChargeFailed))
	}))
	defer stripeAPI.Close()
	mux, _ = setupWith(b, stripeq.Config{StripeSecretKey: "sk_test_bench", StripeAPIBase: stripeAPI.URL}, Options{})
	task, _, _ := stripetask.New(stripetest.Fixture(events.ChargeFailed), stripetask.Options{})
	b.Run("refetch/"+events.ChargeFailed, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := mux.ProcessTask(ctx, task); err != nil {
				b.Fatal(err)
			}
		}
	})
}
