package recovery_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// TestPreviewAndBoundRun: a dry run keeps the first PreviewLimit missing
// events (ID, type, created, account) and counts the rest; a run bound to
// its events (Request.Only) lists only their accounts and stores only
// them, counting those stored meanwhile, those listed but not previewed,
// and those Stripe no longer lists; each task names the recovery.
func TestPreviewAndBoundRun(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-2 * time.Hour)
	platform := makeEvents("prev", 3, start)
	b.api.Add("", platform...)
	b.api.Add("acct_preview", makeEvents("acct", 2, start)...)
	b.api.Add("acct_other", makeEvents("other", 1, start)...)
	since := time.Now().Add(-3 * time.Hour)

	b.rec.PreviewLimit = 4
	p := b.run(t, recovery.Request{Since: since, DryRun: true})
	if p.Missing != 6 || len(p.Events) != 4 {
		t.Fatalf("capped dry run: missing %d, kept %d", p.Missing, len(p.Events))
	}
	b.rec.PreviewLimit = 0
	p = b.run(t, recovery.Request{Since: since, DryRun: true, Account: "acct_preview"})
	if p.Missing != 2 || len(p.Events) != 2 {
		t.Fatalf("dry run of acct_preview: %+v", p)
	}
	for _, e := range p.Events {
		if e.Account != "acct_preview" || e.Type == "" || e.Created.IsZero() || e.Created.Location() != time.UTC {
			t.Errorf("kept %+v", e)
		}
	}
	full := b.run(t, recovery.Request{Since: since, DryRun: true})
	if len(full.Events) != 6 {
		t.Fatalf("dry run: %d events", len(full.Events))
	}

	// Keep evt_prev_0 and evt_acct_1 in the preview, plus one Stripe no
	// longer lists; deliver evt_prev_0 meanwhile.
	only := []recovery.Event{{ID: "evt_prev_0"}, {ID: "evt_acct_1", Account: "acct_preview"}, {ID: "evt_gone_1"}}
	for _, e := range full.Events {
		if e.ID == "evt_prev_0" || e.ID == "evt_acct_1" {
			only[slices.IndexFunc(only, func(o recovery.Event) bool { return o.ID == e.ID })] = e
		}
	}
	b.deliver(t, platform[0])
	seen := len(b.api.Requests())
	bound := b.run(t, recovery.Request{Since: since, Only: only, ID: "rec_bound"})
	if bound.Accounts != 2 || bound.Enqueued != 1 || bound.AlreadyStored != 1 || bound.NotListed != 1 || bound.NotPreviewed != 3 {
		t.Errorf("bound run: %+v", bound)
	}
	for _, r := range b.api.Requests()[seen:] {
		if r.Account == "acct_other" {
			t.Error("the bound run listed an account its events do not name")
		}
	}
	if h := b.task(t, "evt_acct_1").Headers; h[stripetask.HeaderSource] != stripetask.SourceRecovery || h[stripetask.HeaderRecoveryID] != "rec_bound" {
		t.Errorf("evt_acct_1's headers: %v", h)
	}
	for _, id := range []string{"evt_prev_1", "evt_prev_2", "evt_acct_0", "evt_other_0"} {
		if _, err := b.insp.GetTaskInfo(stripetask.QueueFor(id, b.opts), id); err == nil {
			t.Errorf("the bound run stored %s, which it was not bound to", id)
		}
	}
}

// TestRecordEvents: a dry run's events are kept under their own key, read
// by Get and not by List; IDs other than NewID's are not found.
func TestRecordEvents(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	recs := &recovery.Records{RDB: b.db.Client}
	now := time.Now()
	rec := recovery.Record{ID: recovery.NewID(), State: recovery.StateDone, StartedAt: now, UpdatedAt: now, DryRun: true}
	rec.SetProgress(recovery.Progress{Missing: 3, Events: []recovery.Event{{ID: "evt_1", Type: "invoice.paid", Created: now.UTC().Truncate(time.Second)}}})
	rec.KeepEvents(rec.Progress)
	if !rec.EventsCapped {
		t.Error("1 of 3 kept is not capped")
	}
	if err := recs.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := recs.Get(ctx, rec.ID)
	if err != nil || len(got.Events) != 1 || got.Events[0] != rec.Events[0] || !got.EventsCapped {
		t.Errorf("Get: %+v, %v", got, err)
	}
	// A later save without events keeps them.
	rec.Events = nil
	if err := recs.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := recs.Get(ctx, rec.ID); len(got.Events) != 1 {
		t.Errorf("events lost by a save without them: %+v", got)
	}
	list, err := recs.List(ctx, 10)
	if err != nil || len(list) != 1 || list[0].Events != nil {
		t.Errorf("List: %+v, %v", list, err)
	}
	for _, id := range []string{"rec_", "rec_ABC", rec.ID + ":events", "evt_1"} {
		if recovery.ValidID(id) {
			t.Errorf("ValidID(%q)", id)
		}
	}
	if !recovery.ValidID(rec.ID) {
		t.Errorf("ValidID(%q) = false", rec.ID)
	}
}
