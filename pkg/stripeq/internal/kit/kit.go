// Package kit is how the test kit, pkg/stripeq/stripeqtest, reaches into
// pkg/stripeq: a hook package stripeq sets when it is initialised. Part of
// pkg/stripeq's engine: internal, no compatibility promise.
package kit

import (
	"context"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// Next is what the worker does with a task after an attempt.
type Next int

// The values of Next.
const (
	Complete Next = iota // the task completes
	Retry                // retried with backoff, using up one of its retries
	Wait                 // retried without using up a retry
	Archive              // archived at once
)

// Result is what Run returns.
type Result struct {
	Outcome outcome.Outcome // what the handlers noted
	Err     error           // their error
	Next    Next            // what the worker does next
	After   time.Duration   // and after how long
}

// Run is set by package stripeq: it runs w's handlers (w is a
// *stripeq.Worker) on t as a first attempt, outside any server.
var Run func(ctx context.Context, w any, t *asynq.Task) Result
