package console

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/poll"
)

// TestBrowserSmallButFelt: auto-refresh keeps keyboard focus; a kept
// failure whose asynq task is gone is marked kept and has no asynqmon
// link; a wrong password keeps the user name; asynqmon's assets come
// compressed and, on the second visit, from the browser's cache.
func TestBrowserSmallButFelt(t *testing.T) {
	b := setup(t, seeds[:4])
	// evt_01 (archived) trimmed from asynq's archive: the failure store keeps it.
	b.env.Keep(t, "evt_01", true)
	br := newBrowser(t, b.h, 1440, 900)

	// A wrong password keeps the user name, and the password field has
	// the focus; on a phone, then on a desktop.
	for _, size := range []struct {
		w, h int64
		name string
	}{{390, 844, "phone"}, {1440, 900, "desktop"}} {
		br.do("a wrong password", chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(br.base+"/"), waitURL("/login"), chromedp.WaitVisible(css(`input[name=user]`)),
			chromedp.SendKeys(css(`input[name=user]`), opUser), chromedp.SendKeys(css(`input[name=password]`), "wrong"),
			chromedp.Click(css(`.login button[type=submit]`)), chromedp.WaitVisible(css(`.login p.error`)))
		// Autofocus applies once the page has rendered: wait for it a little.
		var login []string
		poll.Wait(2*time.Second, "the password focused", func() error {
			login = br.list("login form", `[document.querySelector("input[name=user]").value, document.activeElement.name || document.activeElement.tagName]`)
			if !slices.Equal(login, []string{opUser, "password"}) {
				return errors.New("not yet")
			}
			return nil
		})
		if !slices.Equal(login, []string{opUser, "password"}) {
			t.Errorf("%s, after a wrong password: user %q, focus on %q; want %q and the password", size.name, login[0], login[1], opUser)
		}
		br.shot("wrong-password-" + size.name + ".png")
	}
	br.signIn("/", opUser, opPass)
	br.do("the list", chromedp.WaitVisible(css(`table.list`)))

	// The kept failure: marked, no dead asynqmon link, in the list and on its page.
	row := br.list("evt_01's row", `(() => { const r = document.querySelector("tr[data-id=evt_01]"); return r ? [r.innerText, String(!!r.querySelector("a[href^='/monitoring/']"))] : ["", ""]; })()`)
	if !strings.Contains(row[0], "kept") || row[1] != "false" {
		t.Errorf("the kept failure's row %q: asynqmon link %s; want the kept mark and no link", row[0], row[1])
	}
	if row := br.list("evt_02's row", `[String(!!document.querySelector("tr[data-id=evt_02] a[href^='/monitoring/']"))]`); row[0] != "true" {
		t.Error("evt_02, which asynq holds, lost its asynqmon link")
	}
	br.do("its page", chromedp.Navigate(br.base+"/executions/evt_01"), chromedp.WaitVisible(css(`#attempts`)))
	page := br.list("detail", `[document.querySelector("h1").innerText, String(!!document.querySelector("main a[href^='/monitoring/']"))]`)
	if !strings.Contains(page[0], "kept") || page[1] != "false" {
		t.Errorf("the kept failure's page: heading %q, asynqmon link %s", page[0], page[1])
	}
	br.shot("kept-desktop.png")

	// Auto-refresh keeps the focus where the keyboard left it.
	br.do("list", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`#autorefresh`)),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem("stripeq.refreshMs", "300")`),
		chromedp.Reload(), chromedp.WaitVisible(css(`#autorefresh`)), chromedp.Click(css(`#autorefresh`)),
		chromedp.Focus(css(`tr[data-id=evt_03] a[href="/executions/evt_03"]`)))
	b.env.Store(t, execindextest.Body(execindextest.Exec{ID: "evt_new", Type: "invoice.paid", Customer: "cus_N"}))
	poll.Until(t, 10*time.Second, "auto-refresh brings evt_new", func() bool { return slices.Contains(br.rows(), "evt_new") })
	if focus := br.list("focus", `[document.activeElement.getAttribute("href") || document.activeElement.tagName]`); focus[0] != "/executions/evt_03" {
		t.Errorf("after a refresh the focus is on %q, want the link it was on", focus[0])
	}
	br.do("tab focus", chromedp.Focus(css(`a.tab[data-state=failed]`)))
	b.env.Store(t, execindextest.Body(execindextest.Exec{ID: "evt_new2", Type: "invoice.paid", Customer: "cus_N"}))
	poll.Until(t, 10*time.Second, "auto-refresh brings evt_new2", func() bool { return slices.Contains(br.rows(), "evt_new2") })
	if focus := br.list("focus", `[document.activeElement.dataset.state || document.activeElement.tagName]`); focus[0] != "failed" {
		t.Errorf("after a refresh the focus is on %q, want the Failed tab", focus[0])
	}
	br.do("no refresh", chromedp.Click(css(`#autorefresh`)))

	// asynqmon's scripts: compressed on the first visit, from the cache on the second.
	assets := func() [][]int {
		v, err := chromedp.Run(br.ctx, chromedp.Evaluate[[][]int](`performance.getEntriesByType("resource").filter(e => e.name.includes("/monitoring/static/js/")).map(e => [e.transferSize, e.encodedBodySize, e.decodedBodySize])`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	br.do("asynqmon", chromedp.Navigate(br.base+"/monitoring/"), chromedp.WaitVisible(css(`#stripeq-console`)))
	first := assets()
	if len(first) < 2 {
		t.Fatalf("asynqmon's scripts: %v", first)
	}
	var sent, size int
	for _, a := range first {
		sent, size = sent+a[1], size+a[2]
	}
	if sent*3 > size {
		t.Errorf("asynqmon's scripts: %d bytes sent for %d: not compressed", sent, size)
	}
	br.do("asynqmon again", chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`table.list`)),
		chromedp.Navigate(br.base+"/monitoring/"), chromedp.WaitVisible(css(`#stripeq-console`)))
	for _, a := range assets() {
		if a[0] > 1024 {
			t.Errorf("the second visit downloaded an asynqmon script again: %d bytes (transfer, encoded, decoded: %v)", a[0], a)
		}
	}
	br.shot("asynqmon-desktop.png")

	// The same on a phone: the login form and the kept failure.
	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(br.base+"/executions/evt_01"), chromedp.WaitVisible(css(`#attempts`)))
	br.shot("kept-phone.png")
}
