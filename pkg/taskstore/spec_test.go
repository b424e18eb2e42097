package taskstore_test

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redisbatch"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetest"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// TestMessageIsTheTask: for every handled type, the task New builds,
// enqueued by asynq's Client, and the message NewMessage builds, stored by
// taskstore (as the api stores it), read the same in asynq's Inspector.
func TestMessageIsTheTask(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	store := taskstore.New(redisbatch.New(db.Client))
	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	for _, opts := range []stripetask.Options{
		{Queue: "viaasynq"},
		{Queue: "viaasynq", Shards: 4, Retention: 5 * time.Hour, Compression: compress.Zstd},
	} {
		for _, typ := range events.Handled() {
			body := stripetest.Fixture(typ)
			task, meta, err := stripetask.New(body, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.EnqueueContext(ctx, task); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			spec, meta2, err := stripetask.NewSpec(body, opts)
			msg := taskstore.FromSpec(spec)
			if err != nil || !maps.Equal(meta.Headers(), meta2.Headers()) {
				t.Fatalf("%s: NewMessage: %+v, %v", typ, meta2, err)
			}
			theirs, err := insp.GetTaskInfo(stripetask.QueueFor(meta.ID, opts), meta.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The same task in other queues: the base name differs.
			ours := opts
			ours.Queue = "viastore"
			msg = taskstore.FromSpec(stripetask.SpecFromMetadata(body, meta, ours))
			if res, err := store.Store(ctx, msg, nil); err != nil || res != taskstore.Stored {
				t.Fatalf("%s: Store = %v, %v", typ, res, err)
			}
			got, err := insp.GetTaskInfo(msg.Queue, meta.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != theirs.Type || !bytes.Equal(got.Payload, theirs.Payload) || !maps.Equal(got.Headers, theirs.Headers) ||
				got.MaxRetry != theirs.MaxRetry || got.Retention != theirs.Retention || got.Timeout != theirs.Timeout ||
				!got.Deadline.Equal(theirs.Deadline) || got.State != theirs.State || got.Queue[len("viastore"):] != theirs.Queue[len("viaasynq"):] {
				t.Errorf("%s: stored\n%+v\nasynq's\n%+v", typ, got, theirs)
			}
		}
	}
}
