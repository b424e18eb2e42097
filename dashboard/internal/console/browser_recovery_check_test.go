package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// previewed reads the result panel's list of missing events, one
// "id type account" each (account "platform" for the platform's).
func (b *browser) previewed() []string {
	b.t.Helper()
	return b.list("read the missing events", `Array.from(document.querySelectorAll("#missing-events tbody tr[data-event]")).map(r => r.dataset.event + " " + r.dataset.type + " " + r.dataset.account)`)
}

// fitsWidth fails the test when the page is wider than its window.
func (b *browser) fitsWidth(where string) {
	b.t.Helper()
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if err != nil {
		b.t.Fatal(err)
	}
	if w[0] > w[1] {
		b.t.Errorf("%s: the page is %d px wide in a %d px window", where, w[0], w[1])
	}
}

// TestBrowserRecoveryPreviewListsEvents: a dry run lists the IDs of the
// missing events, with their type, created time and account, on the page
// (desktop and phone, no wider than the window) and in its JSON record.
func TestBrowserRecoveryPreviewListsEvents(t *testing.T) {
	b, api := setupRecovery(t, 2)
	api.Add("acct_preview", stripetest.Event(events.InvoicePaid, "evt_preview_acct", time.Now().Add(-20*time.Minute)))
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/recoveries", opUser, opPass)
	id := br.dryRun("2h")
	got := br.previewed()
	slices.Sort(got)
	want := []string{
		"evt_dash_0 " + events.CustomerCreated + " platform",
		"evt_dash_1 " + events.CustomerCreated + " platform",
		"evt_preview_acct " + events.InvoicePaid + " acct_preview",
	}
	if !slices.Equal(got, want) {
		t.Errorf("the preview lists %q, want %q", got, want)
	}
	if n := br.list("created times", `Array.from(document.querySelectorAll("#missing-events tbody tr[data-event] time[datetime]")).map(t => t.getAttribute("datetime"))`); len(n) != 3 {
		t.Errorf("created times shown: %v", n)
	}
	br.shot("recovery-preview-events-desktop.png")

	rec := decode[recovery.Record](t, b.op(t, http.MethodGet, "/api/recoveries/"+id), http.StatusOK)
	var ids []string
	for _, e := range rec.Events {
		ids = append(ids, e.ID+" "+e.Type+" "+e.Account)
		if e.Created.IsZero() {
			t.Errorf("%s: no created time in the JSON", e.ID)
		}
	}
	slices.Sort(ids)
	if w := []string{"evt_dash_0 " + events.CustomerCreated + " ", "evt_dash_1 " + events.CustomerCreated + " ", "evt_preview_acct " + events.InvoicePaid + " acct_preview"}; !slices.Equal(ids, w) || rec.EventsCapped {
		t.Errorf("GET /api/recoveries/%s lists %q (capped %v), want %q", id, ids, rec.EventsCapped, w)
	}

	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/recoveries?id="+id), chromedp.WaitVisible(css(`#history-table`)))
	br.waitState("", "done")
	if n := len(br.previewed()); n != 3 {
		t.Errorf("on a phone the preview lists %d events", n)
	}
	br.fitsWidth("/recoveries with a preview on a phone")
	br.shot("recovery-preview-events-phone.png")

	// A preview that found more than it keeps says so, and offers no store.
	b.srv.recoveries.rec.PreviewLimit = 2
	br.do("capped preview",
		chromedp.EmulateViewport(1440, 900),
		chromedp.SetValue(css(`#recover-form input[name=since]`), "2h"),
		chromedp.Click(css(`#preview`)),
	)
	br.waitState(id, "done")
	note := br.list("capped", `[document.getElementById("missing-capped").hidden ? "" : document.getElementById("missing-capped").textContent,
		String(document.getElementById("store-previewed").hidden), document.getElementById("store-note").textContent]`)
	if !strings.Contains(note[0], "first 2 of 3") || note[1] != "true" || !strings.Contains(note[2], "narrower window") {
		t.Errorf("a capped preview shows %q", note)
	}
	br.shot("recovery-preview-capped-desktop.png")
}

