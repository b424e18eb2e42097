package builtin_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// A program includes the built-in handlers beside its own, for another
// event type; the built-ins keep their records (pkg/records).
func ExampleRegister() {
	mr, err := miniredis.Run() // a Redis for the example; yours in a program
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	w, err := stripeq.NewWorker(stripeq.Config{
		RedisURL: "redis://" + mr.Addr(), GlobalConcurrency: -1, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	builtin.Register(w, builtin.Options{})
	stripeq.Handle(w, "customer.subscription.pending_update_applied", func(ctx context.Context, e *stripeq.Event[struct{}]) error {
		return nil
	})
	fmt.Println(len(w.Handled()), "types handled")

	task, _, _ := stripetask.New(stripetest.Fixture("customer.created"), stripetask.Options{})
	if err := w.ProcessTask(context.Background(), task); err != nil {
		panic(err)
	}
	fmt.Println(w.Redis().HGet(context.Background(), records.CustomerKey("cus_stripeq_demo"), "email").Val())
	// Output:
	// 23 types handled
	// jenny.rosen@example.com
}
