package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/clock"
)

// batch sends one event's record writes and reads to Redis in one round
// trip: a pipeline, which a Redis Cluster client splits by node. Its
// commands run in the order queued, but not atomically, as the same
// commands sent one by one would; each is safe to run again. It is the
// one way the built-ins touch their records: a single write is a batch of
// one.
type batch struct {
	rdb     redis.UniversalClient
	pipe    redis.Pipeliner
	what    []string        // per queued command, for errors
	scripts []*redis.Script // the scripts queued by their hash, each once
	m       stripeq.Meta
	written []written // the records written, for the execution's outcome
}

// written is a record a batch writes: always (a link), or as an apply
// that may find the record newer.
type written struct {
	key   string
	apply ref // noRef for a write that always applies
}

// ref names a command queued on a batch; its value is read from the
// batch's result, which exists only once the batch ran.
type ref int

// noRef is a ref to nothing: its value is "" and it did not apply.
const noRef ref = -1

// batch starts the batch of the execution m, whose outcome notes the
// records the batch writes.
func (h *handlers) batch(m stripeq.Meta) *batch {
	return &batch{rdb: h.rdb, pipe: h.rdb.Pipeline(), m: m}
}

func (b *batch) add(what string) ref {
	b.what = append(b.what, what)
	return ref(len(b.what) - 1)
}

// apply queues rec.Apply for the event m. The script is sent by its hash
// (EVALSHA; see exec for Redis's answer NOSCRIPT).
func (b *batch) apply(ctx context.Context, rec stripeq.Record, m stripeq.Meta, fields ...string) ref {
	return b.applyUnset(ctx, rec, m, nil, fields...)
}

// applyUnset is apply that also deletes the fields unset, which the event
// m leaves unknown: a record must not keep an older event's value beside
// the newer event's clock.
func (b *batch) applyUnset(ctx context.Context, rec stripeq.Record, m stripeq.Meta, unset []string, fields ...string) ref {
	clk := rec.Clock
	if clk == "" {
		clk = stripeq.DefaultClock
	}
	r := b.script(ctx, "update "+rec.Key, clock.Script, []string{rec.Key}, clock.Args(clk, m.ID, m.Created.Unix(), fields, unset)...)
	b.written = append(b.written, written{key: rec.Key, apply: r})
	return r
}

// script queues running s by its hash, described by what in errors
// (e.g. "update the hold of cus_1").
func (b *batch) script(ctx context.Context, what string, s *redis.Script, keys []string, args ...any) ref {
	s.EvalSha(ctx, b.pipe, keys, args...)
	if !slices.Contains(b.scripts, s) {
		b.scripts = append(b.scripts, s)
	}
	return b.add(what)
}

// link queues recording what is known about a charge (customer, invoice,
// payment intent), keeping fields already known when a value is empty.
func (b *batch) link(ctx context.Context, chargeID string, fields map[string]string) {
	set := make(map[string]any, len(fields))
	for k, v := range fields {
		if v != "" {
			set[k] = v
		}
	}
	if chargeID != "" && len(set) > 0 {
		b.pipe.HSet(ctx, records.ChargeKey(chargeID), set)
		b.add("update " + records.ChargeKey(chargeID))
		b.written = append(b.written, written{key: records.ChargeKey(chargeID), apply: noRef})
	}
}

// get queues reading a field of a hash; its value is "" when the field is
// absent.
func (b *batch) get(ctx context.Context, key, field string) ref {
	b.pipe.HGet(ctx, key, field)
	return b.add("read " + key)
}

// customerEmail queues, when needed, reading the email of the customer
// record, unless known already gives it. The result's email gives known,
// else the record's email, else "".
func (b *batch) customerEmail(ctx context.Context, customer, known string, needed bool) email {
	if !needed || known != "" || customer == "" {
		return email{known: known, ref: noRef}
	}
	return email{ref: b.get(ctx, records.CustomerKey(customer), "email")}
}

// email is a customer's address, known or read by a batch.
type email struct {
	known string
	ref   ref
}

// result is what a batch's commands returned.
type result struct {
	cmds []redis.Cmder
}

// exec sends the queued commands and returns their result, or the first
// error of one, an absent field aside. When Redis lacks a script (NOSCRIPT:
// it restarted or failed over, or SCRIPT FLUSH), exec loads the batch's
// scripts and sends the whole batch again, in its order: every command of
// a batch is safe to run again, and those that ran before the missing
// script must not see its write skipped.
func (b *batch) exec(ctx context.Context) (result, error) {
	if len(b.what) == 0 {
		return result{}, nil
	}
	cmds, err := b.pipe.Exec(ctx)
	if noScript(cmds) {
		cmds, err = b.again(ctx, cmds)
	}
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return result{}, fmt.Errorf("%s: %w", b.what[i], err)
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return result{}, fmt.Errorf("update records: %w", err)
	}
	res := result{cmds: cmds}
	for _, w := range b.written {
		if w.apply == noRef || res.applied(w.apply) {
			b.m.RecordChanged(w.key, true, "")
		} else {
			b.m.RecordChanged(w.key, false, "a newer event is already applied")
		}
	}
	return res, nil
}

// noScript reports whether a command of cmds found its script missing.
func noScript(cmds []redis.Cmder) bool {
	return slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
		return c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT")
	})
}

// again loads the batch's scripts into Redis (every master of a Cluster)
// and sends the commands cmds of the batch once more.
func (b *batch) again(ctx context.Context, cmds []redis.Cmder) ([]redis.Cmder, error) {
	for _, s := range b.scripts {
		if err := s.Load(ctx, b.rdb).Err(); err != nil {
			return nil, fmt.Errorf("load a script: %w", err)
		}
	}
	return b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range cmds {
			c.SetErr(nil)
			p.Process(ctx, c)
		}
		return nil
	})
}

// applied reports whether the apply r applied its fields.
func (res result) applied(r ref) bool {
	if r == noRef {
		return false
	}
	n, _ := res.cmds[r].(*redis.Cmd).Int()
	return n == 1
}

// value is the string r read, "" when absent.
func (res result) value(r ref) string {
	if r == noRef {
		return ""
	}
	switch c := res.cmds[r].(type) {
	case *redis.StringCmd:
		return c.Val()
	case *redis.Cmd:
		s, _ := c.Text()
		return s
	}
	return ""
}

// email is the address e gives.
func (res result) email(e email) string {
	if e.known != "" {
		return e.known
	}
	return res.value(e.ref)
}
