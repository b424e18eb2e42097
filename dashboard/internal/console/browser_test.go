package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: $CHROMIUM, then the usual
// names on PATH. Debian: apt-get install -y chromium.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where screenshots go: $STRIPEQ_ARTIFACTS when set (CI
// uploads it), else the test's artifact directory (kept with
// go test -artifacts, under -outputdir).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("STRIPEQ_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// browser is headless Chromium on a test server of the dashboard, with
// the steps the browser tests share. It records every request the pages
// make and every answer they get, to check that none leaves the host and
// none of a page's own assets is refused.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // the test server's URL
	dir  string // where screenshots go

	mu        sync.Mutex
	requests  []string       // every URL requested
	responses map[string]int // URL → last status
}

// newBrowser starts Chromium with a window of w×h over a test server of h.
// It skips the test when no Chromium is found, unless CI is set.
func newBrowser(t *testing.T, handler http.Handler, w, h int) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped under -short (go tool task test:short); go tool task test runs it")
	}
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium on this CI runner; install it (apt-get install -y chromium) or set CHROMIUM")
		}
		t.Skip("no chromium found (apt-get install -y chromium, or set CHROMIUM); under CI=true this test fails instead")
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(w, h),
	)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, base: ts.URL, dir: artifactDir(t), responses: map[string]int{}}
	// Accept the browser's own dialogs (the recoveries page's
	// window.confirm; the Console's actions confirm in the page, see
	// b.confirm); record the traffic.
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
		case *network.EventResponseReceived:
			b.mu.Lock()
			b.responses[ev.Response.URL] = int(ev.Response.Status)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	err := chromedp.Do(b.ctx, steps...)
	// A node found just before the page replaced it (a load still
	// settling) is not a failure of the page: try the steps again.
	for try := 0; try < 2 && err != nil && strings.Contains(err.Error(), "Could not find node"); try++ {
		time.Sleep(100 * time.Millisecond)
		err = chromedp.Do(b.ctx, steps...)
	}
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) get(what string, a chromedp.Action[string]) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *browser) list(what, expr string) []string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitURL waits until the page is loaded and its URL contains s. It
// survives navigations, unlike Poll.
func waitURL(s string) chromedp.Action[chromedp.Void] {
	return waitLocation(func(loc string) bool { return strings.Contains(loc, s) })
}

