// Package stack grows a goroutine's stack in one step. asynq runs each
// task's handler in a new goroutine, whose small stack a handler's
// decoding, HTTP and Redis calls then double several times, copying it
// (and walking its frames) each time: about 18 µs of CPU an event in the
// bench's worker (issue 29). Growing it once, while it holds few frames,
// costs about half. Part of pkg/stripeq's engine: internal, no
// compatibility promise.
package stack

// Size is the stack a task's goroutines grow to at their start: a frame
// of Size bytes makes the runtime give the goroutine a stack of at least
// twice that, once.
const Size = 16 << 10

// Grow grows the calling goroutine's stack to hold a frame of Size bytes.
// It costs one stack copy of the frames below it, and clearing Size bytes.
func Grow() { grow(0) }

//go:noinline
func grow(i int) byte {
	var b [Size]byte // the frame; read, so that it is kept
	return b[i]
}
