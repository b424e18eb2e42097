package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// lifecycle is one customer's story, in the order Stripe creates it:
// subscription created → upcoming invoice → payment failed → dispute
// opened → invoice paid → dispute won.
var lifecycle = []string{
	"customer.created",
	"customer.subscription.created",
	"invoice.upcoming",
	"invoice.payment_failed",
	"charge.failed",
	"payment_intent.payment_failed",
	"charge.dispute.created",
	"invoice.paid",
	"charge.dispute.closed",
}

// scenario plays the lifecycle for a new customer, in order or shuffled,
// waits until the worker has handled every event, and prints the customer
// record read back from Redis.
func scenario(ctx context.Context, o options, shuffle bool, redisURL string, out io.Writer) error {
	if o.suffix == "" {
		o.suffix = randomHex(8)
	}
	o.id = ""
	// Created a second apart, a few minutes ago, in lifecycle order.
	start := time.Now().Add(-5 * time.Minute)
	order := slices.Clone(lifecycle)
	created := map[string]time.Time{}
	for i, t := range lifecycle {
		created[t] = start.Add(time.Duration(i) * time.Second)
	}
	if shuffle {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	fmt.Fprintf(out, "scenario for customer %s (%s order)\n", stripetest.CustomerID(o.suffix), map[bool]string{true: "shuffled", false: "Stripe's"}[shuffle])
	var ids []string
	for _, t := range order {
		id, err := send(ctx, o, t, created[t], out)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}

	opt, err := redisconn.Parse(redisURL)
	if err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	rdb := redisconn.NewClient(opt)
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	if err := waitHandled(ctx, insp, ids, 60*time.Second); err != nil {
		return err
	}
	key := "stripeq:customer:{" + stripetest.CustomerID(o.suffix) + "}"
	record, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	fmt.Fprintf(out, "\nredis-cli HGETALL '%s'\n", key)
	fields := make([]string, 0, len(record))
	for f := range record {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		fmt.Fprintf(out, "  %-28s %s\n", f, record[f])
	}
	return nil
}

// waitHandled waits until every task is completed or archived.
func waitHandled(ctx context.Context, insp *asynq.Inspector, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for _, id := range ids {
			info, err := insp.GetTaskInfo(stripetask.DefaultQueue, id)
			if err != nil || (info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived) {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the worker did not handle every event in time; is it running?")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
