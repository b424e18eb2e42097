package console

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
)

// addAudit writes an audit entry done at (a time before now, as the
// stream's entry ID, so that it reads as done then).
func addAudit(t *testing.T, b *bundle, at time.Time, user, action, target, detail string, count int) {
	t.Helper()
	err := b.db.Client.XAdd(t.Context(), &redis.XAddArgs{Stream: audit.Key, ID: fmt.Sprintf("%d-0", at.UnixMilli()),
		Values: []any{"user", user, "action", action, "target", target, "count", count, "reason", "INC-5", "result", "ok", "detail", detail}}).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrowserAuditTool: the audit log filters by user, action and time,
// shows every action's count, and reads targets as chips that link to
// the executions, deliveries and recoveries acted on, on a desktop and a
// phone.
func TestBrowserAuditTool(t *testing.T) {
	b := setup(t, seeds)
	now := time.Now()
	from, to := now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
	addAudit(t, b, now.Add(-3*time.Hour), opUser, audit.Rerun, "evt_01", "evt_01:rerun:1", 1)
	addAudit(t, b, now.Add(-2*time.Hour), "ana", audit.BulkRerun, "from="+strconv.FormatInt(from, 10)+"&state=failed&to="+strconv.FormatInt(to, 10)+"&type=invoice.%2A", "3 run now", 3)
	addAudit(t, b, now.Add(-30*time.Minute), opUser, audit.RerunSelected, "evt_01,evt_03", "1 run, 1 copied", 2)
	addAudit(t, b, now.Add(-20*time.Minute), opUser, audit.DeliveryRerun, "evt_03:dest:crm", "run now", 1)
	addAudit(t, b, now.Add(-10*time.Minute), "ana", audit.Recovery, "2026-12-07T10:00:00Z to 2026-12-07T11:00:00Z", "recovery r1", 0)

	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/audit", viewerUser, viewerPass)
	br.do("the log", chromedp.WaitVisible(css(`#audit`)))
	counts := func() map[string]string {
		m := map[string]string{}
		for _, s := range br.list("counts", `Array.from(document.querySelectorAll("#action-counts a")).map(a => a.dataset.auditAction + "=" + a.querySelector(".count").textContent)`) {
			k, v, _ := strings.Cut(s, "=")
			m[k] = v
		}
		return m
	}
	c := counts()
	for action, want := range map[string]string{"": "5", audit.Rerun: "1", audit.BulkRerun: "1", audit.RerunSelected: "1", audit.DeliveryRerun: "1", audit.Recovery: "1", audit.Cancel: "0", audit.Discard: "0", audit.Asynqmon: "0"} {
		if c[action] != want {
			t.Errorf("count of %q: %q, want %s (all: %v)", action, c[action], want, c)
		}
	}

	// Targets are chips with links, not query strings.
	bulk := br.list("the bulk re-run", `(() => { const r = Array.from(document.querySelectorAll("#audit tbody tr")).find(r => r.innerText.includes("bulk_rerun")); return r ? [r.querySelector("td.target").innerText.replace(/\s+/g, " "), Array.from(r.querySelectorAll("td.target a")).map(a => a.getAttribute("href")).join(" ")] : ["", ""]; })()`)
	if strings.Contains(bulk[0], "state=failed") || !strings.Contains(bulk[0], "state failed") || !strings.Contains(bulk[0], "type invoice.*") ||
		!strings.Contains(bulk[0], time.Unix(from, 0).UTC().Format("2006-01-02 15:04:05 UTC")) {
		t.Errorf("the bulk re-run's target reads %q", bulk[0])
	}
	if !strings.Contains(bulk[1], "/?state=failed") {
		t.Errorf("the bulk re-run's links: %q", bulk[1])
	}
	links := br.list("links", `Array.from(document.querySelectorAll("#audit td.target a")).map(a => a.getAttribute("href"))`)
	for _, want := range []string{"/executions/evt_01", "/executions/evt_01:rerun:1", "/executions/evt_03", "/deliveries/evt_03:dest:crm", "/recoveries#recovery-r1"} {
		if !slices.Contains(links, want) {
			t.Errorf("no link to %s among %v", want, links)
		}
	}
	br.shot("audit-tool-desktop.png")

	// By user, with the menu: ana's two, and the counts are hers.
	br.do("ana", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("select[name=user]"); s.value = "ana"; s.dispatchEvent(new Event("change")); })()`),
		waitURL("user=ana"), chromedp.WaitVisible(css(`#audit`)))
	if n := len(br.rows()); n != 2 {
		t.Errorf("user=ana lists %d entries, want 2", n)
	}
	if c := counts(); c[""] != "2" || c[audit.Rerun] != "0" || c[audit.BulkRerun] != "1" {
		t.Errorf("ana's counts %v", c)
	}
	// By action, with its count: the user stays.
	br.do("recoveries", chromedp.Click(css(`#action-counts a[data-audit-action=recovery]`)), waitURL("action=recovery"), chromedp.WaitVisible(css(`#audit`)))
	if got := br.rows(); len(got) != 1 || !strings.Contains(br.get("url", chromedp.Location()), "user=ana") {
		t.Errorf("ana's recoveries: %v", got)
	}
	// By time: the last hour.
	br.do("the last hour", chromedp.Navigate(br.base+"/audit"), chromedp.WaitVisible(css(`input[name=from]`)),
		chromedp.SetValue(css(`input[name=from]`), now.Add(-time.Hour).UTC().Format("2006-01-02T15:04")),
		chromedp.Submit(css(`#filters`)), waitURL("from="), chromedp.WaitVisible(css(`#audit`)))
	if n := len(br.rows()); n != 3 {
		t.Errorf("the last hour lists %d entries, want 3", n)
	}
	if c := counts(); c[""] != "3" || c[audit.BulkRerun] != "0" {
		t.Errorf("the last hour's counts %v", c)
	}
	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/audit"), chromedp.WaitVisible(css(`#audit`)))
	if w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)); err != nil || w[0] > w[1] {
		t.Errorf("/audit at 390x844: %v, %v", w, err)
	}
	br.shot("audit-tool-phone.png")
}
