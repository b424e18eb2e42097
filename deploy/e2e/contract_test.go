package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestOneParseOfAnEvent delivers, to the real api and worker, validly
// signed events that the api and the worker could read differently (issue
// 19, 8a and 8b). The event of the issue, a charge.failed with
// "customer":"cus_a" and "cuſtomer":"cus_b", must mark cus_a delinquent,
// the customer the api wrote in the task's header, and leave cus_b alone.
// A name given twice, and IDs, types, customers and accounts outside
// Stripe's characters, are answered 400 and stored nowhere.
func TestOneParseOfAnEvent(t *testing.T) {
	db := redistest.New(t)
	env := map[string]string{"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "API_ADDR": "127.0.0.1:0"}
	api := proctest.Start(t, "api", proctest.Binary(t, "api"), env)
	proctest.Start(t, "worker", proctest.Binary(t, "worker"), env)
	addr := proctest.APIAddr(t, api)
	s := &stack{apiURL: "http://" + addr}
	ctx := context.Background()

	base := string(stripetest.Event("charge.failed", "evt_longs1", time.Now()))
	const customer = `"customer":"cus_stripeq_demo"`
	if !strings.Contains(base, customer) {
		t.Fatalf("the charge.failed fixture has no %s", customer)
	}
	longS := strings.Replace(base, customer, `"customer":"cus_a","cuſtomer":"cus_b"`, 1)
	if status, msg := s.deliver(t, []byte(longS)); status != 200 || msg != "Received" {
		t.Fatalf("the long-s event: %d %q, want 200 Received", status, msg)
	}
	poll.Until(t, 20*time.Second, "the long-s event's completion", func() bool {
		n, _ := db.Client.ZCard(ctx, "asynq:{stripe}:completed").Result()
		return n == 1
	})
	info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo("stripe", "evt_longs1")
	if err != nil || info.Headers["customer"] != "cus_a" {
		t.Errorf("the task's customer header (the Console's) = %v, %v; want cus_a", info, err)
	}
	if v, _ := db.Client.HGet(ctx, "stripeq:customer:{cus_a}", "delinquent").Result(); v != "true" {
		t.Errorf("cus_a delinquent = %q, want true", v)
	}
	if n, _ := db.Client.Exists(ctx, "stripeq:customer:{cus_b}").Result(); n != 0 {
		t.Error("the worker wrote a record for cus_b, which the api never saw")
	}

	refused := map[string]string{
		"customer twice":        strings.Replace(base, customer, `"customer":"cus_a","customer":"cus_b"`, 1),
		"an ID with #":          strings.Replace(base, `"evt_longs1"`, `"evt_victim1#x"`, 1),
		"an ID with ?":          strings.Replace(base, `"evt_longs1"`, `"evt_victim1?x"`, 1),
		"an ID with a newline":  strings.Replace(base, `"evt_longs1"`, `"evt_victim1\nx"`, 1),
		"an ID with NUL":        strings.Replace(base, `"evt_longs1"`, `"evt_victim1\u0000x"`, 1),
		"a re-run copy's ID":    strings.Replace(base, `"evt_longs1"`, `"evt_victim1:rerun:7"`, 1),
		"a type with a newline": strings.Replace(base, `"type":"charge.failed"`, `"type":"charge.failed\ncustomer:cus_x"`, 1),
		"a customer with #":     strings.Replace(base, customer, `"customer":"cus_a#x"`, 1),
		"an account with /":     strings.Replace(base, `"type":"charge.failed"`, `"account":"acct_1/x","type":"charge.failed"`, 1),
	}
	for name, body := range refused {
		t.Run(name, func(t *testing.T) {
			if body == base {
				t.Fatal("nothing replaced")
			}
			if status, msg := s.deliver(t, []byte(body)); status != 400 || msg == "" {
				t.Errorf("answered %d %q, want 400 with the reason", status, msg)
			} else {
				t.Logf("400 %s", msg)
			}
		})
	}
	keys, _ := db.Client.Keys(ctx, "asynq:{stripe}:t:*").Result()
	if len(keys) != 1 {
		t.Errorf("tasks stored: %v, want only evt_longs1's", keys)
	}
}
