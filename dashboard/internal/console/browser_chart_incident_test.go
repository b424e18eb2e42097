package console

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
)

// The chart in an incident (issue 27, item 5): failures still retrying,
// a default range that fits the data, and narrowing the list from the
// chart by click, drag or keyboard.

// sizes are the windows the chart's screenshots are taken at.
var sizes = []struct {
	w, h int64
	name string
}{{1440, 900, "desktop"}, {390, 844, "phone"}}

// chartState is what the tests read of the chart shown (the drawing that
// fits the window).
type chartState struct {
	Title, Range                string
	Bars, Dots, RetryDots, Hits int
	Legend                      []string
	PageWidth, Window           int
}

const readChart = `(() => {
	const svg = Array.from(document.querySelectorAll("#chart svg.wide, #chart svg.narrow")).find(s => s.getClientRects().length > 0);
	if (!svg) return {title: "no drawing shown"};
	return {
		title: svg.querySelector("title").textContent,
		range: (document.querySelector("#chart-range") || {}).textContent || "",
		bars: svg.querySelectorAll("rect.bar").length,
		dots: svg.querySelectorAll("circle.failed-dot").length,
		retryDots: svg.querySelectorAll("circle.retrying-dot").length,
		hits: Array.from(document.querySelectorAll("#chart a.hit")).filter(a => a.getClientRects().length > 0).length,
		legend: Array.from(document.querySelectorAll("#chart .legend li")).map(li => li.textContent.trim().replace(/\s+/g, " ")),
		pageWidth: document.documentElement.scrollWidth,
		window: window.innerWidth,
	};
})()`

func (b *browser) chart() chartState {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[chartState](readChart))
	if err != nil {
		b.t.Fatal(err)
	}
	return got
}

// TestBrowserChartRetrying: an execution whose last attempt failed and
// that waits for its next retry shows on the chart as its own mark, with
// its own legend entry, apart from the failures kept for good.
func TestBrowserChartRetrying(t *testing.T) {
	b := setup(t, seeds) // evt_02 waits for a retry; evt_01 and evt_08 are archived
	keepFailures(t, b.db.Client, "stripe", []time.Time{t0.Add(20 * time.Minute), t0.Add(50 * time.Minute)})
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/?since=24h", viewerUser, viewerPass)
	for _, size := range sizes {
		br.do("open the list at "+size.name, chromedp.EmulateViewport(size.w, size.h),
			chromedp.Navigate(br.base+"/?since=24h"), chromedp.WaitVisible(css(`#chart`)))
		got := br.chart()
		t.Logf("%s: %+v", size.name, got)
		if got.RetryDots != 1 || got.Dots != 2 {
			t.Errorf("%s: %d retrying marks, %d failed-for-good marks; want 1, 2", size.name, got.RetryDots, got.Dots)
		}
		if !slices.Contains(got.Legend, "still retrying 1") || !slices.Contains(got.Legend, "failed for good 2") {
			t.Errorf("%s: legend %q, want \"still retrying 1\" and \"failed for good 2\"", size.name, got.Legend)
		}
		if !strings.Contains(got.Title, "still retrying") {
			t.Errorf("%s: title %q does not name what is retrying", size.name, got.Title)
		}
		if got.PageWidth > got.Window {
			t.Errorf("%s: page %d px wide in a %d px window", size.name, got.PageWidth, got.Window)
		}
		br.shot("chart-retrying-" + size.name + ".png")
	}
}

