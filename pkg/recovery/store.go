package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TaskGetter finds a task; *asynq.Inspector is one.
type TaskGetter interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Enqueuer stores a task; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Store stores recovered events through the api's contract: the task of
// stripetask.NewFromMetadata (TaskID = event ID, the same headers and
// shard queue, plus source=recovery), refused when the event's duplicate
// marker exists or asynq reports a TaskID conflict, then the marker and
// the Console's index entry. So a webhook delivery of the same event,
// before, during or after, stores it once.
type Store struct {
	RDB   redis.UniversalClient
	Tasks TaskGetter
	Queue Enqueuer
	// Task holds QUEUE_NAME, QUEUE_SHARDS, TASK_RETENTION and
	// PAYLOAD_COMPRESSION, as the api reads them.
	Task  stripetask.Options
	Marks *dedupe.Marks
	Index *execindex.Shards
}

// Known reports whether stripeq has the event of m: its task (in any
// state, within TASK_RETENTION) or its duplicate marker.
func (s *Store) Known(ctx context.Context, m stripetask.Metadata) (bool, error) {
	queue := stripetask.QueueFor(m.ID, s.Task)
	_, err := s.Tasks.GetTaskInfo(queue, m.ID)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound):
		return false, fmt.Errorf("look up task %s: %w", m.ID, err)
	}
	seen, err := s.Marks.Check(ctx, s.RDB, queue, m.ID, m.Created).Result()
	if err != nil {
		return false, fmt.Errorf("look up the duplicate marker of %s: %w", m.ID, err)
	}
	return seen, nil
}

// Put stores the event body with metadata m, as recovered, unless stripeq
// has it already. It reports whether this call stored it.
func (s *Store) Put(ctx context.Context, body []byte, m stripetask.Metadata) (bool, error) {
	queue := stripetask.QueueFor(m.ID, s.Task)
	seen, err := s.Marks.Check(ctx, s.RDB, queue, m.ID, m.Created).Result()
	if err != nil {
		return false, fmt.Errorf("look up the duplicate marker of %s: %w", m.ID, err)
	}
	if seen {
		return false, nil
	}
	m.Source = stripetask.SourceRecovery
	_, err = s.Queue.EnqueueContext(ctx, stripetask.NewFromMetadata(body, m, s.Task))
	isNew := err == nil
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, fmt.Errorf("store %s: %w", m.ID, err)
	}
	// As the api: the marker of a stored event, new or not (a delivery
	// may have stopped between its task and its marker).
	if _, err := s.RDB.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.Marks.Mark(ctx, p, queue, m.ID, m.Created)
		return nil
	}); err != nil {
		return isNew, fmt.Errorf("event %s stored, but its duplicate marker was not: %w", m.ID, err)
	}
	if isNew && s.Index != nil {
		// The dashboard's reconcile indexes the task if this fails.
		_ = s.Index.Add(ctx, m.ID, m, time.Now())
	}
	return isNew, nil
}
