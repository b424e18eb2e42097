package taskstore

import (
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// DefaultTimeout is the timeout asynq's Client gives a task enqueued with
// neither asynq.Timeout nor asynq.Deadline: 30 minutes.
const DefaultTimeout = 30 * time.Minute

// Task is what one asynq task holds, as asynq.Client.EnqueueContext would
// build it for a task enqueued now with asynq.TaskID, asynq.Queue,
// asynq.MaxRetry, asynq.Retention and optionally asynq.Timeout.
type Task struct {
	ID      string // task ID; must not be blank
	Type    string // task type name; must not be blank
	Queue   string // asynq queue; must not be blank
	Payload []byte
	Headers map[string]string
	// MaxRetry is asynq.MaxRetry. Zero means no retry (asynq's own
	// default of 25 applies only when the option is left out, which a
	// Task cannot express).
	MaxRetry int
	// Retention is asynq.Retention: how long the completed task is kept,
	// in whole seconds. If zero, it is deleted once done.
	Retention time.Duration
	// Timeout is asynq.Timeout, in whole seconds. If zero, DefaultTimeout,
	// as asynq's Client sets it when neither a timeout nor a deadline is
	// given.
	Timeout time.Duration
	// CompletedAt is set only for a task written as completed (asynq's
	// completed_at, whole seconds): zero for a task to run.
	CompletedAt time.Time
}

// FromSpec returns the task of a Stripe event as stripetask.New would
// enqueue it (stripetask.NewSpec), with asynq's default timeout.
func FromSpec(s stripetask.Spec) Task {
	return Task{ID: s.ID, Type: s.Type, Queue: s.Queue, Payload: s.Payload, Headers: s.Headers, MaxRetry: s.MaxRetry, Retention: s.Retention}
}

// Encode returns t as asynq v0.26 stores it in the "msg" field of the task
// hash: its TaskMessage protobuf (internal/proto/asynq.proto), fields in
// number order, zero values left out, as proto.Marshal writes them. The
// headers map's entries are written sorted by key (proto.Marshal writes
// them in map order, which varies). TestEncodeMatchesAsynq and
// TestStoreMatchesAsynq guard the layout.
func Encode(t Task) []byte {
	timeout := t.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	n := len(t.Type) + len(t.Payload) + len(t.ID) + len(t.Queue) + 48
	for k, v := range t.Headers {
		n += len(k) + len(v) + 12
	}
	b := make([]byte, 0, n)
	b = appendString(b, fieldType, t.Type)
	if len(t.Payload) > 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Payload)
	}
	b = appendString(b, fieldID, t.ID)
	b = appendString(b, fieldQueue, t.Queue)
	// int32 fields encode as varints of their value sign-extended to 64 bits.
	b = appendVarint(b, fieldRetry, uint64(int64(int32(t.MaxRetry))))
	b = appendVarint(b, fieldTimeout, uint64(int64(timeout.Seconds())))
	b = appendVarint(b, fieldRetention, uint64(int64(t.Retention.Seconds())))
	if !t.CompletedAt.IsZero() {
		b = appendVarint(b, fieldCompletedAt, uint64(t.CompletedAt.Unix()))
	}
	keys := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := t.Headers[k]
		// A map entry is a message of key (1) and value (2), both always
		// written, even when empty.
		size := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, fieldHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// Field numbers of asynq v0.26's TaskMessage that Encode writes.
const (
	fieldType        protowire.Number = 1
	fieldPayload     protowire.Number = 2
	fieldID          protowire.Number = 3
	fieldQueue       protowire.Number = 4
	fieldRetry       protowire.Number = 5
	fieldTimeout     protowire.Number = 8
	fieldRetention   protowire.Number = 12
	fieldCompletedAt protowire.Number = 13
	fieldHeaders     protowire.Number = 15
)

// appendString writes a string or bytes field, unless it is empty (proto3
// leaves out zero values).
func appendString(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarint writes an integer field, unless it is zero.
func appendVarint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
