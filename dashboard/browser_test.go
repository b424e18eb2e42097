package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestBrowser drives the Console in headless Chromium as an operator
// would: sign in, filter, open an execution, re-run it.
func TestBrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium on this CI runner; install it (apt-get install -y chromium) or set CHROMIUM")
		}
		t.Skip("no chromium found (apt-get install -y chromium, or set CHROMIUM); under CI=true this test fails instead")
	}
	b := setup(t, seeds)
	ts := httptest.NewServer(b.h)
	t.Cleanup(ts.Close)
	dir := artifactDir(t)

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
		chromedp.WindowSize(1500, 900),
	)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(cancel)
	// Accept the confirmation dialogs of the action buttons.
	err := chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		err := chromedp.Do(ctx, steps...)
		// A node found just before the page replaced it (a load still
		// settling) is not a failure of the page: try the steps again.
		for try := 0; try < 2 && err != nil && strings.Contains(err.Error(), "Could not find node"); try++ {
			time.Sleep(100 * time.Millisecond)
			err = chromedp.Do(ctx, steps...)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	list := func(what, expr string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	// waitURL waits until the page is loaded and its URL contains s. It
	// survives navigations, unlike Poll.
	waitURL := func(s string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			for {
				loc, err := chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`)(ctx, tg)
				if err == nil && strings.Contains(loc, s) {
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
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	rows := func() []string {
		t.Helper()
		// A navigation commits before the new page is parsed: wait until
		// it is complete, or the rows may not be there yet.
		for range 100 {
			if state := list("read state", `[document.readyState]`); len(state) == 1 && state[0] == "complete" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return list("read rows", `Array.from(document.querySelectorAll("tbody tr[data-id]")).map(r => r.dataset.id)`)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

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
	if history := list("history", `Array.from(document.querySelectorAll("#history a")).map(a => a.textContent)`); !slices.Equal(history, []string{"evt_03:rerun:1"}) {
		t.Errorf("original's re-run history: %v", history)
	}
	shot("console-detail.png")
}