// TestBrowserChartFitsData: with no time in the URL, the chart's range
// fits the data (the last 40 minutes in small bars; data 3 days old
// rather than an empty day), says so, and the list stays of any time.
func TestBrowserChartFitsData(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name  string
		at    []time.Duration // received, before now
		step  string          // in the title: "per 2m"
		since string          // in the range's caption
	}{
		{"recent", []time.Duration{38 * time.Minute, 30 * time.Minute, 12 * time.Minute, 2 * time.Minute}, "per 2m", ""},
		{"stale", []time.Duration{72*time.Hour + 35*time.Minute, 72*time.Hour + 20*time.Minute, 72 * time.Hour}, "", now.Add(-72 * time.Hour).UTC().Format("Jan 2")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var execs []execindextest.Exec
			var ids []string
			for i, d := range tt.at {
				id := "evt_fit" + string(rune('a'+i))
				execs = append(execs, execindextest.Exec{ID: id, Type: "invoice.paid", State: "completed", ReceivedAt: now.Add(-d)})
				ids = append([]string{id}, ids...)
			}
			b := setup(t, execs)
			br := newBrowser(t, b.h, 1440, 900)
			// Sign in at a URL that /login's does not contain, so that
			// signIn waits for the sign-in's own navigation to end.
			br.signIn("/?limit=50", viewerUser, viewerPass)
			for _, size := range sizes {
				br.do("open the list at "+size.name, chromedp.EmulateViewport(size.w, size.h),
					chromedp.Navigate(br.base+"/"), chromedp.WaitVisible(css(`#chart`)))
				got := br.chart()
				t.Logf("%s: %+v", size.name, got)
				if got.Bars < len(tt.at)-1 {
					t.Errorf("%s: %d bars for %d executions", size.name, got.Bars, len(tt.at))
				}
				if tt.step != "" && !strings.Contains(got.Title, tt.step) {
					t.Errorf("%s: title %q, want bars %s", size.name, got.Title, tt.step)
				}
				if !strings.Contains(got.Range, "fitted") || !strings.Contains(got.Range, tt.since) || !strings.Contains(got.Range, "list") {
					t.Errorf("%s: range caption %q: want it to say the range is fitted (%s) and what the list shows", size.name, got.Range, tt.since)
				}
				if rows := br.rows(); !slices.Equal(rows, ids) {
					t.Errorf("%s: rows %v, want all of %v: the chart must not narrow the list", size.name, rows, ids)
				}
				if got.PageWidth > got.Window {
					t.Errorf("%s: page %d px wide in a %d px window", size.name, got.PageWidth, got.Window)
				}
				br.shot("chart-fit-" + tt.name + "-" + size.name + ".png")
			}
		})
	}
}

// hitBox is a bucket's target: its span in the URL's terms and its centre
// on the screen.
type hitBox struct {
	From, To string
	X, Y     float64
	Index    int
}

// hitAt finds the shown bucket that holds received time r.
func (b *browser) hitAt(r time.Time) hitBox {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[hitBox](`(() => {
		const r = `+jsMs(r)+`;
		const hits = Array.from(document.querySelectorAll("#chart a.hit")).filter(a => a.getClientRects().length > 0);
		for (let i = 0; i < hits.length; i++) {
			const a = hits[i], f = Date.parse(a.dataset.from), t = Date.parse(a.dataset.to);
			if (f <= r && r < t) {
				const box = a.getBoundingClientRect();
				return {from: a.dataset.from, to: a.dataset.to, x: box.left + box.width / 2, y: box.top + box.height / 2, index: i};
			}
		}
		return {index: -1};
	})()`))
	if err != nil || got.Index < 0 {
		b.t.Fatalf("no bucket shown holds %v: %v", r, err)
	}
	return got
}

