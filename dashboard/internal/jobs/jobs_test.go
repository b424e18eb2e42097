package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestJob runs a job over a seeded index: pending and active executions
// are skipped unasked, each outcome of rerun is counted, the first error
// is kept, the record says done, and the audit log has the job's end.
func TestJob(t *testing.T) {
	db := redistest.New(t)
	now := time.Now().Add(-time.Minute)
	execindextest.Seed(t, db.Client, "stripe", []execindextest.Exec{
		{ID: "evt_run", Type: "invoice.paid", State: "archived", ReceivedAt: now},
		{ID: "evt_copy", Type: "invoice.paid", State: "completed", ReceivedAt: now},
		{ID: "evt_gone", Type: "invoice.paid", State: "retry", ReceivedAt: now},
		{ID: "evt_fail", Type: "invoice.paid", State: "scheduled", ReceivedAt: now},
		{ID: "evt_pending", Type: "invoice.paid", State: "pending", ReceivedAt: now},
	})
	rerun := func(_ context.Context, id string, by audit.Entry) (Outcome, error) {
		if by.User != "op" || by.Reason != "incident 7" {
			return Skipped, errors.New("rerun is not told who and why")
		}
		switch id {
		case "evt_run":
			return Run, nil
		case "evt_copy":
			return Copied, nil
		case "evt_gone":
			return Skipped, nil
		}
		return Skipped, errors.New("Redis went away")
	}
	log := audit.New(db.Client, time.Hour, slog.New(slog.DiscardHandler))
	r := New(db.Client, slog.New(slog.DiscardHandler), "stripe", execindex.NewShards(db.Client, stripetask.Options{}), log, rerun)

	j, err := r.Start(execindex.Filter{}, 5, audit.Entry{User: "op", Action: audit.BulkRerun, Target: "state=failed", Reason: "incident 7"})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "running" || j.URL != "/api/jobs/"+j.ID {
		t.Errorf("started %+v", j)
	}
	done := poll.Value(t, 10*time.Second, "the job to end", func() (Job, error) {
		got, err := r.Status(t.Context(), j.ID)
		if err == nil && got.State == "running" {
			err = errors.New("still running")
		}
		return got, err
	})
	want := Job{ID: j.ID, State: "done", Matched: 5, Done: 5, Run: 1, Copied: 1, Skipped: 2, Failed: 1,
		Error: "evt_fail: Redis went away", Started: j.Started, Finished: done.Finished, URL: j.URL}
	if done != want || done.Finished == "" {
		t.Errorf("job\n%+v, want\n%+v", done, want)
	}
	p, err := log.Read(t.Context(), audit.Query{Limit: 10})
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("audit: %v, %+v", err, p)
	}
	if e := p.Entries[0]; e.User != "op" || e.Count != 2 || e.Reason != "incident 7" || !strings.HasPrefix(e.Detail, "job "+j.ID+" done: 1 run, 1 copied, 2 skipped, 1 failed, of 5 matched") {
		t.Errorf("audited %+v", e)
	}
	if _, err := r.Status(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
}
