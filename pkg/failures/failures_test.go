package failures_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// TestAttemptsReadBothPlaces writes histories as the worker does and reads
// them back with Attempts: a first attempt that succeeds is a field of
// asynq's task hash (no list key), later attempts are the list, and the
// reader returns every attempt as it was written, oldest first.
func TestAttemptsReadBothPlaces(t *testing.T) {
	const q = "stripe"
	o := outcome.Outcome{
		Records: []outcome.RecordChange{{Key: "stripeq:customer:{cus_1}", Changed: true}},
		Notices: []outcome.Notice{{Kind: "payment_failed", Customer: "cus_1", Status: outcome.NoticeSkipped, Reason: "settled"}},
	}
	result, _ := json.Marshal(o)
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 123456789, time.UTC)
	at := func(d time.Duration, retry int) failures.Attempt {
		return failures.Attempt{Start: t0.Add(d), At: t0.Add(d + 3*time.Millisecond), MS: 3, Retry: retry, Worker: "host-a:41"}
	}
	first := at(0, 0)
	first.Outcome = o.Line()
	failed := at(0, 0)
	failed.Error = "the database is down"
	retried := at(time.Minute, 1)
	retried.Outcome = o.Line()
	noStart := at(0, 0)
	noStart.Start = time.Time{}
	ownLine := at(0, 0)
	ownLine.Outcome = "written by hand"
	later := at(time.Hour, 0)

	tests := []struct {
		name   string
		write  func(t *testing.T, s *failures.Store, id string) // nil: an older worker's field
		want   []failures.Attempt
		list   bool   // the list key exists
		result string // the task's result, when the test writes one itself
	}{
		{"first attempt with an outcome", func(t *testing.T, s *failures.Store, id string) {
			complete(t, s, id, first, result, false)
		}, []failures.Attempt{first}, false, ""},
		{"first attempt without an outcome keeps the handler's own result", func(t *testing.T, s *failures.Store, id string) {
			complete(t, s, id, noStart, nil, false)
		}, []failures.Attempt{noStart}, false, "the handler's own result"},
		{"first attempt whose outcome is not the result's line", func(t *testing.T, s *failures.Store, id string) {
			complete(t, s, id, ownLine, nil, false)
		}, []failures.Attempt{ownLine}, false, ""},
		{"a retry after a failed attempt", func(t *testing.T, s *failures.Store, id string) {
			if err := s.AddAttempt(t.Context(), q, id, failed); err != nil {
				t.Fatal(err)
			}
			complete(t, s, id, retried, result, true)
		}, []failures.Attempt{failed, retried}, true, ""},
		{"a field an older worker wrote: start in ns and ms", nil, []failures.Attempt{later}, false, ""},
		{"run now of a kept failure that then succeeds on retry 0", func(t *testing.T, s *failures.Store, id string) {
			if err := s.Keep(t.Context(), failures.Record{ID: id, Queue: q, TaskType: "stripe:invoice.paid", FailedAt: failed.At, Err: failed.Error}, failed); err != nil {
				t.Fatal(err)
			}
			at, kept, err := s.KeptAt(t.Context(), q, id)
			if err != nil || !kept {
				t.Fatalf("KeptAt: %v, %v", kept, err)
			}
			if err := s.Reopen(t.Context(), q, id, at); err != nil {
				t.Fatal(err)
			}
			complete(t, s, id, later, nil, false)
		}, []failures.Attempt{failed, later}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			s := failures.New(db.Client, 0)
			id := "evt_" + strings.ReplaceAll(tt.name, " ", "_")
			task := "asynq:{" + q + "}:t:" + id
			db.Client.HSet(t.Context(), task, "msg", "x") // the task is active: asynq holds its hash
			if tt.result != "" {
				db.Client.HSet(t.Context(), task, "result", tt.result)
			}
			if tt.write != nil {
				tt.write(t, s, id)
			} else {
				// What an older worker wrote: the start in ns and the ms.
				old := fmt.Sprintf(`{"at":%d,"start":%d,"ms":3,"worker":"host-a:41"}`, later.At.UnixNano(), later.Start.UnixNano())
				db.Client.HSet(t.Context(), task, failures.AttemptField, old)
			}
			got, err := s.Attempts(t.Context(), q, id)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Errorf("attempts\n got %s\nwant %s", g, w)
			}
			if n := db.Client.Exists(t.Context(), failures.KeyPrefix(q)+"att:"+id).Val(); (n == 1) != tt.list {
				t.Errorf("list key exists: %v, want %v", n == 1, tt.list)
			}
			if tt.result != "" && db.Client.HGet(t.Context(), task, "result").Val() != tt.result {
				t.Errorf("the handler's own result was replaced")
			}
			f := db.Client.HGet(t.Context(), task, failures.AttemptField).Val()
			if strings.Contains(f, "payment_failed") {
				t.Errorf("the field repeats the outcome: %s", f)
			}
			// A start goes as the duration from it (took, µs), not a second
			// time in ns beside the ms.
			if tt.write != nil && f != "" && (strings.Contains(f, `"start"`) || strings.Contains(f, `"ms"`) && strings.Contains(f, `"took"`)) {
				t.Errorf("the field keeps the start and the ms: %s", f)
			}
		})
	}
}