// TestBrowserRecoveryStoresPreviewed: after a dry run, "Store these N
// events" stores exactly the previewed events: one that arrived meanwhile
// is counted as already stored, and one that appeared in the window after
// the preview is left alone. The run names its preview and is audited
// with its ID and count.
func TestBrowserRecoveryStoresPreviewed(t *testing.T) {
	b, api := setupRecovery(t, 3)
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/recoveries", opUser, opPass)
	preview := br.dryRun("2h")
	if label := br.get("store button", chromedp.Text(css(`#store-previewed`))); !strings.Contains(label, "Store these 3 events") {
		t.Errorf("the store button reads %q", label)
	}

	// Meanwhile: a webhook delivers evt_dash_1, and Stripe lists a new
	// event in the previewed window.
	body := stripetest.Event(events.CustomerCreated, "evt_dash_1", time.Now().Add(-time.Hour))
	m, err := stripetask.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.env.Client.Enqueue(stripetask.NewFromMetadata(body, m, b.srv.cfg.Task)); err != nil {
		t.Fatal(err)
	}
	api.Add("", stripetest.Event(events.CustomerCreated, "evt_late", time.Now().Add(-10*time.Minute)))

	br.do("store the previewed events", chromedp.Click(css(`#store-previewed`)))
	run := br.waitState(preview, "done")
	got := br.get("enqueued", chromedp.Text(css(`#count-enqueued`))) + " " + br.get("already stored", chromedp.Text(css(`#count-already`)))
	if got != "2 1" {
		t.Errorf("enqueued, already stored: %s, want 2 1", got)
	}
	if from := br.get("bound to", chromedp.Text(css(`#result-from`))); !strings.Contains(from, preview) {
		t.Errorf("the run's panel names %q, want its preview %s", from, preview)
	}
	br.shot("recovery-stored-previewed-desktop.png")
	for _, id := range []string{"evt_dash_0", "evt_dash_2"} {
		info, err := b.env.Inspector.GetTaskInfo("stripe", id)
		if err != nil || info.Headers[stripetask.HeaderSource] != stripetask.SourceRecovery {
			t.Errorf("%s: %v, %v; want stored by the recovery", id, info, err)
		}
	}
	if info, err := b.env.Inspector.GetTaskInfo("stripe", "evt_dash_1"); err != nil || info.Headers[stripetask.HeaderSource] != "" {
		t.Errorf("evt_dash_1, delivered meanwhile, was replaced: %v", err)
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_late"); err == nil {
		t.Error("the run stored evt_late, which the preview did not list")
	}
	rec := decode[recovery.Record](t, b.op(t, http.MethodGet, "/api/recoveries/"+run), http.StatusOK)
	if rec.From != preview || rec.DryRun || rec.Enqueued != 2 || rec.Progress.AlreadyStored != 1 || rec.Progress.NotPreviewed != 1 {
		t.Errorf("the run's record: %+v", rec)
	}
	page := decode[audit.Page](t, b.op(t, http.MethodGet, "/api/audit?action=recovery"), http.StatusOK)
	found := false
	for _, e := range page.Entries {
		if strings.Contains(e.Detail, run) && strings.Contains(e.Detail, preview) && e.Count == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry names the run %s, its preview %s and 3 events: %+v", run, preview, page.Entries)
	}

	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/recoveries?id="+run), chromedp.WaitVisible(css(`#history-table`)))
	br.waitState("", "done")
	br.fitsWidth("/recoveries with a bound run on a phone")
	br.shot("recovery-stored-previewed-phone.png")
}

// TestBrowserRecoverySourceFilter: the Executions list filters by
// source=recovery, a recovery's history row links to the executions it
// stored, and a recovered execution's page links back to its recovery.
func TestBrowserRecoverySourceFilter(t *testing.T) {
	api := stripetest.NewAPI(t)
	api.Add("", stripetest.Event(events.CustomerCreated, "evt_rec_a", time.Now().Add(-40*time.Minute)),
		stripetest.Event(events.CustomerCreated, "evt_rec_b", time.Now().Add(-30*time.Minute)))
	b := setupEnv(t, []execindextest.Exec{{ID: "evt_webhook_a", Type: events.InvoicePaid, State: "completed"}},
		map[string]string{"STRIPE_SECRET_KEY": "rk_test_dashboard", "STRIPE_API_BASE": api.URL})
	start := decode[recovery.Record](t, b.op(t, http.MethodPost, "/api/recoveries?since=2h"), http.StatusAccepted)
	if rec := b.waitRecovery(t, start.ID); rec.Enqueued != 2 {
		t.Fatalf("the recovery: %+v", rec)
	}

	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/recoveries", opUser, opPass)
	br.do("open the recovery's executions",
		chromedp.WaitVisible(css(`#history-table`)),
		chromedp.Click(css(`#recovery-`+start.ID+` a.executions-link`)),
		waitURL("source=recovery"),
	)
	rows := br.rows()
	slices.Sort(rows)
	if !slices.Equal(rows, []string{"evt_rec_a", "evt_rec_b"}) {
		t.Errorf("the recovery's executions: %v", rows)
	}
	if v := br.get("source control", chromedp.Value(css(`#filters select[name=source]`))); v != "recovery" {
		t.Errorf("the source control shows %q", v)
	}
	br.shot("recovery-source-list-desktop.png")

	// The control narrows the whole list, and clears.
	br.do("all executions", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`#filters`)))
	if rows := br.rows(); len(rows) != 3 {
		t.Errorf("the whole list: %v", rows)
	}
	br.do("choose source",
		chromedp.SetValue(css(`#filters select[name=source]`), "recovery"),
		chromedp.Submit(css(`#filters`)),
		waitURL("source=recovery"),
	)
	if rows := br.rows(); len(rows) != 2 || slices.Contains(rows, "evt_webhook_a") {
		t.Errorf("source=recovery: %v", rows)
	}

	// An execution stored by the recovery links back to it.
	br.do("open a recovered execution", chromedp.Navigate(br.base+"/executions/evt_rec_a"), chromedp.WaitVisible(css(`#recovery-link`)))
	br.shot("recovery-source-detail-desktop.png")
	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(css(`#recovery-link`)))
	br.fitsWidth("a recovered execution on a phone")
	br.shot("recovery-source-detail-phone.png")
	br.do("back to the recovery", chromedp.Click(css(`#recovery-link`)), waitURL("/recoveries?id="+start.ID))
	if id := br.waitState("", "done"); id != start.ID {
		t.Errorf("the link back shows %s, want %s", id, start.ID)
	}
	br.do("phone list", chromedp.Navigate(br.base+"/?source=recovery"), chromedp.WaitVisible(css(`#filters`)))
	br.fitsWidth("/?source=recovery on a phone")
	br.shot("recovery-source-list-phone.png")

	// A webhook's execution says nothing of a recovery.
	br.do("a webhook's execution", chromedp.Navigate(br.base+"/executions/evt_webhook_a"), chromedp.WaitVisible(css(`h1`)))
	ctx, cancel := context.WithTimeout(br.ctx, time.Second)
	defer cancel()
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-link").length`)); err != nil || n != 0 {
		t.Errorf("a webhook's execution shows a recovery link: %d, %v", n, err)
	}
}
