package console

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/poll"
)

// TestBrowserChart: the list's chart is drawn, has bars for the seeded
// executions, and fits the window on a desktop and a phone.
func TestBrowserChart(t *testing.T) {
	b := setup(t, seeds)
	keepFailures(t, b.db.Client, "stripe", []time.Time{t0.Add(20 * time.Minute), t0.Add(50 * time.Minute)})
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/?since=24h", viewerUser, viewerPass)
	for _, size := range []struct {
		w, h int64
		name string
	}{{1440, 900, "desktop"}, {390, 844, "phone"}} {
		br.do("open the list at "+size.name,
			chromedp.EmulateViewport(size.w, size.h),
			chromedp.Navigate(br.base+"/?since=24h"),
			chromedp.WaitVisible(css(`#chart`)),
		)
		got, err := chromedp.Run(br.ctx, chromedp.Evaluate[struct {
			Bars, Drawn, Dots, Labels   int
			SVGWidth, PageWidth, Window int
			Title                       string
			Legend                      []string
		}](`(() => {
			const svgs = Array.from(document.querySelectorAll("#chart > svg")).filter(s => getComputedStyle(s).display !== "none");
			if (svgs.length !== 1) return {title: svgs.length + " drawings shown"};
			const svg = svgs[0];
			const bars = Array.from(svg.querySelectorAll("rect.bar"));
			return {
				bars: bars.length,
				drawn: bars.filter(r => { const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0 && getComputedStyle(r).fill !== "rgb(0, 0, 0)"; }).length,
				dots: svg.querySelectorAll("circle.failed-dot").length,
				labels: Array.from(svg.querySelectorAll("text.axis")).filter(e => getComputedStyle(e).display !== "none").length,
				svgWidth: Math.ceil(svg.getBoundingClientRect().right),
				pageWidth: document.documentElement.scrollWidth,
				window: window.innerWidth,
				title: svg.getAttribute("class") + " " + svg.getAttribute("role") + ": " + svg.querySelector("title").textContent,
				legend: Array.from(document.querySelectorAll("#chart .legend li")).map(li => li.textContent.trim().replace(/\s+/g, " ")),
			};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", size.name, got)
		// The 8 seeds lie in two or three half hours, one bar per type
		// and half hour: at least one bar per type.
		if got.Bars < 5 || got.Drawn != got.Bars {
			t.Errorf("%s: %d bars, %d drawn with a colour; want 5 or more, all drawn", size.name, got.Bars, got.Drawn)
		}
		if got.Dots != 2 {
			t.Errorf("%s: %d failure points, want 2", size.name, got.Dots)
		}
		if want := map[string]string{"desktop": "wide", "phone": "narrow"}[size.name]; !strings.HasPrefix(got.Title, want+" group: Executions received per 30m") {
			t.Errorf("%s: drawing %q, want the %s one", size.name, got.Title, want)
		}
		if got.Labels < 4 {
			t.Errorf("%s: %d axis labels shown", size.name, got.Labels)
		}
		if got.PageWidth > got.Window || got.SVGWidth > got.Window {
			t.Errorf("%s: page %d px, chart to %d px, in a %d px window", size.name, got.PageWidth, got.SVGWidth, got.Window)
		}
		if len(got.Legend) != 7 || got.Legend[0] != "invoice.payment_failed 4" || got.Legend[5] != "failed for good 2" || got.Legend[6] != "still retrying 1" {
			t.Errorf("%s: legend %q", size.name, got.Legend)
		}
		br.shot("chart-" + size.name + ".png")
	}
}

// TestBrowserChartRefreshes: auto-refresh redraws the chart with the
// list, its legend and counts included.
func TestBrowserChartRefreshes(t *testing.T) {
	b := setup(t, seeds[:4])
	br := newBrowser(t, b.h, 1440, 900)
	br.signIn("/?since=24h", opUser, opPass)
	legend := func() string {
		return strings.Join(br.list("legend", `Array.from(document.querySelectorAll("#chart .legend li")).map(li => li.textContent.trim().replace(/\s+/g, " "))`), "; ")
	}
	br.do("auto-refresh", chromedp.WaitVisible(css(`#chart`)),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem("stripeq.refreshMs", "300")`),
		chromedp.Reload(), chromedp.WaitVisible(css(`#autorefresh`)), chromedp.Click(css(`#autorefresh`)))
	if got := legend(); !strings.Contains(got, "invoice.paid 1") {
		t.Fatalf("legend before: %q", got)
	}
	b.env.Store(t, execindextest.Body(execindextest.Exec{ID: "evt_new", Type: "invoice.paid", Customer: "cus_N"}))
	poll.Until(t, 10*time.Second, "the chart's legend to count evt_new", func() bool { return strings.Contains(legend(), "invoice.paid 2") })
	bars := br.list("bars", `[String(document.querySelectorAll("#chart svg.wide rect.bar").length)]`)
	if bars[0] == "0" {
		t.Error("the refreshed chart has no bars")
	}
	br.shot("chart-refreshed-desktop.png")
	br.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(css(`#chart`)))
	br.shot("chart-refreshed-phone.png")
}