func complete(t *testing.T, s *failures.Store, id string, a failures.Attempt, result []byte, resolve bool) {
	t.Helper()
	if err := s.Complete(t.Context(), "stripe", id, a, result, resolve, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// TestResolveForgetsBothPlaces: a discarded or re-run failure has no
// history left in either place.
func TestResolveForgetsBothPlaces(t *testing.T) {
	db := redistest.New(t)
	s := failures.New(db.Client, 0)
	id, task := "evt_1", "asynq:{stripe}:t:evt_1"
	db.Client.HSet(t.Context(), task, "msg", "x")
	now := time.Now().UTC()
	if err := s.Complete(t.Context(), "stripe", id, failures.Attempt{At: now, Start: now}, nil, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Resolve(t.Context(), "stripe", id); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Attempts(t.Context(), "stripe", id); err != nil || len(h) != 0 {
		t.Errorf("attempts after Resolve: %+v, %v", h, err)
	}
	if db.Client.HGet(t.Context(), task, "msg").Val() != "x" {
		t.Errorf("Resolve touched asynq's own fields")
	}
}

// TestReopenLeavesALaterFailure: a "run now" reopens the failure kept
// before it ran. When the run fails again and is kept before Reopen is
// called (the worker was quicker than the Console), that failure stays
// kept, with every attempt.
func TestReopenLeavesALaterFailure(t *testing.T) {
	const q, id = "stripe", "evt_1"
	t0 := time.Now().Add(-time.Hour).UTC()
	attempt := func(at time.Time, err string) failures.Attempt {
		return failures.Attempt{At: at, Start: at.Add(-time.Millisecond), MS: 1, Worker: "w:1", Error: err}
	}
	keep := func(t *testing.T, s *failures.Store, a failures.Attempt) {
		t.Helper()
		if err := s.Keep(t.Context(), failures.Record{ID: id, Queue: q, TaskType: "stripe:customer.updated", FailedAt: a.At, Err: a.Error}, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name      string
		failAgain bool // the run fails and is kept before Reopen
		wantKept  int  // attempts of the kept failure; 0: none kept
		wantList  int  // attempts in the task's history list
	}{
		{"the run has not failed yet", false, 0, 1},
		{"the run failed again first", true, 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			s := failures.New(db.Client, 0)
			keep(t, s, attempt(t0, "first"))
			at, kept, err := s.KeptAt(t.Context(), q, id)
			if err != nil || !kept || !at.Equal(t0.Truncate(time.Millisecond)) {
				t.Fatalf("KeptAt = %v, %v, %v; want %v", at, kept, err, t0)
			}
			if tt.failAgain {
				keep(t, s, attempt(t0.Add(time.Minute), "again"))
			}
			if err := s.Reopen(t.Context(), q, id, at); err != nil {
				t.Fatal(err)
			}
			r, err := s.Get(t.Context(), q, id)
			switch {
			case tt.wantKept == 0 && !errors.Is(err, failures.ErrNotKept):
				t.Errorf("the reopened failure is still kept: %+v, %v", r, err)
			case tt.wantKept > 0 && (err != nil || len(r.Attempts) != tt.wantKept || r.Err != "again"):
				t.Errorf("the failure kept after the run: %+v, %v; want it kept with %d attempts", r, err, tt.wantKept)
			}
			if n, _ := s.Count(t.Context(), q); n != int64(min(tt.wantKept, 1)) {
				t.Errorf("Count = %d", n)
			}
			if n := db.Client.LLen(t.Context(), failures.KeyPrefix(q)+"att:"+id).Val(); n != int64(tt.wantList) {
				t.Errorf("history list holds %d attempts, want %d", n, tt.wantList)
			}
		})
	}
}

// TestPermanent: archived with retries left is a permanent failure; after
// the last retry, or in any other state, it is not.
func TestPermanent(t *testing.T) {
	for _, tt := range []struct {
		info asynq.TaskInfo
		want bool
	}{
		{asynq.TaskInfo{State: asynq.TaskStateArchived, LastErr: "skip retry for the task: bad", Retried: 0, MaxRetry: 7}, true},
		{asynq.TaskInfo{State: asynq.TaskStateArchived, LastErr: "db down", Retried: 7, MaxRetry: 7}, false},
		{asynq.TaskInfo{State: asynq.TaskStateArchived, Retried: 0, MaxRetry: 7}, false}, // archived by hand
		{asynq.TaskInfo{State: asynq.TaskStateRetry, LastErr: "db down", Retried: 1, MaxRetry: 7}, false},
		{*failures.Record{Err: "skip retry for the task: bad", Retried: 2, MaxRetry: 7}.TaskInfo(), true},
	} {
		if got := failures.Permanent(&tt.info); got != tt.want {
			t.Errorf("Permanent(%+v) = %v, want %v", tt.info, got, tt.want)
		}
	}
}
