package builtin

import (
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestWorkerProcessesEveryShard runs a worker with QUEUE_SHARDS=3 and one
// global limit: it handles the events of every shard queue.
func TestWorkerProcessesEveryShard(t *testing.T) {
	cfg := stripeq.Config{Queue: "stripe", Shards: 3, Concurrency: 5, GlobalConcurrency: 2}
	w, db := setupWith(t, cfg, Options{})
	runServer(t, w)

	opts := stripetask.Options{Queue: cfg.Queue, Shards: cfg.Shards}
	client := asynq.NewClientFromRedisClient(db.Client)
	want := map[string]int{}
	for i := range 30 {
		body := stripetest.Edit(stripetest.Event("customer.updated", fmt.Sprintf("evt_ws_%02d", i), time.Now()), func(e map[string]any) {
			stripetest.Object(e)["id"] = fmt.Sprintf("cus_ws_%02d", i)
		})
		task, m, err := stripetask.New(body, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
		want[stripetask.QueueFor(m.ID, opts)]++
	}
	if len(want) != 3 {
		t.Fatalf("30 events used shards %v, want all 3", want)
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	start := time.Now()
	for q, n := range want {
		poll.Value(t, 30*time.Second-time.Since(start), q+"'s tasks completed", func() (*asynq.QueueInfo, error) {
			return redistest.QueueCompleted(insp, q, n)
		})
	}
	for i := range 30 {
		if got := hash(t, db.Client, records.CustomerKey(fmt.Sprintf("cus_ws_%02d", i))); got["last_event_id"] != fmt.Sprintf("evt_ws_%02d", i) {
			t.Errorf("customer %d: %v", i, got)
		}
	}
}
