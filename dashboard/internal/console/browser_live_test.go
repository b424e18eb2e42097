package console

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
)

// TestBrowserLiveAndPrecise: the UTC toggle shows every time as a UTC
// date, and stays on across pages; auto-refresh brings a new execution
// into the list without a reload and highlights it.
func TestBrowserLiveAndPrecise(t *testing.T) {
	b := setup(t, seeds[:4])
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/", opUser, opPass)

	br.do("UTC on", chromedp.WaitVisible(css(`#utc`)), chromedp.Click(css(`#utc`)))
	utc := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`)
	times := br.list("times", `Array.from(document.querySelectorAll("table.list time")).map(e => e.textContent)`)
	if len(times) == 0 {
		t.Fatal("no times listed")
	}
	for _, s := range times {
		if !utc.MatchString(s) {
			t.Errorf("with UTC on, a time reads %q", s)
		}
	}
	br.do("a detail page", chromedp.Navigate(br.base+"/executions/evt_03"), chromedp.WaitVisible(css(`#attempts`)))
	if s := br.get("received", chromedp.Text(css(`dl.kv time`))); !utc.MatchString(s) {
		t.Errorf("UTC did not stay on: the detail's received time reads %q", s)
	}
	br.do("UTC off", chromedp.Click(css(`#utc`)))
	if s := br.get("received", chromedp.Text(css(`dl.kv time`))); utc.MatchString(s) {
		t.Errorf("with UTC off, a time reads %q", s)
	}

	// Auto-refresh, every 300 ms for the test.
	br.do("list", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`#autorefresh`)),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem("stripeq.refreshMs", "300")`),
		chromedp.Reload(), chromedp.WaitVisible(css(`#autorefresh`)),
		chromedp.Click(css(`#autorefresh`)))
	before := br.rows()
	body := execindextest.Body(execindextest.Exec{ID: "evt_new", Type: "invoice.paid", Customer: "cus_N"})
	b.env.Store(t, body)
	poll.Until(t, 10*time.Second, fmt.Sprintf("auto-refresh to bring evt_new (rows before: %v)", before), func() bool {
		return slices.Contains(br.list("rows", `Array.from(document.querySelectorAll("tbody tr[data-id]")).map(r => r.dataset.id)`), "evt_new")
	})
	if fresh := br.list("highlighted", `Array.from(document.querySelectorAll("tbody tr.new")).map(r => r.dataset.id)`); !slices.Equal(fresh, []string{"evt_new"}) {
		t.Errorf("highlighted rows %v, want [evt_new]", fresh)
	}
	if on := br.get("still on", chromedp.Evaluate[string](`String(document.getElementById("autorefresh").checked)`)); on != "true" {
		t.Errorf("auto-refresh is %s after a refresh", on)
	}
	// The bulk re-run refreshes with the list: it confirms the count shown.
	if got := br.get("bulk", chromedp.Text(css(`#bulk-rerun`))); got != "Re-run all 5…" {
		t.Errorf("after the refresh the bulk button says %q, want the 5 listed", got)
	}
	br.shot("live-desktop-list.png")
	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`#autorefresh`)))
	if w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)); err != nil || w[0] > w[1] {
		t.Errorf("the list with its toggles at 390x844: %v, %v", w, err)
	}
	br.shot("live-phone-list.png")
}

// TestBrowserPickAndTime: an operator picks a window with the time picker,
// ticks two rows, sees what "re-run selected" will do to each, and re-runs
// them.
func TestBrowserPickAndTime(t *testing.T) {
	b := setup(t, seeds[:4])
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/", opUser, opPass)

	// The window from evt_02's minute on: evt_01, an hour older, is out.
	from := seeds[1].ReceivedAt.UTC().Format("2006-01-02T15:04")
	br.do("pick a window", chromedp.WaitVisible(css(`input[name=from]`)),
		chromedp.SetValue(css(`input[name=from]`), from),
		chromedp.Submit(css(`#filters`)), waitURL("from="))
	if got := br.rows(); !slices.Equal(got, []string{"evt_04", "evt_03", "evt_02"}) {
		t.Errorf("from %s: %v", from, got)
	}
	br.do("clear", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`table.list`)))

	if shown := br.get("button", chromedp.Evaluate[string](`String(getComputedStyle(document.getElementById("rerun-selected")).display !== "none")`)); shown != "false" {
		t.Error("re-run selected shows with nothing ticked")
	}
	br.do("tick two", chromedp.Click(css(`tr[data-id=evt_01] input.pick`)), chromedp.Click(css(`tr[data-id=evt_03] input.pick`)))
	if got := br.get("button", chromedp.Text(css(`#rerun-selected`))); got != "Re-run 2 selected…" {
		t.Errorf("the button says %q", got)
	}
	br.do("re-run selected", chromedp.Click(css(`#rerun-selected`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	d := br.dialog()
	preview := d.Title + "\n" + strings.Join(d.Rows, "\n")
	for _, want := range []string{"Re-run 2 selected executions?", "evt_01 | invoice.payment_failed | archived | runs now", "evt_03 | invoice.payment_failed | completed | copied as a new execution"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the preview lacks %q:\n%s", want, preview)
		}
	}
	br.do("confirm", br.confirm("INC-11", ""), chromedp.WaitVisible(css(`#toast`)))
	if toast := br.get("toast", chromedp.Text(css(`#toast`))); !strings.HasPrefix(toast, "Re-ran 2 (1 run now, 1 copied)") {
		t.Errorf("toast %q", toast)
	}
	if info, err := b.env.Inspector.GetTaskInfo("stripe", "evt_03:rerun:1"); err != nil {
		t.Errorf("evt_03 was not copied: %v", err)
	} else if info.Headers["rerunOf"] != "evt_03" {
		t.Errorf("copy headers %v", info.Headers)
	}
	br.shot("pick-desktop-list.png")
}
