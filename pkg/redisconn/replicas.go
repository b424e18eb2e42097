package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means a write reached the master but not enough replicas
// confirmed it in time. The write may still replicate later; the caller
// should treat it as not durable (the api answers 503, so that Stripe
// delivers the event again and finds it stored, as a duplicate).
var ErrNotReplicated = errors.New("write not confirmed by enough Redis replicas")

// WaitForReplicas makes every script call (EVAL, EVALSHA: how asynq and
// stripeq write) on c wait until n replicas have the write, with Redis's
// WAIT, for at most timeout. Redis replicates asynchronously, so without
// this a write acknowledged by a master that then dies before replicating
// it is lost at failover. WAIT counts the writes of one connection, so the
// script and the WAIT are sent as one pipeline on one connection.
func WaitForReplicas(c redis.UniversalClient, n int, timeout time.Duration) {
	c.AddHook(replicaHook{client: c, n: n, timeout: timeout})
}

type replicaHook struct {
	client  redis.UniversalClient
	n       int
	timeout time.Duration
}

func (replicaHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (replicaHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h replicaHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := strings.ToLower(cmd.Name())
		if name != "eval" && name != "evalsha" {
			return next(ctx, cmd)
		}
		var wait *redis.IntCmd
		_, err := h.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Process(ctx, cmd)
			wait = redis.NewIntCmd(ctx, "wait", h.n, h.timeout.Milliseconds())
			p.Process(ctx, wait)
			return nil
		})
		if cmd.Err() != nil {
			return cmd.Err() // the script's own error, e.g. NOSCRIPT for Script.Run to retry
		}
		if err != nil {
			return err
		}
		if got := wait.Val(); got < int64(h.n) {
			err := fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, got, h.n, h.timeout)
			cmd.SetErr(err)
			return err
		}
		return nil
	}
}
