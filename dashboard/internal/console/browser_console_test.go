package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
)

// TestBrowserConsoleFixes drives the Console through what an operator
// found broken, each step a check that fails on the bug: bulk re-run from
// a filtered view, a filter after Back, an invalid or unknown filter, the
// page's width on a laptop and a phone, requests that leave the host, and
// a page's own assets refused.
func TestBrowserConsoleFixes(t *testing.T) {
	b := setup(t, seeds)
	br := newBrowser(t, b.h, 1280, 800)
	br.signIn("/?type=invoice.payment_failed", opUser, opPass)

	// Bulk re-run from a filtered view re-runs what the filter shows.
	br.do("open the failed invoices",
		chromedp.Navigate(br.base+"/?state=failed&type=invoice.*"),
		waitURL("state=failed"),
		chromedp.WaitVisible(css(`#bulk-rerun`)),
	)
	if got, want := br.rows(), []string{"evt_08", "evt_02", "evt_01"}; !slices.Equal(got, want) {
		t.Fatalf("failed invoice.*: %v, want %v", got, want)
	}
	br.do("bulk re-run", chromedp.Click(css(`#bulk-rerun`)), br.confirm("INC-3", ""), chromedp.WaitVisible(css(`#toast`)))
	toast := br.get("toast", chromedp.Text(css(`#toast`)))
	if !strings.HasPrefix(toast, "Re-ran 3 ") {
		t.Errorf("bulk re-run said %q, want it to re-run the 3 listed", toast)
	}
	for _, id := range []string{"evt_01", "evt_02", "evt_08"} {
		info, err := b.env.Inspector.GetTaskInfo("stripe", id)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != asynq.TaskStatePending {
			t.Errorf("%s after the bulk re-run: %v, want pending", id, info.State)
		}
	}
	for _, id := range []string{"evt_03", "evt_04"} { // completed, outside the filter
		if _, err := b.env.Inspector.GetTaskInfo("stripe", id+":rerun:1"); err == nil {
			t.Errorf("%s was copied: the bulk re-run went beyond its filter", id)
		}
	}

	// Back, then use a filter: the controls work again.
	br.do("open the list", chromedp.Navigate(br.base+"/"), waitURL(br.base+"/"))
	br.do("filter",
		chromedp.WaitVisible(css(`select[name=livemode]`)),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const s = document.querySelector("select[name=livemode]");
			s.value = "true";
			s.dispatchEvent(new Event("change"));
		})()`),
		waitURL("livemode=true"),
	)
	// history.back(), not NavigateBack: a page restored from the
	// back/forward cache fires no load event for it to wait for.
	br.do("go back", chromedp.Evaluate[chromedp.Void](`setTimeout(() => history.back(), 0)`))
	// Each look at the page has its own deadline: one made while the page
	// is being restored can wait forever on the old one.
	poll.Until(t, 10*time.Second, "Back to return to the unfiltered list", func() bool {
		c, cancel := context.WithTimeout(br.ctx, time.Second)
		defer cancel()
		back, err := chromedp.Run(c, chromedp.Evaluate[bool](`document.readyState === "complete" && !location.search.includes("livemode") && !!document.querySelector("select[name=type]")`))
		return err == nil && back
	})
	if disabled := br.list("disabled controls", `Array.from(document.querySelectorAll("#filters :disabled")).map(e => e.name)`); len(disabled) > 0 {
		t.Errorf("after Back, the filter controls %v are disabled", disabled)
	}
	br.do("filter after Back",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const s = document.querySelector("select[name=type]");
			s.value = "invoice.paid";
			s.dispatchEvent(new Event("change"));
		})()`),
		waitURL("type=invoice.paid"),
	)
	if got := br.rows(); !slices.Equal(got, []string{"evt_04"}) {
		t.Errorf("type=invoice.paid after Back: %v, want [evt_04]; the page says %q", got, br.get("page", chromedp.Text(css(`main`))))
	}

	// An invalid filter, or an unknown parameter, lists nothing and says why.
	for _, tt := range []struct{ query, says string }{
		{"since=forever", "since"},
		{"state%3dfailed", `unknown parameter "state=failed"`},
		{"customer=cus_X&colour=red", `unknown parameter "colour"`},
	} {
		br.do("open "+tt.query, chromedp.Navigate(br.base+"/?"+tt.query), chromedp.WaitVisible(css(`p.error`)))
		if got := br.rows(); len(got) > 0 {
			t.Errorf("/?%s lists %v under its error, want no rows", tt.query, got)
		}
		if msg := br.get("error", chromedp.Text(css(`p.error`))); !strings.Contains(msg, tt.says) {
			t.Errorf("/?%s says %q, want %q", tt.query, msg, tt.says)
		}
		for _, path := range []string{"/?", "/api/executions?"} {
			if rec := b.op(t, "GET", path+tt.query); rec.Code != http.StatusBadRequest {
				t.Errorf("GET %s%s: %d, want 400", path, tt.query, rec.Code)
			}
		}
	}

	// Nothing is wider than the window, on a laptop and on a phone.
	for _, size := range []struct {
		w, h int64
		name string
	}{{1280, 800, "laptop"}, {1440, 900, "desktop"}, {390, 844, "phone"}} {
		for _, path := range []string{"/", "/executions/evt_03"} {
			br.do("open "+path, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(br.base+path), chromedp.WaitVisible(css(`main`)))
			w, err := chromedp.Run(br.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
			if err != nil {
				t.Fatal(err)
			}
			if w[0] > w[1] {
				t.Errorf("%s at %dx%d: the page is %d px wide in a %d px window", path, size.w, size.h, w[0], w[1])
			}
			if size.name != "laptop" {
				name := "console-" + size.name + "-" + map[string]string{"/": "list", "/executions/evt_03": "detail"}[path] + ".png"
				br.shot(name)
			}
		}
	}

	// asynqmon too loads nothing from outside, and shows the way back.
	br.do("open asynqmon",
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(br.base+"/monitoring/"),
		chromedp.WaitVisible(css(`#stripeq-console`)),
	)
	br.shot("console-asynqmon.png")
	br.do("back to the Console", chromedp.Click(css(`#stripeq-console`)), waitURL(br.base+"/"), chromedp.WaitVisible(css(`table.list`)))

	br.mu.Lock()
	defer br.mu.Unlock()
	for _, u := range br.requests {
		if !strings.HasPrefix(u, br.base+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("a page requested %s, outside the host", u)
		}
	}
	for u, status := range br.responses {
		if status == http.StatusUnauthorized && !strings.Contains(u, "/api/") {
			t.Errorf("a page's own asset %s answered 401", u)
		}
	}
	if len(br.requests) < 20 {
		t.Errorf("only %d requests recorded: the recorder is not working", len(br.requests))
	}
}
