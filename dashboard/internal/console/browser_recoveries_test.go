package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// dryRun previews the window of the last since on the recoveries page
// and waits until the preview is done; it returns its ID.
func (b *browser) dryRun(since string) string {
	b.t.Helper()
	b.do("preview",
		chromedp.WaitVisible(css(`#recover-form`)),
		chromedp.SetValue(css(`#recover-form input[name=since]`), since),
		chromedp.Click(css(`#preview`)),
	)
	return b.waitState("", "done")
}

// waitState waits until the result panel shows a recovery other than
// not (by ID) in state (any state when ""), and returns its ID.
func (b *browser) waitState(not, state string) string {
	b.t.Helper()
	return poll.Value(b.t, 20*time.Second, fmt.Sprintf("the result panel to show a recovery in state %q", state), func() (string, error) {
		c, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[[]string](`(() => { const r = document.getElementById("result"); return [r.dataset.id || "", r.dataset.state || ""]; })()`))
		switch {
		case err != nil:
			return "", err
		case v[0] == "" || v[0] == not || (state != "" && v[1] != state):
			return "", fmt.Errorf("it shows %v", v)
		}
		return v[0], nil
	})
}

// counts reads the result panel's counts and its breakdowns.
func (b *browser) counts() map[string]string {
	b.t.Helper()
	v := b.list("read counts", `(() => {
		const out = [];
		for (const k of ["listed", "missing", "enqueued"]) out.push(k + "=" + document.getElementById("count-" + k).textContent);
		for (const t of ["by-type", "by-account"]) for (const r of document.querySelectorAll("#" + t + " tr[data-key]")) out.push(t + ":" + r.dataset.key + "=" + r.cells[1].textContent);
		return out;
	})()`)
	m := map[string]string{}
	for _, kv := range v {
		k, val, _ := strings.Cut(kv, "=")
		m[k] = val
	}
	return m
}

// TestBrowserRecoveries drives the "Recover missed events" page in
// headless Chromium: an operator previews a window (a dry run: counts by
// type and by account, nothing stored), runs it (progress while Stripe
// makes it wait, then done), and finds both in the history; a viewer sees
// the history but no button. The page is no wider than the window on a
// desktop and a phone.
func TestBrowserRecoveries(t *testing.T) {
	b, api := setupRecovery(t, 3)
	start := time.Now().Add(-30 * time.Minute)
	api.Add("acct_browser",
		stripetest.Event(events.InvoicePaid, "evt_browser_a", start),
		stripetest.Event(events.InvoicePaid, "evt_browser_b", start.Add(time.Second)))
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/recoveries", opUser, opPass)

	preview := br.dryRun("2h")
	got := br.counts()
	want := map[string]string{
		"listed": "5", "missing": "5", "enqueued": "0",
		"by-type:" + events.CustomerCreated: "3", "by-type:" + events.InvoicePaid: "2",
		"by-account:platform": "3", "by-account:acct_browser": "2",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("preview %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_dash_0"); err == nil {
		t.Error("the preview stored an event")
	}
	br.shot("recoveries-preview.png")

	// Stripe makes the run wait a second (429, Retry-After: 1): the page
	// shows it running, then done.
	api.Fail429(1, 1)
	br.do("run", chromedp.Click(css(`#run`)))
	run := br.waitState(preview, "running")
	br.shot("recoveries-running.png")
	br.waitState(preview, "done")
	if got := br.counts(); got["missing"] != "5" || got["enqueued"] != "5" {
		t.Errorf("run: %v, want 5 missing, 5 enqueued", got)
	}
	if _, err := b.env.Inspector.GetTaskInfo("stripe", "evt_dash_0"); err != nil {
		t.Errorf("the run did not store evt_dash_0: %v", err)
	}
	if rows := br.rows(); !slices.Equal(rows, []string{run, preview}) {
		t.Errorf("history %v, want [%s %s]", rows, run, preview)
	}

	// The history survives a reload, and a link shows that recovery.
	br.do("open from the history",
		chromedp.Navigate(br.base+"/recoveries"),
		chromedp.WaitVisible(css(`#history-table`)),
		chromedp.Click(css(`#history-table a[href="/recoveries?id=`+preview+`"]`)),
		waitURL("id="+preview),
	)
	if id := br.waitState("", "done"); id != preview {
		t.Errorf("the link to %s shows %s", preview, id)
	}

	// Nothing is wider than the window, on a desktop and on a phone.
	for _, size := range []struct {
		w, h int64
		name string
	}{{1440, 900, "desktop"}, {390, 844, "phone"}} {
		br.do("open at "+size.name, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(br.base+"/recoveries?id="+run), chromedp.WaitVisible(css(`#history-table`)))
		br.waitState("", "done")
		w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if w[0] > w[1] {
			t.Errorf("/recoveries at %dx%d: the page is %d px wide in a %d px window", size.w, size.h, w[0], w[1])
		}
		br.shot("recoveries-" + size.name + ".png")
	}

	// A viewer sees the history, and no button.
	vb := newBrowser(t, b.h, 390, 844)
	vb.signIn("/recoveries", viewerUser, viewerPass)
	vb.do("viewer's page", chromedp.WaitVisible(css(`#viewer-note`)))
	if n := vb.list("buttons", `Array.from(document.querySelectorAll("#recover-form, #run, #preview")).map(e => e.id)`); len(n) > 0 {
		t.Errorf("a viewer sees %v", n)
	}
	if rows := vb.rows(); len(rows) != 2 {
		t.Errorf("the viewer's history: %v", rows)
	}
	vb.shot("recoveries-viewer-phone.png")

	br.mu.Lock()
	defer br.mu.Unlock()
	for _, u := range br.requests {
		if !strings.HasPrefix(u, br.base+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s, outside the host", u)
		}
	}
	for u, status := range br.responses {
		if status >= http.StatusBadRequest {
			t.Errorf("%s answered %d", u, status)
		}
	}
}
