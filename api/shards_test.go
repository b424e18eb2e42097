package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestWebhookShards stores events with QUEUE_SHARDS=3: each lands in its
// shard queue and that shard's index, and a second delivery is still
// answered duplicate.
func TestWebhookShards(t *testing.T) {
	b := setup(t, map[string]string{"QUEUE_SHARDS": "3"})
	now := time.Now()
	opts := stripetask.Options{Queue: "stripe", Shards: 3}
	seen := map[string]int{}
	for i := range 12 {
		id := fmt.Sprintf("evt_shard_%02d", i)
		body := stripetest.Event("customer.updated", id, now)
		var messages []string
		for d := range 2 {
			status, msg := post(t, b.handler, body, stripetest.Sign(body, now.Add(time.Duration(d)*time.Second), stripetest.Secret))
			if status != 200 {
				t.Fatalf("%s delivery %d: status %d", id, d, status)
			}
			messages = append(messages, msg)
		}
		if want := []string{"Received", "duplicate"}; !slices.Equal(messages, want) {
			t.Errorf("%s: answers = %v, want %v", id, messages, want)
		}
		queue := stripetask.QueueFor(id, opts)
		seen[queue]++
		info, err := b.inspector.GetTaskInfo(queue, id)
		if err != nil {
			t.Errorf("%s not in its shard %s: %v", id, queue, err)
			continue
		}
		if info.Queue != queue {
			t.Errorf("%s in %s, want %s", id, info.Queue, queue)
		}
	}
	total := 0
	for _, q := range stripetask.Queues(opts) {
		n := len(tasks(t, b.inspector, q))
		if n != seen[q] {
			t.Errorf("queue %s holds %d tasks, want %d", q, n, seen[q])
		}
		total += n
	}
	if total != 12 || len(seen) < 2 {
		t.Errorf("%d tasks over %v, want 12 over several shards", total, seen)
	}
	if n := len(tasks(t, b.inspector, "stripe")); n != 0 {
		t.Errorf("the unsharded queue holds %d tasks, want 0", n)
	}
	// The Console's index of each shard holds its shard's events.
	if err := b.index.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rdb := redisconn.NewClient(b.cfg.Redis)
	defer rdb.Close()
	ix := execindex.NewShards(rdb, b.cfg.Task)
	p, err := ix.Query(context.Background(), execindex.Filter{}, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 12 || len(p.Items) != 12 {
		t.Errorf("index: total %d, %d items, want 12", p.Total, len(p.Items))
	}
	for _, it := range p.Items {
		if it.Queue != stripetask.QueueFor(it.ID, opts) {
			t.Errorf("index: %s in %s", it.ID, it.Queue)
		}
	}
}

func TestConfigQueueShards(t *testing.T) {
	for _, v := range []string{"0", "65", "many", "-1"} {
		t.Run(v, func(t *testing.T) {
			_, err := loadConfig(func(k string) string {
				return map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "QUEUE_SHARDS": v}[k]
			})
			if err == nil || !strings.Contains(err.Error(), "QUEUE_SHARDS") {
				t.Errorf("QUEUE_SHARDS=%s: error %v, want one naming QUEUE_SHARDS", v, err)
			}
		})
	}
}
