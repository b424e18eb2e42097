package stripetask

import (
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
