package stripeq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// A welcome email goes out once per event, however often the event is
// delivered, retried or re-run from the Console (a re-run has its own
// task ID but the same event ID).
func ExampleOnce() {
	mr, err := miniredis.Run() // a Redis for the example; yours in a program
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	ctx := context.Background()

	for _, taskID := range []string{"evt_1", "evt_1", "evt_1:rerun:1"} {
		e := stripeq.Meta{ID: "evt_1", TaskID: taskID, Created: time.Unix(1767225600, 0)}
		err := stripeq.Once(ctx, rdb, e, "welcome_email", func(ctx context.Context) error {
			fmt.Println("email sent by", taskID)
			return nil
		})
		fmt.Println(taskID, "->", err)
	}
	// Output:
	// email sent by evt_1
	// evt_1 -> <nil>
	// evt_1 -> <nil>
	// evt_1:rerun:1 -> <nil>
}
