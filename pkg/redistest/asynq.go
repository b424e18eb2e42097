package redistest

import (
	"fmt"

	"github.com/hibiken/asynq"
)

// TaskIn returns the info of task id of queue q when it is in state, and
// otherwise an error saying where it is: a check for poll.Value.
//
//	info := poll.Value(t, 20*time.Second, "the re-run completed", func() (*asynq.TaskInfo, error) {
//		return redistest.TaskIn(insp, "stripe", id, asynq.TaskStateCompleted)
//	})
func TaskIn(insp *asynq.Inspector, q, id string, state asynq.TaskState) (*asynq.TaskInfo, error) {
	info, err := insp.GetTaskInfo(q, id)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	if info.State != state {
		return nil, fmt.Errorf("task %s is %v, want %v", id, info.State, state)
	}
	return info, nil
}

// QueueCompleted returns the info of queue q when it holds n completed
// tasks, and otherwise an error with what it holds: a check for
// poll.Value.
func QueueCompleted(insp *asynq.Inspector, q string, n int) (*asynq.QueueInfo, error) {
	info, err := insp.GetQueueInfo(q)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", q, err)
	}
	if info.Completed != n {
		return nil, fmt.Errorf("queue %s holds %d pending, %d active, %d retry, %d archived, %d completed; want %d completed",
			q, info.Pending, info.Active, info.Retry, info.Archived, info.Completed, n)
	}
	return info, nil
}
