package console

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/poll"
)

// addAttempts stores n failed attempts of id, the first with retries
// retries before it, as the worker records them.
func addAttempts(t *testing.T, b *bundle, id string, retry, n int) {
	t.Helper()
	store := failures.New(b.db.Client, 0)
	for i := range n {
		at := time.Now().Add(time.Duration(i-n) * time.Minute)
		if err := store.AddAttempt(t.Context(), "stripe", id, failures.Attempt{At: at, Start: at.Add(-time.Second), MS: 1000, Retry: retry + i, Worker: "w:1", Error: "smtp: 421 try later"}); err != nil {
			t.Fatal(err)
		}
	}
}

// numbers are the attempt numbers of an execution's detail.
func numbers(d detail) []int {
	var out []int
	for _, a := range d.Attempts {
		out = append(out, a.N)
	}
	return out
}

// TestOperatorRuns: "Run now", a bulk re-run and "re-run selected" are in
// the execution's history with who and why, the copy's history too; and
// attempt numbers go on across runs: after "Run now" of an execution
// whose retries ran out, and in a copy after its original's.
func TestOperatorRuns(t *testing.T) {
	b := setup(t, seeds)
	addAttempts(t, b, "evt_01", 6, 2)
	if rec := b.op(t, "POST", "/api/executions/evt_01/rerun?reason=INC-9+smtp+back"); rec.Code != 200 {
		t.Fatalf("run now: %d %s", rec.Code, rec.Body)
	}
	addAttempts(t, b, "evt_01", 7, 1) // the run's attempt: asynq kept its retry count
	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_01"), 200)
	if len(d.Runs) != 1 || d.Runs[0].User != opUser || d.Runs[0].Reason != "INC-9 smtp back" || d.Runs[0].Action != "run" || d.Runs[0].Via != "rerun" || d.Runs[0].ID != "evt_01" {
		t.Errorf("runs %+v", d.Runs)
	}
	if got := numbers(d); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("attempt numbers %v, want 1 2 3", got)
	}

	addAttempts(t, b, "evt_03", 0, 2)
	if rec := b.op(t, "POST", "/api/executions/rerun?id=evt_03&expect=1&reason=INC-9"); rec.Code != 200 {
		t.Fatalf("bulk re-run: %d %s", rec.Code, rec.Body)
	}
	addAttempts(t, b, "evt_03:rerun:1", 0, 1)
	c := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03:rerun:1"), 200)
	if len(c.Runs) != 1 || c.Runs[0].Via != "bulk_rerun" || c.Runs[0].Action != "copy" || c.Runs[0].Of != "evt_03" || c.Runs[0].ID != "evt_03:rerun:1" || c.Runs[0].Reason != "INC-9" {
		t.Errorf("the copy's runs %+v", c.Runs)
	}
	if got := numbers(c); !slices.Equal(got, []int{3}) {
		t.Errorf("the copy's attempt numbers %v, want 3 (after the original's 2)", got)
	}
	o := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200)
	if len(o.Runs) != 1 || o.Runs[0].ID != "evt_03:rerun:1" {
		t.Errorf("the original's runs %+v", o.Runs)
	}

	rec := b.do(t, req{method: "POST", path: "/api/executions/rerun-selected", user: opUser, pass: opPass,
		headers: map[string]string{"Content-Type": "application/json"}, body: `{"ids": ["evt_02"], "reason": "INC-9 again"}`})
	if rec.Code != 200 {
		t.Fatalf("re-run selected: %d %s", rec.Code, rec.Body)
	}
	s := decode[detail](t, b.op(t, "GET", "/api/executions/evt_02"), 200)
	if len(s.Runs) != 1 || s.Runs[0].Via != "rerun_selected" || s.Runs[0].Reason != "INC-9 again" {
		t.Errorf("runs after re-run selected %+v", s.Runs)
	}
	page := b.op(t, "GET", "/executions/evt_02").Body.String()
	if !strings.Contains(page, `id="runs"`) || !strings.Contains(page, "re-run selected") || strings.Contains(page, "Never re-run") {
		t.Error("the page's history does not show the run")
	}
}

// TestBrowserOperatorRuns: an operator runs a failed execution now with
// a reason, and ticks a completed one for "Re-run selected"; each page's
// "Re-run history" then says who did what and why, and the attempts are
// numbered on, on a laptop and on a phone (issue 27, item 4).
func TestBrowserOperatorRuns(t *testing.T) {
	for _, size := range screens {
		t.Run(size.name, func(t *testing.T) {
			b := setup(t, seeds)
			addAttempts(t, b, "evt_01", 6, 2)
			addAttempts(t, b, "evt_03", 0, 2)
			br := newBrowser(t, b.h, size.w, size.h)
			br.do("viewport", chromedp.EmulateViewport(int64(size.w), int64(size.h)))
			text := func(sel string) string {
				return br.get(sel, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {}).innerText || ""`))
			}
			br.signIn("/executions/evt_01", opUser, opPass)
			br.do("run now", chromedp.WaitVisible(css(`#rerun`)), chromedp.Click(css(`#rerun`)), br.confirm("INC-9 smtp back", ""), chromedp.WaitVisible(css(`#runs`)))
			if h := text("#runs"); !strings.Contains(h, opUser+" ran evt_01 again now") || !strings.Contains(h, "INC-9 smtp back") {
				t.Errorf("the history says %q", h)
			}
			br.shot("runs-run-now-" + size.name + ".png")

			br.do("the list", chromedp.Navigate(br.base+"/?id=evt_03"), chromedp.WaitVisible(css(`input.pick`)))
			br.do("re-run selected", chromedp.Click(css(`input.pick`)), chromedp.WaitVisible(css(`#rerun-selected`)), chromedp.Click(css(`#rerun-selected`)),
				br.confirm("INC-9 resend receipts", ""))
			poll.Until(t, 10*time.Second, "the re-run's result", func() bool { return strings.HasPrefix(text("#toast"), "Re-ran 1") })
			addAttempts(t, b, "evt_03:rerun:1", 0, 1)
			br.do("the copy", chromedp.Navigate(br.base+"/executions/evt_03:rerun:1"), chromedp.WaitVisible(css(`#runs`)))
			if h := text("#runs"); !strings.Contains(h, "copied evt_03 as evt_03:rerun:1") || !strings.Contains(h, "re-run selected") || !strings.Contains(h, "INC-9 resend receipts") {
				t.Errorf("the copy's history says %q", h)
			}
			nums := br.list("attempt numbers", `Array.from(document.querySelectorAll("#attempts table tr td:first-child")).map(e => e.innerText)`)
			if fmt.Sprint(nums) != "[3]" {
				t.Errorf("the copy's attempts are numbered %v, want [3] after the original's two", nums)
			}
			w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if err != nil || w[0] > w[1] {
				t.Errorf("the page is %v px wide (%v)", w, err)
			}
			br.shot("runs-copy-" + size.name + ".png")
		})
	}
}
