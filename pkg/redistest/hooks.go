package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// PipelineCounter is a go-redis hook that counts the pipelines a client
// sends: add it with AddHook, read the count with N.
type PipelineCounter struct{ n atomic.Int64 }

// N returns how many pipelines were sent since the hook was added.
func (h *PipelineCounter) N() int64 { return h.n.Load() }

// DialHook implements redis.Hook.
func (*PipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (*PipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (h *PipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
