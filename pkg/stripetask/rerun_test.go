package stripetask_test

import (
	"maps"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetask/rerun"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

func TestRerunIDs(t *testing.T) {
	tests := []struct {
		taskID, eventID string
	}{
		{"evt_1", "evt_1"},
		{stripetask.RerunID("evt_1", 1), "evt_1"},
		{stripetask.RerunID("evt_1", 12), "evt_1"},
	}
	for _, tt := range tests {
		if got := stripetask.EventID(tt.taskID); got != tt.eventID {
			t.Errorf("EventID(%q) = %q, want %q", tt.taskID, got, tt.eventID)
		}
	}
	if got := stripetask.RerunID("evt_1", 3); got != "evt_1:rerun:3" {
		t.Errorf("RerunID = %q; the scheme is permanent: Redis holds such IDs", got)
	}
}

func TestMetadataOf(t *testing.T) {
	tests := []struct {
		name     string
		info     asynq.TaskInfo
		wantType string
		ok       bool
	}{
		{"headers", asynq.TaskInfo{ID: "evt_1", Type: "stripe:invoice.paid", Headers: map[string]string{stripetask.HeaderType: "invoice.paid", stripetask.HeaderCustomer: "cus_1"}}, "invoice.paid", true},
		{"no headers: the type from the task type", asynq.TaskInfo{ID: "evt_1", Type: "stripe:invoice.paid"}, "invoice.paid", true},
		{"not a Stripe task", asynq.TaskInfo{ID: "x", Type: "email:send"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := stripetask.MetadataOf(&tt.info)
			if ok != tt.ok || m.Type != tt.wantType || (ok && m.ID != tt.info.ID) {
				t.Errorf("MetadataOf = %+v, %v; want type %q, %v", m, ok, tt.wantType, tt.ok)
			}
		})
	}
}

// TestNewRerun enqueues the copy of a stored task, and of that copy, and
// checks what asynq holds: same type, payload, headers and queue, rerunOf
// naming the first original, MaxRetry and retention kept.
func TestNewRerun(t *testing.T) {
	db := redistest.New(t)
	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	body := stripetest.Event("invoice.paid", "evt_rerun_1", time.Now())
	task, _, err := stripetask.New(body, stripetask.Options{Queue: "stripe", Retention: 5 * time.Hour, Compression: compress.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	orig, err := insp.GetTaskInfo("stripe", "evt_rerun_1")
	if err != nil {
		t.Fatal(err)
	}
	prev := orig
	for n := int64(1); n <= 2; n++ {
		id := stripetask.RerunID("evt_rerun_1", n)
		if _, err := client.Enqueue(rerun.New(prev, id)); err != nil {
			t.Fatal(err)
		}
		cp, err := insp.GetTaskInfo("stripe", id)
		if err != nil {
			t.Fatal(err)
		}
		wantHeaders := maps.Clone(orig.Headers)
		wantHeaders[stripetask.HeaderRerunOf] = "evt_rerun_1"
		switch {
		case cp.Type != orig.Type || string(cp.Payload) != string(orig.Payload):
			t.Errorf("copy %d: type %q, payload of %d bytes; want the original's", n, cp.Type, len(cp.Payload))
		case !maps.Equal(cp.Headers, wantHeaders):
			t.Errorf("copy %d: headers %v, want %v", n, cp.Headers, wantHeaders)
		case cp.MaxRetry != stripetask.MaxRetry || cp.Retention != 5*time.Hour:
			t.Errorf("copy %d: MaxRetry %d, retention %v; want the original's", n, cp.MaxRetry, cp.Retention)
		case rerun.Original(cp) != "evt_rerun_1":
			t.Errorf("copy %d: Original = %q", n, rerun.Original(cp))
		}
		if _, _, err := stripetask.Parse(asynq.NewTaskWithHeaders(cp.Type, cp.Payload, cp.Headers)); err != nil {
			t.Errorf("copy %d does not parse: %v", n, err)
		}
		prev = cp
	}
	// A task stored with no retention recorded gets the defaults.
	bare := &asynq.TaskInfo{ID: "evt_bare", Queue: "stripe", Type: orig.Type, Payload: orig.Payload}
	id := stripetask.RerunID("evt_bare", 1)
	if _, err := client.Enqueue(rerun.New(bare, id)); err != nil {
		t.Fatal(err)
	}
	if cp, err := insp.GetTaskInfo("stripe", id); err != nil || cp.Retention != stripetask.DefaultRetention || cp.MaxRetry != stripetask.MaxRetry {
		t.Errorf("copy of a bare task: %+v, %v", cp, err)
	}
}
