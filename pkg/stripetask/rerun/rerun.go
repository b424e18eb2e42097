// Package rerun builds the copies of stored executions that operators run
// again from the Console: a new task, "<original>:rerun:<n>"
// (stripetask.RerunID), with the original's payload and headers and
// stripetask.HeaderRerunOf naming the first original. Internal to this
// module: no compatibility promise.
package rerun

import (
	"maps"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Original returns the task ID of the execution info re-runs, from its
// [stripetask.HeaderRerunOf], or info's own ID when it is not a copy. Copies of copies
// name the first original, so every re-run of an event has one history.
func Original(info *asynq.TaskInfo) string {
	if o := info.Headers[stripetask.HeaderRerunOf]; o != "" {
		return o
	}
	return info.ID
}

// New builds the copy newID (see [stripetask.RerunID]) of the stored task info,
// to run a completed execution again: the same type, payload (compressed
// or not), headers and queue, plus stripetask.HeaderRerunOf naming [Original] of
// info. It keeps info's MaxRetry and retention, or when info has none
// recorded (a task stored by hand) [stripetask.MaxRetry] and [stripetask.DefaultRetention].
func New(info *asynq.TaskInfo, newID string) *asynq.Task {
	headers := maps.Clone(info.Headers)
	if headers == nil {
		headers = map[string]string{}
	}
	headers[stripetask.HeaderRerunOf] = Original(info)
	retention := info.Retention
	if retention <= 0 {
		retention = stripetask.DefaultRetention
	}
	maxRetry := info.MaxRetry
	if maxRetry <= 0 {
		maxRetry = stripetask.MaxRetry
	}
	return asynq.NewTaskWithHeaders(info.Type, info.Payload, headers,
		asynq.TaskID(newID), asynq.Queue(info.Queue), asynq.MaxRetry(maxRetry), asynq.Retention(retention))
}
