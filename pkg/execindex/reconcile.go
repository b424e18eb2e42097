package execindex

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/rerun"
)

// TaskGetter reads one task; *asynq.Inspector is one.
type TaskGetter interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Reconcile indexes every Stripe task of the queue that the index lacks,
// and every failure the failure store (pkg/failures) keeps that it lacks:
// tasks stored before the index existed, or whose Add failed after the
// task was stored. Their received time is unknown, so the event's created
// time stands in for it. It reads asynq's per-state keys in chunks of
// 1,000 IDs and looks up only the missing ones, so a run over 100,000
// indexed tasks costs a few hundred small commands. It returns how many
// entries it added.
func (ix *Index) Reconcile(ctx context.Context, tasks TaskGetter) (int, error) {
	const chunk = 1000
	qpre := keyspace.Queue(ix.queue)
	added := 0
	for _, state := range States {
		key := qpre + state
		for start := int64(0); ; start += chunk {
			var ids []string
			var err error
			if state == StatePending || state == StateActive {
				ids, err = ix.rdb.LRange(ctx, key, start, start+chunk-1).Result()
			} else {
				ids, err = ix.rdb.ZRange(ctx, key, start, start+chunk-1).Result()
			}
			if err != nil {
				return added, fmt.Errorf("execindex: reconcile %s: %w", state, err)
			}
			if len(ids) == 0 {
				break
			}
			scores, err := ix.rdb.ZMScore(ctx, keyspace.IndexAll(ix.queue), ids...).Result()
			if err != nil {
				return added, fmt.Errorf("execindex: reconcile %s: %w", state, err)
			}
			for i, id := range ids {
				if scores[i] != 0 {
					continue
				}
				n, err := ix.reconcileOne(ctx, tasks, id)
				if err != nil {
					return added, err
				}
				added += n
			}
			if len(ids) < chunk {
				break
			}
		}
	}
	n, err := ix.reconcileFailures(ctx)
	return added + n, err
}

func (ix *Index) reconcileOne(ctx context.Context, tasks TaskGetter, id string) (int, error) {
	info, err := tasks.GetTaskInfo(ix.queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, nil // gone meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("execindex: reconcile %s: %w", id, err)
	}
	return ix.indexInfo(ctx, info)
}

// indexInfo indexes the task info describes.
func (ix *Index) indexInfo(ctx context.Context, info *asynq.TaskInfo) (int, error) {
	id := info.ID
	m, ok := stripetask.MetadataOf(info)
	if !ok {
		return 0, nil // not a Stripe task: not the Console's business
	}
	at := time.Unix(m.Created, 0)
	if m.Created == 0 {
		at = time.Now()
	}
	if orig := rerun.Original(info); orig != id {
		return 1, ix.AddRerun(ctx, orig, id, m, at)
	}
	return 1, ix.Add(ctx, id, m, at)
}

// reconcileFailures indexes every failure the failure store keeps that
// the index lacks (a task asynq trimmed from its archive before the
// index had it).
func (ix *Index) reconcileFailures(ctx context.Context) (int, error) {
	const chunk = 1000
	store := failures.New(ix.rdb, 0)
	added := 0
	for start := int64(0); ; start += chunk {
		ids, err := store.IDs(ctx, ix.queue, start, start+chunk-1)
		if err != nil {
			return added, err
		}
		if len(ids) == 0 {
			return added, nil
		}
		scores, err := ix.rdb.ZMScore(ctx, keyspace.IndexAll(ix.queue), ids...).Result()
		if err != nil {
			return added, fmt.Errorf("execindex: reconcile failures: %w", err)
		}
		for i, id := range ids {
			if scores[i] != 0 {
				continue
			}
			r, err := store.Get(ctx, ix.queue, id)
			if errors.Is(err, failures.ErrNotKept) {
				continue
			}
			if err != nil {
				return added, err
			}
			n, err := ix.indexInfo(ctx, r.TaskInfo())
			if err != nil {
				return added, err
			}
			added += n
		}
		if len(ids) < chunk {
			return added, nil
		}
	}
}
