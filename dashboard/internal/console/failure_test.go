package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestFailureTold: a failing execution's "What it did" is its last
// failure as data; an archived one says no retry is left and what to do,
// one in retry when the next attempt comes.
func TestFailureTold(t *testing.T) {
	b := setup(t, seeds)
	addAttempts(t, b, "evt_01", 0, 2)
	addAttempts(t, b, "evt_02", 0, 1)
	a := decode[detail](t, b.op(t, "GET", "/api/executions/evt_01"), 200)
	if f := a.Failure; f == nil || !strings.Contains(f.Next, "no retries left") || !strings.Contains(f.Next, "Run now") || f.Why != "smtp: 421 try later" ||
		!strings.Contains(f.To, "customer cus_X") || f.What != "the invoice.payment_failed handler" || f.NextAt != nil {
		t.Errorf("archived: %+v", a.Failure)
	}
	r := decode[detail](t, b.op(t, "GET", "/api/executions/evt_02"), 200)
	if f := r.Failure; f == nil || f.NextAt == nil || !strings.HasPrefix(f.Next, "retry ") {
		t.Errorf("in retry: %+v", r.Failure)
	}
	if c := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200); c.Failure != nil {
		t.Errorf("completed: %+v", c.Failure)
	}
}

// TestBrowserFailureTold shows the failure as data on a laptop and a
// phone (issue 27, item 3): for whom, why, and that no retry is left,
// with the next step, or when the next attempt comes.
func TestBrowserFailureTold(t *testing.T) {
	for _, size := range screens {
		t.Run(size.name, func(t *testing.T) {
			b := setup(t, seeds)
			addAttempts(t, b, "evt_01", 0, 2)
			addAttempts(t, b, "evt_02", 0, 1)
			br, text := onScreen(t, b, size.w, size.h)
			br.signIn("/executions/evt_01", opUser, opPass)
			br.do("archived", chromedp.WaitVisible(css(`#failure`)))
			f := text("#failure")
			for _, want := range []string{"What failed", "invoice.payment_failed handler", "customer cus_X", "smtp: 421 try later", "no retries left", "Run now"} {
				if !strings.Contains(f, want) {
					t.Errorf("the archived execution's failure %q lacks %q", f, want)
				}
			}
			w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if err != nil || w[0] > w[1] {
				t.Errorf("the page is %v px wide (%v)", w, err)
			}
			br.shot("failure-archived-" + size.name + ".png")
			br.do("in retry", chromedp.Navigate(br.base+"/executions/evt_02"), chromedp.WaitVisible(css(`#failure`)))
			if next := text("#failure-next"); !strings.Contains(next, ", retry ") || !strings.Contains(next, "UTC") {
				t.Errorf("the next attempt says %q", next)
			}
			br.shot("failure-retry-" + size.name + ".png")
		})
	}
}
