// Package jobs runs the Console's bulk re-runs that are too large to
// answer at once: in the background, with their progress in Redis, so
// that any dashboard replica answers GET /api/jobs/:id:
//
//	stripeq:job:{<QUEUE_NAME>}:<job ID>   HASH state (running, done, failed), matched, done, run, copied, skipped, failed, error, started, finished
//
// A job's record expires a day after its last update (TTL), and its end is
// recorded in the audit log.
//
// Internal to the dashboard command, with no compatibility promise.
package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/keyspace"
)

// TTL is how long a job's record lasts after its last update.
const TTL = 24 * time.Hour

// Workers is how many re-runs a job does at once.
const Workers = 8

// ErrNotFound answers Status for a job no record names.
var ErrNotFound = errors.New("no such job")

// Outcome is what one re-run did.
type Outcome int

const (
	// Run: it ran again (RunTask).
	Run Outcome = iota
	// Copied: it was enqueued anew as a copy.
	Copied
	// Skipped: it could not be re-run now (pending, active or gone).
	Skipped
)

// Job is the progress of one bulk re-run.
type Job struct {
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

// Runner starts jobs and reads their progress.
type Runner struct {
	rdb   redis.UniversalClient
	log   *slog.Logger
	queue string
	index *execindex.Shards
	audit *audit.Log
	rerun func(ctx context.Context, id string, by audit.Entry) (Outcome, error)
}

// New returns a Runner whose jobs re-run, with rerun, the executions the
// index's Scan finds, and whose records are keyed by queue (QUEUE_NAME).
// rerun is told who started the job, and why (the job's audit entry); its
// error counts the execution as failed.
func New(rdb redis.UniversalClient, log *slog.Logger, queue string, index *execindex.Shards, auditLog *audit.Log,
	rerun func(ctx context.Context, id string, by audit.Entry) (Outcome, error)) *Runner {
	return &Runner{rdb: rdb, log: log, queue: queue, index: index, audit: auditLog, rerun: rerun}
}

func (r *Runner) key(id string) string { return keyspace.Job(r.queue, id) }

// Start re-runs, in the background, every execution f matches (matched of
// them, as counted), and returns the job. Its end is recorded in the audit
// log as end (user, target, reason) with what the job did.
func (r *Runner) Start(f execindex.Filter, matched int, end audit.Entry) (Job, error) {
	id := rand.Text()[:16]
	j := Job{ID: id, State: "running", Matched: matched, Started: time.Now().UTC().Format(time.RFC3339), URL: "/api/jobs/" + id}
	ctx := context.Background()
	key := r.key(id)
	if err := r.rdb.HSet(ctx, key, "state", j.State, "matched", matched, "started", j.Started).Err(); err != nil {
		return Job{}, fmt.Errorf("start bulk re-run: %w", err)
	}
	r.rdb.Expire(ctx, key, TTL)
	go r.run(key, f, end, j)
	return j, nil
}

// progress counts what a job did, for its record.
type progress struct {
	done, run, copied, skipped, failed atomic.Int64
	firstErr                           atomic.Value
}

// save writes p to the job's record, with its end state when state is
// set.
func (r *Runner) save(ctx context.Context, key string, p *progress, state string) {
	fields := []any{"done", p.done.Load(), "run", p.run.Load(), "copied", p.copied.Load(), "skipped", p.skipped.Load(), "failed", p.failed.Load()}
	if state != "" {
		fields = append(fields, "state", state, "finished", time.Now().UTC().Format(time.RFC3339))
	}
	if e, ok := p.firstErr.Load().(string); ok {
		fields = append(fields, "error", e)
	}
	r.rdb.HSet(ctx, key, fields...)
	r.rdb.Expire(ctx, key, TTL)
}

// one re-runs it for by, unless it is pending or active, and counts the
// outcome.
func (r *Runner) one(ctx context.Context, p *progress, it execindex.Item, by audit.Entry) {
	if it.State == execindex.StatePending || it.State == execindex.StateActive {
		p.skipped.Add(1)
		return
	}
	o, err := r.rerun(ctx, it.ID, by)
	switch {
	case err != nil:
		p.failed.Add(1)
		p.firstErr.CompareAndSwap(nil, it.ID+": "+err.Error())
	case o == Skipped:
		p.skipped.Add(1)
	case o == Copied:
		p.copied.Add(1)
	default:
		p.run.Add(1)
	}
}

func (r *Runner) run(key string, f execindex.Filter, end audit.Entry, j Job) {
	ctx := context.Background()
	var p progress
	items := make(chan execindex.Item, 1000)
	var wg sync.WaitGroup
	for range Workers {
		wg.Go(func() {
			for it := range items {
				r.one(ctx, &p, it, end)
				if p.done.Add(1)%500 == 0 {
					r.save(ctx, key, &p, "")
				}
			}
		})
	}
	err := r.index.Scan(ctx, f, func(batch []execindex.Item) error {
		for _, it := range batch {
			items <- it
		}
		return nil
	})
	close(items)
	wg.Wait()
	state := "done"
	if err != nil {
		p.firstErr.CompareAndSwap(nil, err.Error())
		r.log.Warn("bulk re-run stopped", "err", err)
		state = "failed"
	}
	r.save(ctx, key, &p, state)
	end.Count = int(p.run.Load() + p.copied.Load())
	end.Detail = fmt.Sprintf("job %s %s: %d run, %d copied, %d skipped, %d failed, of %d matched",
		j.ID, state, p.run.Load(), p.copied.Load(), p.skipped.Load(), p.failed.Load(), j.Matched)
	r.audit.Record(ctx, end, err)
}

// Status reads a job's progress, or ErrNotFound.
func (r *Runner) Status(ctx context.Context, id string) (Job, error) {
	h, err := r.rdb.HGetAll(ctx, r.key(id)).Result()
	if err != nil {
		return Job{}, err
	}
	if len(h) == 0 {
		return Job{}, fmt.Errorf("%w: no job %s (jobs are kept for a day)", ErrNotFound, id)
	}
	n := func(k string) int { v, _ := strconv.Atoi(h[k]); return v }
	return Job{ID: id, State: h["state"], Matched: n("matched"), Done: n("done"), Run: n("run"), Copied: n("copied"),
		Skipped: n("skipped"), Failed: n("failed"), Error: h["error"], Started: h["started"], Finished: h["finished"],
		URL: "/api/jobs/" + id}, nil
}
