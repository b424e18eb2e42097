package stripetask_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

func TestQueueFor(t *testing.T) {
	tests := []struct {
		name string
		id   string
		o    stripetask.Options
		want string
	}{
		{"default: one queue", "evt_1", stripetask.Options{}, "stripe"},
		{"one shard is the queue itself", "evt_1", stripetask.Options{Queue: "billing", Shards: 1}, "billing"},
		// FNV-1a 32 of the event ID (evt_1: 647641602), modulo the shards: fixed forever,
		// since a changed hash would let a redelivery miss its duplicate.
		{"three shards", "evt_1", stripetask.Options{Shards: 3}, "stripe-0"},
		{"three shards, another ID", "evt_1OabcXYZ", stripetask.Options{Shards: 3}, "stripe-1"},
		{"named base", "evt_1", stripetask.Options{Queue: "billing", Shards: 3}, "billing-0"},
		{"a re-run copy follows its original", "evt_1OabcXYZ:rerun:4", stripetask.Options{Shards: 3}, "stripe-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stripetask.QueueFor(tt.id, tt.o); got != tt.want {
				t.Errorf("QueueFor(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestQueueForSpreads(t *testing.T) {
	for _, shards := range []int{2, 3, 8} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			o := stripetask.Options{Shards: shards}
			queues := stripetask.Queues(o)
			if len(queues) != shards || queues[0] != "stripe-0" || queues[shards-1] != fmt.Sprintf("stripe-%d", shards-1) {
				t.Fatalf("Queues = %v", queues)
			}
			const n = 30000
			count := map[string]int{}
			for i := range n {
				id := fmt.Sprintf("evt_1P%010dQx", i*7919)
				q := stripetask.QueueFor(id, o)
				if !slices.Contains(queues, q) {
					t.Fatalf("QueueFor(%q) = %q, not one of %v", id, q, queues)
				}
				if again := stripetask.QueueFor(id, o); again != q {
					t.Fatalf("QueueFor(%q) is not stable: %q then %q", id, q, again)
				}
				count[q]++
			}
			for _, q := range queues {
				// Within 5% of an even share.
				if even := n / shards; count[q] < even*95/100 || count[q] > even*105/100 {
					t.Errorf("%s got %d of %d events, want about %d", q, count[q], n, even)
				}
			}
		})
	}
}

// TestShardDuplicatesCollide stores tasks in a real Redis: each lands in
// its event's shard, and a second delivery of the event, whatever else
// differs, lands in the same shard and conflicts.
func TestShardDuplicatesCollide(t *testing.T) {
	db := redistest.New(t)
	client := asynq.NewClientFromRedisClient(db.Client)
	o := stripetask.Options{Queue: "stripe", Shards: 3}
	used := map[string]bool{}
	for i := range 12 {
		id := fmt.Sprintf("evt_dup_%d", i)
		first := stripetest.Event("invoice.paid", id, time.Unix(1700000000, 0))
		second := stripetest.Edit(first, func(e map[string]any) { e["livemode"] = true })
		want := stripetask.QueueFor(id, o)
		used[want] = true
		task, _, err := stripetask.New(first, o)
		if err != nil {
			t.Fatal(err)
		}
		info, err := client.Enqueue(task)
		if err != nil {
			t.Fatal(err)
		}
		if info.Queue != want {
			t.Errorf("%s: stored in %q, want %q", id, info.Queue, want)
		}
		task, _, err = stripetask.New(second, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Errorf("%s: second delivery: %v, want ErrTaskIDConflict", id, err)
		}
	}
	if len(used) != 3 {
		t.Errorf("12 events used shards %v, want all 3", used)
	}
}
