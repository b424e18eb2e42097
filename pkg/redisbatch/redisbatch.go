// Package redisbatch sends the Redis commands of concurrent callers
// together, one pipeline for all of those waiting: a group commit.
//
// Under load the api has many deliveries in flight, each needing a small
// round trip (its task and marker, pkg/taskstore's one script). Sent
// one by one, each costs a write and a read system call on both sides, and
// those dominate the work. A [Batcher] sends a caller's commands at once
// while fewer than [MaxInFlight] pipelines are under way; past that, it
// gathers the callers that arrive, and they go together in the next
// pipeline. An idle process pays no extra wait, and a busy one sends
// fewer, larger pipelines.
//
// Each caller still gets its own commands' results and errors. Commands of
// one caller are sent in order and together, so a caller may end its
// commands with a WAIT that covers them.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package redisbatch

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds one pipeline's round trip when the caller's context
// has no earlier deadline.
const DefaultTimeout = 3 * time.Second

// MaxBatch is the most callers sent in one pipeline; more wait for the
// next.
const MaxBatch = 128

// MaxInFlight is the most pipelines a Batcher has under way at once. A
// caller that arrives while all of them are under way waits for the next
// one, with the others arriving meanwhile.
const MaxInFlight = 4

// Batcher groups the pipelines of concurrent callers. It is safe for
// concurrent use; the zero value is not usable, use [New].
type Batcher struct {
	rdb redis.UniversalClient

	mu       sync.Mutex
	pending  []*call
	flushing int // pipelines under way, at most MaxInFlight
}

type call struct {
	ctx  context.Context
	fn   func(redis.Pipeliner)
	done chan error
}

// New returns a Batcher sending on rdb.
func New(rdb redis.UniversalClient) *Batcher { return &Batcher{rdb: rdb} }

// Do queues fn's commands on a pipeline shared with the callers waiting at
// the same time, and returns once they have run, or when ctx ends. Read
// each command's result from the commands fn queued; the error returned is
// ctx's, or one that kept the whole pipeline from running (a connection
// failure), which the commands also carry.
func (b *Batcher) Do(ctx context.Context, fn func(p redis.Pipeliner)) error {
	c := &call{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.flushing < MaxInFlight {
		b.flushing++
		b.mu.Unlock()
		go b.flush()
	} else {
		b.mu.Unlock()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends the pending calls, MaxBatch at a time, until none are left.
// Up to MaxInFlight run at once.
func (b *Batcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), MaxBatch)
		if n == 0 {
			b.flushing--
			b.mu.Unlock()
			return
		}
		batch := make([]*call, n)
		copy(batch, b.pending)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()
		b.send(batch)
	}
}

// send runs one batch as one pipeline. Calls whose context already ended
// are left out: their caller has gone.
func (b *Batcher) send(batch []*call) {
	live := batch[:0]
	deadline := time.Now().Add(DefaultTimeout)
	for _, c := range batch {
		if c.ctx.Err() != nil {
			c.done <- c.ctx.Err()
			continue
		}
		if d, ok := c.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range live {
			c.fn(p)
		}
		return nil
	})
	if err != nil && !isCommandError(err) {
		for _, c := range live {
			c.done <- err
		}
		return
	}
	for _, c := range live {
		c.done <- nil
	}
}

// isCommandError reports whether err is one command's own error (a Redis
// error reply, or redis.Nil), which only that command's caller should see,
// rather than a failure of the whole pipeline.
func isCommandError(err error) bool {
	if err == redis.Nil {
		return true
	}
	_, ok := err.(redis.Error)
	return ok
}
