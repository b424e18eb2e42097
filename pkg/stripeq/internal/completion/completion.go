// Package completion sends the writes that follow a task's handler (the
// attempt's record, its outcome, the release of a global slot) in the
// round trip of asynq's completion of the task, instead of one of their
// own. Part of pkg/stripeq's engine: internal, no compatibility promise.
package completion

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// Wait is how long writes left to a completion wait for it; then they go
// in a round trip of their own. asynq completes a task right after its
// handler returns, so they wait that long only when it does not: its
// lease expired, or the server stopped in between (asynq then leaves the
// task to its recoverer, or requeues it).
const Wait = time.Second

// Writes are the commands a handler leaves to its task's completion.
type Writes struct {
	// Queue is the task's asynq queue.
	Queue string
	// Send queues the commands on p, sent with ctx (asynq's, for its
	// completion: the handler's has ended). Done is then called with them as
	// p's Exec returned them (the completion's own excluded), and the
	// first error among them, or nil.
	Send func(ctx context.Context, p redis.Pipeliner)
	Done func(cmds []redis.Cmder, err error)
	// Alone sends the commands in a round trip of their own, when no
	// completion took them within Wait, or at Flush.
	Alone func()
}

// Client carries the writes that handlers leave (Leave) in the round trip
// of asynq's completion of their task. It is the Redis client to hand
// asynq's server: every command goes through to the client it wraps, but
// the script by which asynq takes a task that succeeded out of its
// queue's active list (its completion, or done without a retention, or
// requeue when the server stops first: the scripts whose first key is
// that list) is sent in one pipeline after the writes its task left, which
// run first, in their order, as they would alone. Leave writes only for a
// handler that succeeded: asynq's retry and archive scripts carry
// nothing. The pipeline is not a MULTI: on a Cluster
// its commands may live in several hash slots.
//
// A Client that is not active (outside the server that uses it) takes
// nothing: Leave returns false, and the handler writes at once.
type Client struct {
	redis.UniversalClient

	mu      sync.Mutex
	active  bool
	pending map[string]*pending // by the queue's active list and task ID: slot()
}

// pending is the writes of one task.
type pending struct {
	Writes
	timer *time.Timer
}

// New returns a client over rdb, inactive until Activate.
func New(rdb redis.UniversalClient) *Client {
	return &Client{UniversalClient: rdb, pending: map[string]*pending{}}
}

// Activate makes Leave take writes, from now until Flush: call it before
// the server that uses c starts.
func (c *Client) Activate() {
	c.mu.Lock()
	c.active = true
	c.mu.Unlock()
}

// Flush sends the writes still pending, each alone, and makes Leave take
// nothing again: call it once the server has stopped.
func (c *Client) Flush() {
	c.mu.Lock()
	c.active = false
	left := c.pending
	c.pending = map[string]*pending{}
	c.mu.Unlock()
	for _, p := range left {
		p.timer.Stop()
		p.Alone()
	}
}

// Leave hands w to the completion of the task id of w.Queue, and reports
// whether c took it; false when c is nil or not active, and the caller
// writes itself.
func (c *Client) Leave(id string, w Writes) bool { return c.put(id, w, false) }

// Add hands w to the completion of the task id of w.Queue after the
// writes already left for it, if any (they keep their own Done and
// Alone, and run first), and reports whether c took it, as Leave does.
func (c *Client) Add(id string, w Writes) bool { return c.put(id, w, true) }

// put is Leave, or with after Add.
func (c *Client) put(id string, w Writes, after bool) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return false
	}
	k := slot(keyspace.Active(w.Queue), id)
	if old := c.pending[k]; old != nil {
		old.timer.Stop()
		if after {
			w = then(old.Writes, w)
		} else { // a task's handler ends once per attempt: never, but lose nothing
			go old.Alone()
		}
	}
	c.leave(k, w)
	return true
}

// then returns the writes of first followed by w's, in one pipeline, each
// given its own commands.
func then(first, w Writes) Writes {
	var n int // first's commands
	return Writes{
		Queue: w.Queue,
		Send: func(ctx context.Context, p redis.Pipeliner) {
			first.Send(ctx, p)
			n = p.Len()
			w.Send(ctx, p)
		},
		Done: func(cmds []redis.Cmder, _ error) {
			n := min(n, len(cmds))
			first.Done(cmds[:n], firstErr(cmds[:n]))
			w.Done(cmds[n:], firstErr(cmds[n:]))
		},
		Alone: func() { first.Alone(); w.Alone() },
	}
}

// leave makes w the pending writes at k, sent alone after Wait unless a
// completion takes them first; c.mu is held.
func (c *Client) leave(k string, w Writes) {
	p := &pending{Writes: w}
	p.timer = time.AfterFunc(Wait, func() {
		if c.take(k, p) {
			p.Alone()
		}
	})
	c.pending[k] = p
}

// firstErr is the first error among cmds, or nil.
func firstErr(cmds []redis.Cmder) error {
	for _, x := range cmds {
		if err := x.Err(); err != nil {
			return err
		}
	}
	return nil
}

// slot is the key of a task's pending writes: its queue's active list and
// its ID (several destinations' queues may hold one ID).
func slot(active, id string) string { return active + "\n" + id }

// take removes the writes p at k, and reports whether they were still
// pending.
func (c *Client) take(k string, p *pending) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[k] != p {
		return false
	}
	delete(c.pending, k)
	return true
}

// carried returns the pending writes that a script of asynq with keys and
// args carries, and forgets them: those of the task args[0] when keys[0]
// is its queue's active list, the first key of every script by which
// asynq takes a task out of it.
func (c *Client) carried(keys []string, args []any) *pending {
	if len(keys) == 0 || len(args) == 0 {
		return nil
	}
	id, ok := args[0].(string)
	if !ok {
		return nil
	}
	k := slot(keys[0], id)
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[k]
	if p == nil {
		return nil
	}
	delete(c.pending, k)
	p.timer.Stop()
	return p
}

// EvalSha runs the script by its hash, after the pending writes it
// carries, in one pipeline.
func (c *Client) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	if p := c.carried(keys, args); p != nil {
		return c.send(ctx, p, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.EvalSha(ctx, sha, keys, args...) })
	}
	return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
}

// Eval is EvalSha with the script's text (go-redis's fallback when Redis
// lacks the script).
func (c *Client) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	if p := c.carried(keys, args); p != nil {
		return c.send(ctx, p, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.Eval(ctx, script, keys, args...) })
	}
	return c.UniversalClient.Eval(ctx, script, keys, args...)
}

// send sends p's writes, then asynq's script, in one pipeline, hands p's
// commands and their first error to p.Done, and returns the script's
// command, whose result and error are asynq's.
func (c *Client) send(ctx context.Context, p *pending, script func(redis.Pipeliner) *redis.Cmd) *redis.Cmd {
	var cmd *redis.Cmd
	cmds, _ := c.UniversalClient.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		p.Send(ctx, pipe)
		cmd = script(pipe)
		return nil
	})
	if n := len(cmds); n > 0 && cmds[n-1] == redis.Cmder(cmd) {
		cmds = cmds[:n-1]
	}
	p.Done(cmds, firstErr(cmds))
	return cmd
}
