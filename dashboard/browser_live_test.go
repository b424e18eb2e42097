package main

import (
	"regexp"
	"slices"
	"testing"
	"time"

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
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows := br.list("rows", `Array.from(document.querySelectorAll("tbody tr[data-id]")).map(r => r.dataset.id)`)
		if slices.Contains(rows, "evt_new") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auto-refresh did not bring evt_new in 10 s: %v (before %v)", rows, before)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
