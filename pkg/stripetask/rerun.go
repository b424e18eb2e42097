package stripetask

import (
	"maps"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// rerunMark separates an original's task ID from the number of a re-run
// copy: "<original>:rerun:<n>".
const rerunMark = ":rerun:"

// RerunID returns the task ID of the n-th re-run copy of the task
// original: "<original>:rerun:<n>". n counts from 1.
func RerunID(original string, n int64) string {
	return original + rerunMark + strconv.FormatInt(n, 10)
}

// EventID returns the Stripe event ID of the task taskID: the task ID
// itself, or for a re-run copy its original's.
func EventID(taskID string) string {
	id, _, _ := strings.Cut(taskID, rerunMark)
	return id
}

// Original returns the task ID of the execution info re-runs, from its
// HeaderRerunOf, or info's own ID when it is not a copy. Copies of copies
// name the first original, so every re-run of an event has one history.
func Original(info *asynq.TaskInfo) string {
	if o := info.Headers[HeaderRerunOf]; o != "" {
		return o
	}
	return info.ID
}

// MetadataOf returns the metadata of a stored task: from its headers, with
// the event type taken from the task type when the headers lack it (a task
// stored without headers). ok is false when info is not a Stripe task.
func MetadataOf(info *asynq.TaskInfo) (m Metadata, ok bool) {
	eventType, ok := EventType(info.Type)
	if !ok {
		return Metadata{}, false
	}
	m = MetadataFromHeaders(info.ID, info.Headers)
	if m.Type == "" {
		m.Type = eventType
	}
	return m, true
}

// NewRerun builds the copy newID (see [RerunID]) of the stored task info,
// to run a completed execution again: the same type, payload (compressed
// or not), headers and queue, plus HeaderRerunOf naming [Original] of
// info. It keeps info's MaxRetry and retention, or when info has none
// recorded (a task stored by hand) [MaxRetry] and [DefaultRetention].
func NewRerun(info *asynq.TaskInfo, newID string) *asynq.Task {
	headers := maps.Clone(info.Headers)
	if headers == nil {
		headers = map[string]string{}
	}
	headers[HeaderRerunOf] = Original(info)
	retention := info.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	maxRetry := info.MaxRetry
	if maxRetry <= 0 {
		maxRetry = MaxRetry
	}
	return asynq.NewTaskWithHeaders(info.Type, info.Payload, headers,
		asynq.TaskID(newID), asynq.Queue(info.Queue), asynq.MaxRetry(maxRetry), asynq.Retention(retention))
}
