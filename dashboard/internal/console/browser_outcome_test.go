package console

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserOutcome: an operator answers "did cus_X's payment-failure
// email go out, and if not, why?" in two clicks from the list: the
// customer, then the execution, whose page shows the notice skipped and
// why, the records, and every attempt with its worker and error.
func TestBrowserOutcome(t *testing.T) {
	b := setup(t, seeds)
	seedOutcome(t, b, "evt_03")
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/", opUser, opPass)
	// The list, with an outcome, fits a laptop.
	br.do("signed in", chromedp.WaitVisible(css(`table.list`)), waitURL(br.base+"/"))
	br.do("laptop", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(br.base+"/?limit=50"), chromedp.WaitVisible(css(`table.list`)))
	if w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)); err != nil || w[0] > w[1] {
		t.Errorf("the list at 1280x800: %v, %v", w, err)
	}
	br.shot("outcome-laptop-list.png")
	br.do("desktop", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`table.list`)))

	br.do("click 1: the customer", chromedp.WaitVisible(css(`table.list`)),
		chromedp.Click(css(`tr[data-id=evt_03] a[href="/?customer=cus_X"]`)), waitURL("customer=cus_X"), chromedp.WaitVisible(css(`tr[data-id=evt_03]`)))
	if line := br.get("row outcome", chromedp.Text(css(`tr[data-id=evt_03] td.outcome`))); line != "payment_failed skipped: a newer payment settled it; 1 record updated" {
		t.Errorf("the row says %q", line)
	}
	if err := br.get("completed row's error", chromedp.Text(css(`tr[data-id=evt_03] td.outcome`))); strings.Contains(err, "timeout") {
		t.Errorf("the completed row shows an earlier attempt's error: %q", err)
	}
	br.do("click 2: the execution", chromedp.Click(css(`tr[data-id=evt_03] a[href="/executions/evt_03"]`)), waitURL("/executions/evt_03"), chromedp.WaitVisible(css(`#notices`)))
	if got := br.get("notices", chromedp.Text(css(`#notices`))); !strings.Contains(got, "payment_failed") || !strings.Contains(got, "skipped") || !strings.Contains(got, "a newer payment settled it") {
		t.Errorf("the notices say %q", got)
	}
	if got := br.get("records", chromedp.Text(css(`#records`))); !strings.Contains(got, "unchanged: a newer event is already applied") {
		t.Errorf("the records say %q", got)
	}
	attempts := br.list("attempts", `Array.from(document.querySelectorAll("#attempts tr")).slice(1).map(r => r.innerText)`)
	if len(attempts) != 2 || !strings.Contains(attempts[0], "worker-a:41") || !strings.Contains(attempts[0], "i/o timeout") ||
		!strings.Contains(attempts[1], "worker-b:7") || !strings.Contains(attempts[1], "succeeded") {
		t.Errorf("the attempts say %q", attempts)
	}
	// Search by the invoice, and by the customer's email in any case.
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"in_stripeq_demo", []string{"evt_08", "evt_07", "evt_04", "evt_03", "evt_02", "evt_01"}},
		// A subscription carries no email: evt_06 is not listed.
		{"Jenny.Rosen@EXAMPLE.com", []string{"evt_08", "evt_07", "evt_05", "evt_04", "evt_03", "evt_02", "evt_01"}},
	} {
		br.do("search "+tt.q, chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`input[name=q]`)),
			chromedp.SendKeys(css(`input[name=q]`), tt.q+"\r"), waitURL("q="))
		if got := br.rows(); !slices.Equal(got, tt.want) {
			t.Errorf("search %s: %v, want %v", tt.q, got, tt.want)
		}
	}
	br.do("search what nothing names", chromedp.Navigate(br.base+"/?q=in_nope"), chromedp.WaitVisible(css(`td.empty`)))
	if msg := br.get("empty", chromedp.Text(css(`td.empty`))); !strings.Contains(msg, "No execution names in_nope") {
		t.Errorf("an empty search says %q", msg)
	}
	br.do("back to the execution", chromedp.Navigate(br.base+"/executions/evt_03"), chromedp.WaitVisible(css(`#attempts`)))
	for _, size := range []struct{ w, h int64 }{{1440, 900}, {390, 844}} {
		br.do("resize", chromedp.EmulateViewport(size.w, size.h), chromedp.Reload(), chromedp.WaitVisible(css(`#attempts`)))
		w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if w[0] > w[1] {
			t.Errorf("at %dx%d the detail is %d px wide in a %d px window", size.w, size.h, w[0], w[1])
		}
		br.shot(map[int64]string{1440: "outcome-desktop-detail.png", 390: "outcome-phone-detail.png"}[size.w])
	}
}