func jsMs(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// listed is the seeds received in [from, to].
func listed(t *testing.T, from, to string) []string {
	t.Helper()
	f, err1 := time.Parse(time.RFC3339, from)
	e, err2 := time.Parse(time.RFC3339, to)
	if err1 != nil || err2 != nil {
		t.Fatalf("from %q, to %q: %v %v", from, to, err1, err2)
	}
	var ids []string
	for _, s := range seeds {
		if !s.ReceivedAt.Before(f) && !s.ReceivedAt.After(e) {
			ids = append([]string{s.ID}, ids...)
		}
	}
	return ids
}

// checkNarrowed checks that the page's URL is the list of [from, to], the
// other filters kept, no since, and its rows are the seeds in it.
func (b *browser) checkNarrowed(what, from, to string) {
	b.t.Helper()
	loc := b.get("location", chromedp.Evaluate[string](`location.href`))
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	q := u.Query()
	if q.Get("from") != from || q.Get("to") != to || q.Has("since") || q.Get("livemode") != "true" {
		b.t.Errorf("%s: URL %s, want from=%s to=%s, livemode kept and no since", what, loc, from, to)
	}
	var want []string
	for _, id := range listed(b.t, from, to) {
		for _, s := range seeds {
			if s.ID == id && s.Livemode {
				want = append(want, id)
			}
		}
	}
	if rows := b.rows(); !slices.Equal(rows, want) {
		b.t.Errorf("%s: rows %v, want %v", what, rows, want)
	}
}

// TestBrowserChartNarrows: clicking a bucket, dragging across buckets
// (with a selection shown while dragging) or pressing Enter on a bucket
// reached with the arrow keys narrows the list to that time, in the URL.
func TestBrowserChartNarrows(t *testing.T) {
	b := setup(t, seeds)
	br := newBrowser(t, b.h, 1440, 900)
	const start = "/?since=24h&livemode=true"
	br.signIn(start, viewerUser, viewerPass)
	for _, size := range sizes {
		open := func() {
			br.do("open the list at "+size.name, chromedp.EmulateViewport(size.w, size.h),
				chromedp.Navigate(br.base+start), chromedp.WaitVisible(css(`#chart`)))
		}

		// Click the bucket of evt_08.
		open()
		h := br.hitAt(seeds[7].ReceivedAt)
		br.do("click a bucket", chromedp.MouseClickXY(h.X, h.Y), waitURL("from="))
		br.checkNarrowed(size.name+": click", h.From, h.To)

		// Drag from evt_01's bucket to the next one.
		open()
		first := br.hitAt(seeds[0].ReceivedAt)
		next := first
		next.Index++
		span, err := chromedp.Run(br.ctx, chromedp.Evaluate[hitBox](`(() => {
			const hits = Array.from(document.querySelectorAll("#chart a.hit")).filter(a => a.getClientRects().length > 0);
			const a = hits[`+strconv.Itoa(next.Index)+`], box = a.getBoundingClientRect();
			return {from: a.dataset.from, to: a.dataset.to, x: box.left + box.width / 2, y: box.top + box.height / 2, index: 0};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.MouseEvent(chromedp.MousePressed, first.X, first.Y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		}
		for i := 1; i <= 5; i++ {
			x := first.X + (span.X-first.X)*float64(i)/5
			steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x, first.Y, chromedp.ButtonLeft, held))
		}
		br.do("drag", steps...)
		sel, err := chromedp.Run(br.ctx, chromedp.Evaluate[struct{ W, H float64 }](`(() => {
			const s = Array.from(document.querySelectorAll("#chart .sel")).find(e => e.getClientRects().length > 0);
			if (!s) return {w: 0, h: 0};
			const b = s.getBoundingClientRect();
			return {w: b.width, h: b.height};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if sel.W < span.X-first.X || sel.H < 20 {
			t.Errorf("%s: the selection while dragging is %.0f×%.0f px, want over %.0f px wide", size.name, sel.W, sel.H, span.X-first.X)
		}
		br.shot("chart-drag-" + size.name + ".png")
		br.do("release", chromedp.MouseEvent(chromedp.MouseReleased, span.X, first.Y, chromedp.ButtonLeft, chromedp.ClickCount(1)), waitURL("from="))
		br.checkNarrowed(size.name+": drag", first.From, span.To)

		// The keyboard: Tab into the chart's buckets, arrows, Enter.
		open()
		h = br.hitAt(seeds[7].ReceivedAt)
		keys := ""
		for range h.Index {
			keys += kb.ArrowRight
		}
		br.do("focus the chart's tab stop", chromedp.Evaluate[chromedp.Void](`Array.from(document.querySelectorAll('#chart a.hit[tabindex="0"]')).find(a => a.getClientRects().length > 0).focus()`))
		focused := br.list("focused", `[String(Array.from(document.querySelectorAll("#chart a.hit")).filter(a => a.getClientRects().length > 0).indexOf(document.activeElement))]`)
		if focused[0] != "0" {
			t.Fatalf("%s: the chart's tab stop is bucket %s, want the first shown", size.name, focused[0])
		}
		br.do("arrows", chromedp.KeyEvent(keys))
		label := br.list("label", `[document.activeElement.getAttribute("aria-label") || ""]`)
		if !strings.Contains(label[0], "received") {
			t.Errorf("%s: focused bucket labelled %q", size.name, label[0])
		}
		br.do("enter", chromedp.KeyEvent(kb.Enter), waitURL("from="))
		br.checkNarrowed(size.name+": keyboard", h.From, h.To)
		br.shot("chart-narrowed-" + size.name + ".png")
	}
}

// held is a mouse move with the left button held down.
func held(p *input.DispatchMouseEventParams) { p.Buttons = 1 }
