package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAudit: an operator re-runs an execution, giving a reason in
// the confirmation, then finds the action, with who and why, on the audit
// log page, on a laptop and on a phone.
func TestBrowserAudit(t *testing.T) {
	b := setup(t, seeds)
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/executions/evt_03", opUser, opPass)
	br.do("re-run with a reason", chromedp.WaitVisible(css(`#rerun`)), chromedp.Click(css(`#rerun`)),
		br.confirm("INC-7 card network outage", ""), waitURL("/executions/evt_03:rerun:1"))
	br.do("open the audit log", chromedp.Click(css(`nav a[href="/audit"]`)), waitURL("/audit"), chromedp.WaitVisible(css(`#audit`)))
	rows := br.list("audit rows", `Array.from(document.querySelectorAll("#audit tbody tr[data-id]")).map(r => r.innerText)`)
	if len(rows) != 1 {
		t.Fatalf("audit rows %q, want the one re-run", rows)
	}
	for _, s := range []string{opUser, "rerun", "evt_03", "evt_03:rerun:1", "INC-7 card network outage", "ok"} {
		if !strings.Contains(rows[0], s) {
			t.Errorf("the audit row %q lacks %q", rows[0], s)
		}
	}
	if cur := br.get("current tab", chromedp.Text(css(`nav a[aria-current=page]`))); cur != "Audit log" {
		t.Errorf("aria-current on %q", cur)
	}
	for _, size := range []struct{ w, h int64 }{{1440, 900}, {390, 844}} {
		br.do("resize", chromedp.EmulateViewport(size.w, size.h), chromedp.Reload(), chromedp.WaitVisible(css(`#audit`)))
		w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if w[0] > w[1] {
			t.Errorf("at %dx%d /audit is %d px wide in a %d px window", size.w, size.h, w[0], w[1])
		}
		br.shot(map[int64]string{1440: "audit-desktop.png", 390: "audit-phone.png"}[size.w])
	}
}