// waitLocation waits until the page is loaded and ok accepts its URL.
func waitLocation(ok func(loc string) bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			loc, err := chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`)(ctx, tg)
			if err == nil && loc != "" && ok(loc) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// rows returns the IDs of the list's rows, once the page is loaded.
func (b *browser) rows() []string {
	b.t.Helper()
	// A navigation commits before the new page is parsed: wait until it
	// is complete, or the rows may not be there yet.
	poll.Until(b.t, 5*time.Second, "the page to load", func() bool {
		state := b.list("read state", `[document.readyState]`)
		return len(state) == 1 && state[0] == "complete"
	})
	return b.list("read rows", `Array.from(document.querySelectorAll("tbody tr[data-id]")).map(r => r.dataset.id)`)
}

// shot saves a screenshot of the whole page as name.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// signIn signs in with the login form, starting at path.
func (b *browser) signIn(path, user, pass string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(b.base+path),
		waitURL("/login"),
		chromedp.WaitVisible(css(`input[name=user]`)),
		chromedp.SendKeys(css(`input[name=user]`), user),
		chromedp.SendKeys(css(`input[name=password]`), pass),
		chromedp.Click(css(`.login button[type=submit]`)),
		// Off the login page, then at path: a path such as "/" is in
		// the login page's URL too.
		waitLocation(func(loc string) bool {
			u, err := url.Parse(loc)
			return err == nil && u.Path != "/login" && strings.Contains(loc, path)
		}),
	)
}

// TestBrowser drives the Console in headless Chromium as an operator
// would: sign in, filter, open an execution, re-run it.
func TestBrowser(t *testing.T) {
	b := setup(t, seeds)
	br := newBrowser(t, b.h, 1500, 900)
	do, get, list, rows, shot := br.do, br.get, br.list, br.rows, br.shot
	ts := struct{ URL string }{br.base}

	// Sign in: the Console sends a stranger to the login form first.
	do("sign in",
		chromedp.Navigate(ts.URL+"/?type=invoice.payment_failed"),
		waitURL("/login"),
		chromedp.WaitVisible(css(`input[name=user]`)),
		chromedp.SendKeys(css(`input[name=user]`), opUser),
		chromedp.SendKeys(css(`input[name=password]`), opPass),
		chromedp.Click(css(`.login button[type=submit]`)),
		waitURL("/?type=invoice.payment_failed"),
		chromedp.WaitVisible(css(`table.list`)),
	)
	if got, want := rows(), []string{"evt_08", "evt_03", "evt_02", "evt_01"}; !slices.Equal(got, want) {
		t.Errorf("after sign-in, filtered by type: %v, want %v", got, want)
	}

	// Filter by livemode with the menu, which applies at once.
	do("filter by livemode",
		chromedp.WaitVisible(css(`select[name=livemode]`)),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const s = document.querySelector("select[name=livemode]");
			s.value = "true";
			s.dispatchEvent(new Event("change"));
		})()`),
		waitURL("livemode=true"),
		chromedp.WaitVisible(css(`table.list`)),
	)
	if got, want := rows(), []string{"evt_08", "evt_02", "evt_01"}; !slices.Equal(got, want) {
		t.Errorf("live invoice.payment_failed: %v, want %v", got, want)
	}
	// A type prefix, from the whole list, with the Apply button.
	do("filter by type",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(css(`table.list`)),
		chromedp.SetValue(css(`select[name=type]`), "invoice.*"),
		chromedp.Click(css(`#filters button[type=submit]`)),
		waitURL("type=invoice."),
		chromedp.WaitVisible(css(`table.list`)),
	)
	if got, want := rows(), []string{"evt_08", "evt_04", "evt_03", "evt_02", "evt_01"}; !slices.Equal(got, want) {
		t.Errorf("invoice.*: %v, want %v", got, want)
	}
	do("failed tab", chromedp.Click(css(`a.tab[data-state=failed]`)), waitURL("state=failed"), chromedp.WaitVisible(css(`table.list`)))
	if got, want := rows(), []string{"evt_08", "evt_02", "evt_01"}; !slices.Equal(got, want) {
		t.Errorf("failed invoice.*: %v, want %v", got, want)
	}
	shot("console-list.png")

	// Open a completed execution and re-run it.
	do("open detail",
		chromedp.Navigate(ts.URL+"/?livemode=false"),
		chromedp.WaitVisible(css(`table.list`)),
		chromedp.Click(css(`a[href="/executions/evt_03"]`)),
		waitURL("/executions/evt_03"),
		chromedp.WaitVisible(css(`pre.json`)),
	)
	head := get("heading", chromedp.Text(css(`h1`)))
	payload := get("payload", chromedp.Text(css(`pre.json`)))
	if !strings.Contains(head, "invoice.payment_failed") || !strings.Contains(strings.ToLower(head), "completed") || !strings.Contains(payload, `"id": "evt_03"`) {
		t.Errorf("detail view: head %q, payload starts %.80q", head, payload)
	}
	do("re-run",
		chromedp.Click(css(`#rerun`)),
		br.confirm("", ""),
		waitURL("/executions/evt_03:rerun:1"),
		chromedp.WaitVisible(css(`#original-link`)),
	)
	if original := get("link to the original", chromedp.Text(css(`#original-link`))); original != "evt_03" {
		t.Errorf("the copy links to %q, want evt_03", original)
	}
	shot("console-rerun.png")
	do("original's history",
		chromedp.Click(css(`#original-link`)),
		waitURL("/executions/evt_03"),
		chromedp.WaitVisible(css(`#history`)),
	)
	if history := list("history", `Array.from(document.querySelectorAll("#history #copies a")).map(a => a.textContent)`); !slices.Equal(history, []string{"evt_03:rerun:1"}) {
		t.Errorf("original's re-run copies: %v", history)
	}
	if runs := list("runs", `Array.from(document.querySelectorAll("#history #runs a")).map(a => a.textContent)`); !slices.Equal(runs, []string{"evt_03:rerun:1"}) {
		t.Errorf("original's operator runs: %v", runs)
	}
	shot("console-detail.png")
}
