package stripeq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// Stripe delivers customer.subscription.updated events out of order: a
// Record takes each event's fields only when it is newer than what the
// record holds. (In a handler, pass w.Redis() and e.Meta.)
func ExampleRecord_Apply() {
	rdb, stop := exampleRedis() // a Redis for the example; w.Redis() in a program
	defer stop()
	ctx := context.Background()

	sub := stripeq.Record{Key: "myapp:subscription:{sub_1}"}
	t0 := time.Unix(1767225600, 0)
	newer := stripeq.Meta{ID: "evt_2", Created: t0.Add(time.Minute)}
	older := stripeq.Meta{ID: "evt_1", Created: t0}

	applied, _ := sub.Apply(ctx, rdb, newer, "status", "canceled")
	fmt.Println("newer applied:", applied)
	applied, _ = sub.Apply(ctx, rdb, older, "status", "active")
	fmt.Println("older applied:", applied)
	fmt.Println(rdb.HMGet(ctx, sub.Key, "status", "last_event_id").Val()...)
	// Output:
	// newer applied: true
	// older applied: false
	// canceled evt_2
}
