package builtin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestOutcomes runs the built-ins in a worker, one event at a time, and
// reads each execution's outcome as the Console does (the task's result):
// the records written or left alone, each notice emailed, queued or
// skipped and why; and the attempt history beside it.
func TestOutcomes(t *testing.T) {
	mb := startMailbox(t, "127.0.0.1:0")
	m, err := ParseMailer("smtp://mailer:mail-secret@"+mb.addr, "Billing <billing@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	w, db := setupWith(t, stripeq.Config{}, Options{Mailer: m})
	runServer(t, w)
	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	run := func(body []byte) outcome.Outcome {
		t.Helper()
		task, meta, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
		info := poll.Value(t, 20*time.Second, meta.ID+" completed", func() (*asynq.TaskInfo, error) {
			return redistest.TaskIn(insp, stripetask.DefaultQueue, meta.ID, asynq.TaskStateCompleted)
		})
		o, ok := outcome.Parse(info.Result)
		if !ok {
			t.Fatalf("%s: no result", meta.ID)
		}
		return o
	}
	cus := records.CustomerKey("cus_stripeq_demo")

	o := run(stripetest.Fixture("customer.created"))
	if len(o.Records) != 1 || o.Records[0] != (outcome.RecordChange{Key: cus, Changed: true}) || len(o.Notices) != 0 {
		t.Errorf("customer.created: %+v", o)
	}
	if o.Line() != "1 record updated" {
		t.Errorf("customer.created line %q", o.Line())
	}

	o = run(stripetest.Fixture("invoice.payment_failed"))
	want := outcome.Notice{Kind: records.KindPaymentFailed, Customer: "cus_stripeq_demo", Email: "jenny.rosen@example.com", Status: outcome.NoticeEmailed}
	if len(o.Notices) != 1 || o.Notices[0] != want {
		t.Errorf("invoice.payment_failed notices %+v, want %+v", o.Notices, want)
	}
	if line := o.Line(); line != "payment_failed emailed to jenny.rosen@example.com; 2 records updated" {
		t.Errorf("invoice.payment_failed line %q", line)
	}
	if len(mb.received()) != 1 {
		t.Errorf("%d emails", len(mb.received()))
	}

	// The same payment's charge.failed: its invoice's event sends the notice.
	o = run(stripetest.Fixture("charge.failed"))
	if len(o.Notices) != 1 || o.Notices[0].Status != outcome.NoticeSkipped || o.Notices[0].Reason != "a payment of invoice in_stripeq_demo: its invoice.payment_failed sends the notice" {
		t.Errorf("charge.failed notices %+v", o.Notices)
	}

	// A re-run copy of the failure: already emailed, not again.
	o = run(stripetest.Edit(stripetest.Fixture("invoice.payment_failed"), func(e map[string]any) { e["id"] = "evt_copy" }))
	if len(o.Notices) != 1 || o.Notices[0].Status != outcome.NoticeEmailed {
		t.Errorf("second payment_failed notices %+v", o.Notices)
	}
	if line := o.Line(); !strings.HasPrefix(line, "payment_failed not sent again (already emailed by an earlier execution)") {
		t.Errorf("a re-run copy's line %q says it emailed", line)
	}

	// invoice.paid, then an older failure of another attempt arrives late:
	// settled, skipped with its reason, and the record left alone.
	run(stripetest.Fixture("invoice.paid"))
	late := stripetest.Edit(stripetest.Fixture("invoice.payment_failed"), func(e map[string]any) {
		e["id"] = "evt_late"
		stripetest.Object(e)["attempt_count"] = 9
	})
	o = run(late)
	if len(o.Notices) != 1 || o.Notices[0].Status != outcome.NoticeSkipped || o.Notices[0].Reason != "a newer payment settled it" {
		t.Errorf("late payment_failed notices %+v", o.Notices)
	}
	if line := o.Line(); line != "payment_failed skipped: a newer payment settled it; 1 record updated" {
		t.Errorf("late payment_failed line %q", line)
	}

	// Each execution's attempt history: one attempt, by this process.
	h, err := failures.New(db.Client, 0).Attempts(t.Context(), stripetask.DefaultQueue, "evt_stripeq_customer_created")
	if err != nil || len(h) != 1 || h[0].Error != "" || h[0].Worker == "" || h[0].Start.IsZero() || h[0].Outcome != "1 record updated" {
		t.Errorf("history %+v, %v", h, err)
	}
}

// TestEmailFailureTellsTheNextStep: when the email of a notice fails, the
// attempt's outcome says what comes next: a retry sends it while retries
// are left; on the last attempt, that none is left and Run now in the
// Console sends it.
func TestEmailFailureTellsTheNextStep(t *testing.T) {
	// An SMTP server that is down: a port nothing listens on.
	m, err := ParseMailer("smtp://mailer:mail-secret@"+proctest.FreeAddr(t), "Billing <billing@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	w, db := setupWith(t, stripeq.Config{}, Options{Mailer: m})
	runServer(t, w)
	client := asynq.NewClientFromRedisClient(db.Client)
	fs := failures.New(db.Client, 0)
	for _, tt := range []struct {
		id       string
		maxRetry int
		want     string
	}{
		{"evt_retries_left", 3, "email failed; a retry sends it"},
		{"evt_last_try", 0, "email failed; no retries left: Run now in the Console sends it"},
	} {
		body := stripetest.Edit(stripetest.Fixture("invoice.payment_failed"), func(e map[string]any) { e["id"] = tt.id })
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task, asynq.MaxRetry(tt.maxRetry)); err != nil {
			t.Fatal(err)
		}
		// The attempt history, or, once archived, the kept failure's.
		h := poll.Value(t, 20*time.Second, tt.id+"'s first attempt", func() ([]failures.Attempt, error) {
			if r, err := fs.Get(t.Context(), stripetask.DefaultQueue, tt.id); err == nil && len(r.Attempts) > 0 {
				return r.Attempts, nil
			}
			h, err := fs.Attempts(t.Context(), stripetask.DefaultQueue, tt.id)
			if err == nil && len(h) == 0 {
				err = errors.New("no attempt yet")
			}
			return h, err
		})
		if a := h[0]; a.Error == "" || !strings.Contains(a.Outcome, tt.want) {
			t.Errorf("%s (MaxRetry %d): attempt error %q, outcome %q; want an error and %q", tt.id, tt.maxRetry, a.Error, a.Outcome, tt.want)
		}
	}
}
