package keyspace_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// TestAsynqKeys checks keyspace's asynq keys against asynq v0.26 itself:
// a task asynq enqueues, schedules, archives, runs, retries and completes
// is in the key keyspace names for that state, and its hash is
// keyspace.Task.
func TestAsynqKeys(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	rdb := db.Client
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	const q = "keys"
	enqueue := func(id string, opts ...asynq.Option) {
		t.Helper()
		opts = append(opts, asynq.TaskID(id), asynq.Queue(q), asynq.Retention(time.Hour))
		if _, err := client.EnqueueContext(ctx, asynq.NewTask("t", nil), opts...); err != nil {
			t.Fatal(err)
		}
	}
	enqueue("pending")
	member(t, rdb, "list", keyspace.Pending(q), "pending")
	if err := insp.ArchiveTask(q, "pending"); err != nil { // keep it from the server below
		t.Fatal(err)
	}
	enqueue("scheduled", asynq.ProcessIn(time.Hour))
	enqueue("archived", asynq.ProcessIn(time.Hour))
	if err := insp.ArchiveTask(q, "archived"); err != nil {
		t.Fatal(err)
	}

	// A server takes "active" and "retry" in turn: "active" blocks until
	// the test has looked, "retry" fails once; then "completed" completes.
	look := make(chan struct{})
	looked := make(chan struct{})
	enqueue("active")
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{q: 1}, TaskCheckInterval: 10 * time.Millisecond,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		LogLevel:       asynq.FatalLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		switch id {
		case "active":
			close(look)
			<-looked
			return nil
		case "retry":
			return context.DeadlineExceeded
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	<-look
	member(t, rdb, "list", keyspace.Active(q), "active")
	close(looked)
	enqueue("retry")
	enqueue("completed")
	waitState(t, insp, q, "retry", asynq.TaskStateRetry)
	waitState(t, insp, q, "completed", asynq.TaskStateCompleted)
	srv.Stop()

	for _, c := range []struct{ kind, key, id string }{
		{"zset", keyspace.Scheduled(q), "scheduled"},
		{"zset", keyspace.Archived(q), "archived"},
		{"zset", keyspace.Retry(q), "retry"},
		{"zset", keyspace.Completed(q), "completed"},
		{"set", keyspace.AsynqQueues, q},
	} {
		member(t, rdb, c.kind, c.key, c.id)
	}
	for _, id := range []string{"scheduled", "archived", "retry", "completed", "active"} {
		if n := rdb.Exists(ctx, keyspace.Task(q, id)).Val(); n != 1 {
			t.Errorf("no task hash %s for task %s", keyspace.Task(q, id), id)
		}
	}
}

// member fails t unless id is a member of key, of kind list, set or zset.
func member(t *testing.T, rdb redis.UniversalClient, kind, key, id string) {
	t.Helper()
	ctx := context.Background()
	var found bool
	switch kind {
	case "list":
		found = rdb.LPos(ctx, key, id, redis.LPosArgs{}).Err() == nil
	case "set":
		found = rdb.SIsMember(ctx, key, id).Val()
	case "zset":
		found = rdb.ZScore(ctx, key, id).Err() == nil
	}
	if !found {
		t.Errorf("%s is not in the %s %s", id, kind, key)
	}
}

// waitState waits up to 10 s for task id of queue q to reach state.
func waitState(t *testing.T, insp *asynq.Inspector, q, id string, state asynq.TaskState) {
	t.Helper()
	poll.Value(t, 10*time.Second, fmt.Sprintf("task %s %v", id, state), func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(insp, q, id, state)
	})
}
