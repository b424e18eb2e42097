package console

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
)

// TestBrowserDeliveries plays "our app was down: which deliveries
// failed? Send them again." on a laptop and on a phone (issue 27, item
// 1): a time column and the last hour, filters that apply at once with
// counts per state, state badges, a pager, "re-send all matching" with a
// preview and a required reason and its result, "re-send selected", the
// detail with what was sent (headers with webhook-id, the body), attempts
// newest first, a confirmed re-run with its result, links between the
// execution and its deliveries, and no page wider than the screen.
func TestBrowserDeliveries(t *testing.T) {
	for _, size := range screens {
		t.Run(size.name, func(t *testing.T) {
			b := setup(t, []execindextest.Exec{{ID: "evt_i1", Type: "invoice.payment_failed", Customer: "cus_A", State: "completed"}})
			ids := seedDeliveries(t, b, incident)
			for i, status := range []int{500, 503} {
				a, _ := json.Marshal(delivery.Attempt{At: time.Now().Add(time.Duration(i-2) * time.Minute), Status: status, Error: fmt.Sprintf("destination app answered %d", status)})
				b.db.Client.RPush(t.Context(), keyspace.DeliveryAttempts(ids[0]), a)
			}
			br := newBrowser(t, b.h, size.w, size.h)
			// Headless Chromium's window is at least 500 px wide: the phone's
			// screen is emulated.
			br.do("viewport", chromedp.EmulateViewport(int64(size.w), int64(size.h)))
			fits := func(page string) {
				t.Helper()
				w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
				if err != nil {
					t.Fatal(err)
				}
				if w[0] > w[1] {
					t.Errorf("%s is %d px wide in a %d px window", page, w[0], w[1])
				}
			}
			text := func(sel string) string {
				return br.get(sel, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {}).innerText || ""`))
			}

			br.signIn("/deliveries", opUser, opPass)
			br.do("the list", chromedp.WaitVisible(css(`#deliveries`)))
			heads := text("#deliveries thead")
			for _, want := range []string{"LAST ATTEMPT", "RECEIVED", "CUSTOMER", "EXECUTION"} {
				if !strings.Contains(strings.ToUpper(heads), want) {
					t.Errorf("the list's columns %q lack %s", heads, want)
				}
			}
			if n := br.list("badges", `Array.from(document.querySelectorAll("#deliveries .badge.s-archived")).map(e => e.innerText)`); len(n) != 2 {
				t.Errorf("archived badges %v, want 2", n)
			}
			if tabs := text(".tabs"); !strings.Contains(tabs, "Archived 2") || !strings.Contains(tabs, "Pending 2") || !strings.Contains(tabs, "All 6") {
				t.Errorf("state tabs %q", tabs)
			}
			fits("/deliveries")
			br.shot("deliveries-list-" + size.name + ".png")

			// The last hour: the event of three hours ago drops out.
			br.do("last hour", chromedp.Click(css(`#last-hour`)), waitURL("since=1h"), chromedp.WaitVisible(css(`#deliveries`)))
			if rows := br.rows(); len(rows) != 5 {
				t.Errorf("the last hour: %v, want 5 deliveries", rows)
			}
			// Filters at once.
			br.do("filter", chromedp.Navigate(br.base+"/deliveries?destination=app&customer=cus_B&type=invoice.*&state=archived"), chromedp.WaitVisible(css(`#deliveries`)))
			if rows := br.rows(); len(rows) != 1 || rows[0] != ids[4] {
				t.Errorf("app, cus_B, invoice.*, archived: %v, want %s", rows, ids[4])
			}
			// A pager.
			br.do("page 1 of 4", chromedp.Navigate(br.base+"/deliveries?size=4"), chromedp.WaitVisible(css(`#next-page`)))
			first := br.rows()
			br.do("next page", chromedp.Click(css(`#next-page`)), waitURL("page=2"), chromedp.WaitVisible(css(`#deliveries`)))
			if second := br.rows(); len(first) != 4 || len(second) != 2 {
				t.Errorf("pages of 4: %v then %v", first, second)
			}

			// Re-send all matching: the preview, a required reason, the result.
			br.do("the outage's deliveries", chromedp.Navigate(br.base+"/deliveries?destination=app&customer=cus_B"), chromedp.WaitVisible(css(`#resend-all`)))
			if hidden := br.get("selected hidden", chromedp.Evaluate[string](`String(getComputedStyle(document.getElementById("resend-selected")).display === "none")`)); hidden != "true" {
				t.Error(`"Re-send selected" shows while nothing is selected`)
			}
			br.do("preview", chromedp.Click(css(`#resend-all`)), chromedp.WaitVisible(css(`#resend-dialog`)))
			if what, rows := text("#resend-what"), text("#resend-rows"); !strings.Contains(what, "2 deliveries") || !strings.Contains(rows, "sent again now") || !strings.Contains(rows, ids[4]) {
				t.Errorf("the preview says %q, rows %q", what, rows)
			}
			fits("the re-send preview")
			br.shot("deliveries-resend-preview-" + size.name + ".png")
			br.do("no reason: not sent", chromedp.Click(css(`#resend-go`)))
			if res := text("#resend-result"); res != "" {
				t.Errorf("sent without a reason: %q", res)
			}
			br.do("re-send with a reason", chromedp.SendKeys(css(`#resend-reason`), "INC-42 app down"), chromedp.Click(css(`#resend-go`)))
			poll.Until(t, 10*time.Second, "the re-send's result", func() bool { return strings.HasPrefix(text("#resend-result"), "Re-sent") })
			if res := text("#resend-result"); !strings.Contains(res, "Re-sent 2 (2 sent again now, 0 copied), skipped 0") {
				t.Errorf("the result says %q", res)
			}
			br.shot("deliveries-resend-result-" + size.name + ".png")
			br.do("close", chromedp.Click(css(`#resend-cancel`)), chromedp.WaitVisible(css(`#deliveries`)))

			// Re-send selected: shown once a row is ticked.
			br.do("tick a row", chromedp.WaitVisible(css(`#deliveries input.dpick`)), chromedp.Click(css(`#deliveries input.dpick`)), chromedp.WaitVisible(css(`#resend-selected`)),
				chromedp.Click(css(`#resend-selected`)), chromedp.WaitVisible(css(`#resend-dialog`)))
			if title := text("#resend-title"); title != "Re-send 1 selected" {
				t.Errorf("the selected re-send's title %q", title)
			}
			br.do("cancel", chromedp.Click(css(`#resend-cancel`)))

			// The detail: what was sent, attempts newest first, a confirmed re-run.
			br.do("a delivery", chromedp.Navigate(br.base+"/deliveries/"+ids[0]), chromedp.WaitVisible(css(`#sent-headers`)))
			if h := text("#sent-headers"); !strings.Contains(h, "webhook-id") || !strings.Contains(h, "evt_i1") || !strings.Contains(h, "webhook-signature") {
				t.Errorf("the headers sent: %q", h)
			}
			if body := text("#sent-body"); !strings.Contains(body, `"id": "evt_i1"`) {
				t.Errorf("the body sent: %.80q", body)
			}
			if at := br.list("attempts", `Array.from(document.querySelectorAll("#attempts tbody tr td:nth-child(2)")).map(e => e.innerText)`); strings.Join(at, ",") != "503,500" {
				t.Errorf("attempts %v, want newest (503) first", at)
			}
			fits("/deliveries/" + ids[0])
			br.shot("delivery-detail-" + size.name + ".png")
			br.do("re-run asks first", chromedp.Click(css(`#rerun-open`)), chromedp.WaitVisible(css(`#rerun-dialog`)))
			if what := text("#rerun-what"); !strings.Contains(what, "sent again now") {
				t.Errorf("the confirmation says %q", what)
			}
			br.shot("delivery-rerun-confirm-" + size.name + ".png")
			br.do("confirm", chromedp.Click(css(`#rerun-go`)), waitURL("rerun=run"), chromedp.WaitVisible(css(`#rerun-done`)))
			if st := text("#state"); !strings.EqualFold(st, "pending") {
				t.Errorf("after the re-run the state is %q", st)
			}

			// The execution links to its deliveries, and back.
			br.do("its execution", chromedp.Click(css(`#execution-link`)), waitURL("/executions/evt_i1"), chromedp.WaitVisible(css(`#deliveries a`)))
			br.do("its deliveries", chromedp.Click(css(`#event-deliveries`)), waitURL("event=evt_i1"), chromedp.WaitVisible(css(`#deliveries`)))
			if rows := br.rows(); len(rows) != 1 || rows[0] != ids[0] {
				t.Errorf("the event's deliveries: %v", rows)
			}
		})
	}
}

// screens are the two screens: a laptop's and a phone's.
var screens = []struct {
	name string
	w, h int
}{{"desktop", 1440, 900}, {"phone", 390, 844}}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
