package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/keyspace"
)

// Bulk re-runs over more than maxBulk executions run as jobs in the
// background; their progress is a Redis HASH, so any dashboard replica
// answers GET /api/jobs/:id:
//
//	stripeq:job:{<QUEUE_NAME>}:<job ID>   HASH state (running, done, failed), matched, done, run, copied, skipped, failed, error, started, finished
//
// It expires a day after its last update.
const jobTTL = 24 * time.Hour

// jobWorkers is how many re-runs a job does at once.
const jobWorkers = 8

func (s *server) jobKey(id string) string { return keyspace.Job(s.cfg.Task.Queue, id) }

// job is the progress of one bulk re-run.
type job struct {
	ID       string `json:"id"`
	State    string `json:"state"` // running, done or failed
	Matched  int    `json:"matched"`
	Done     int    `json:"done"`
	Run      int    `json:"run"`
	Copied   int    `json:"copied"`
	Skipped  int    `json:"skipped"`
	Failed   int    `json:"failed"`
	Error    string `json:"error,omitempty"`
	Started  string `json:"started"`
	Finished string `json:"finished,omitempty"`
	URL      string `json:"url"`
}

// startBulkJob re-runs, in the background, every execution q's filter
// matches (matched of them, as counted), and returns the job. Its end is
// recorded in the audit log as end (user, target, reason) with what the
// job did.
func (s *server) startBulkJob(q query, matched int, end audit.Entry) (job, error) {
	id := rand.Text()[:16]
	j := job{ID: id, State: "running", Matched: matched, Started: time.Now().UTC().Format(time.RFC3339), URL: "/api/jobs/" + id}
	ctx := context.Background()
	key := s.jobKey(id)
	if err := s.rdb.HSet(ctx, key, "state", j.State, "matched", matched, "started", j.Started).Err(); err != nil {
		return job{}, fmt.Errorf("start bulk re-run: %w", err)
	}
	s.rdb.Expire(ctx, key, jobTTL)
	go s.runBulkJob(key, q, end, j)
	return j, nil
}

func (s *server) runBulkJob(key string, q query, end audit.Entry, j job) {
	ctx := context.Background()
	var done, run, copied, skipped, failed atomic.Int64
	var firstErr atomic.Value
	save := func(state string) {
		fields := []any{"done", done.Load(), "run", run.Load(), "copied", copied.Load(), "skipped", skipped.Load(), "failed", failed.Load()}
		if state != "" {
			fields = append(fields, "state", state, "finished", time.Now().UTC().Format(time.RFC3339))
		}
		if e, ok := firstErr.Load().(string); ok {
			fields = append(fields, "error", e)
		}
		s.rdb.HSet(ctx, key, fields...)
		s.rdb.Expire(ctx, key, jobTTL)
	}
	items := make(chan execindex.Item, 1000)
	var wg sync.WaitGroup
	for range jobWorkers {
		wg.Go(func() {
			for it := range items {
				if it.State == execindex.StatePending || it.State == execindex.StateActive {
					skipped.Add(1)
				} else {
					r, err := s.rerun(ctx, it.ID)
					switch {
					case errors.Is(err, errConflict) || errors.Is(err, errNotFound):
						skipped.Add(1)
					case err != nil:
						failed.Add(1)
						firstErr.CompareAndSwap(nil, it.ID+": "+err.Error())
					case r.Action == "copy":
						copied.Add(1)
					default:
						run.Add(1)
					}
				}
				if done.Add(1)%500 == 0 {
					save("")
				}
			}
		})
	}
	err := s.index.Scan(ctx, q.Filter, func(batch []execindex.Item) error {
		for _, it := range batch {
			items <- it
		}
		return nil
	})
	close(items)
	wg.Wait()
	state := "done"
	if err != nil {
		firstErr.CompareAndSwap(nil, err.Error())
		s.log.Warn("bulk re-run stopped", "err", err)
		state = "failed"
	}
	save(state)
	end.Count = int(run.Load() + copied.Load())
	end.Detail = fmt.Sprintf("job %s %s: %d run, %d copied, %d skipped, %d failed, of %d matched",
		j.ID, state, run.Load(), copied.Load(), skipped.Load(), failed.Load(), j.Matched)
	s.auditLog.Record(ctx, end, err)
}

// jobStatus reads a job's progress, or errNotFound.
func (s *server) jobStatus(ctx context.Context, id string) (job, error) {
	h, err := s.rdb.HGetAll(ctx, s.jobKey(id)).Result()
	if err != nil {
		return job{}, err
	}
	if len(h) == 0 {
		return job{}, fmt.Errorf("%w: no job %s (jobs are kept for a day)", errNotFound, id)
	}
	n := func(k string) int { v, _ := strconv.Atoi(h[k]); return v }
	return job{ID: id, State: h["state"], Matched: n("matched"), Done: n("done"), Run: n("run"), Copied: n("copied"),
		Skipped: n("skipped"), Failed: n("failed"), Error: h["error"], Started: h["started"], Finished: h["finished"],
		URL: "/api/jobs/" + id}, nil
}
