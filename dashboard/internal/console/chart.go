package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
)

// The chart's bounds: it costs at most chartMaxBuckets × (chartMaxTypes +
// 2) ZCOUNTs per shard, in two round trips, whatever the index holds; for
// a type prefix, whose total is the sum of its types' sets (the index
// keeps no set per prefix), chartMaxBuckets × (its types + 1) at most.
const (
	// chartMaxBuckets is the most bars across: 24 hours make 48 whole
	// half hours and a part of one at each end.
	chartMaxBuckets = 50
	chartMaxTypes   = 5 // types stacked; the rest is one "other" series
	// chartMaxCandidates is how many types (the most frequent of all
	// time) the first round trip counts over the range to pick the top
	// chartMaxTypes.
	chartMaxCandidates = 100
	chartDefaultRange  = 24 * time.Hour
)

// chartSteps are the bucket sizes the chart picks from: the smallest that
// makes no more than chartMaxBuckets bars.
var chartSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// chartSeries is one stacked series: a type, a type prefix or "other".
type chartSeries struct {
	Name   string  `json:"name"`
	Counts []int64 `json:"counts"` // one per bucket
	Total  int     `json:"total"`
	Class  string  `json:"-"` // its colour in app.css: s0 … s5
}

// chart is the list's time range in buckets: executions received per
// bucket by type, and failures kept for good per bucket.
type chart struct {
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Step   time.Duration `json:"-"`
	StepS  int64         `json:"step_seconds"`
	Starts []time.Time   `json:"buckets"` // each bucket's start (the first is From)
	Series []chartSeries `json:"received"`
	Failed []int64       `json:"failed"`
	// Scope names what the received series count: "all types" or the
	// type filter. Other filters do not narrow the chart.
	Scope       string `json:"scope"`
	Received    int    `json:"received_total"`
	FailedTotal int    `json:"failed_total"`
}

// chartRange is the range of q the chart shows: its from/to, or since,
// with the last 24 hours (before to, or now) by default.
func chartRange(f execindex.Filter, now time.Time) (time.Time, time.Time) {
	to := f.To
	if to.IsZero() || to.After(now) && f.From.Before(now) {
		to = now
	}
	from := f.From
	if from.IsZero() {
		from = to.Add(-chartDefaultRange)
	}
	if !from.Before(to) {
		from = to.Add(-time.Minute)
	}
	return from, to
}

// chartStep returns the bucket size for a range and the number of buckets.
func chartStep(from, to time.Time) (time.Duration, int) {
	span := to.Sub(from)
	step := chartSteps[len(chartSteps)-1]
	for _, s := range chartSteps {
		if buckets(from, to, s) <= chartMaxBuckets {
			step = s
			break
		}
	}
	if buckets(from, to, step) > chartMaxBuckets { // ranges of years
		step = (span/chartMaxBuckets/(24*time.Hour) + 1) * 24 * time.Hour
		for buckets(from, to, step) > chartMaxBuckets {
			step += 24 * time.Hour
		}
	}
	return step, buckets(from, to, step)
}

// buckets counts the buckets of size step, aligned on step (in UTC), that
// cover [from, to].
func buckets(from, to time.Time, step time.Duration) int {
	first := from.Truncate(step)
	return int(to.Sub(first)/step) + 1
}

// chart counts what the list's filter received in its range, by type, and
// what failed for good.
func (s *server) chart(ctx context.Context, f execindex.Filter, types []execindex.ValueCount, now time.Time) (chart, error) {
	from, to := chartRange(f, now)
	step, n := chartStep(from, to)
	c := chart{From: from, To: to, Step: step, StepS: int64(step / time.Second), Scope: "all types"}
	// Bucket i is [lo[i], hi[i]) in unix ms; the last one includes to.
	lo, hi := make([]string, n), make([]string, n)
	start := from.Truncate(step)
	for i := range n {
		b := start.Add(time.Duration(i) * step)
		e := b.Add(step)
		if b.Before(from) {
			b = from
		}
		c.Starts = append(c.Starts, b)
		lo[i] = strconv.FormatInt(b.UnixMilli(), 10)
		if e.After(to) || i == n-1 {
			hi[i] = strconv.FormatInt(to.UnixMilli(), 10)
		} else {
			hi[i] = "(" + strconv.FormatInt(e.UnixMilli(), 10)
		}
	}
	queues := s.index.Queues()
	rangeLo, rangeHi := strconv.FormatInt(from.UnixMilli(), 10), strconv.FormatInt(to.UnixMilli(), 10)

	// The candidate types: those the filter names (a prefix's types), the
	// most frequent first.
	var cands []string
	total := []string{"all"} // the sets "other" is the rest of
	switch {
	case f.Type != "":
		cands, total, c.Scope = []string{f.Type}, []string{"type:" + f.Type}, f.Type
	case f.TypePrefix != "":
		total, c.Scope = nil, f.TypePrefix+".*"
		for _, t := range types {
			if strings.HasPrefix(t.Value, f.TypePrefix+".") {
				cands = append(cands, t.Value)
				total = append(total, "type:"+t.Value)
			}
		}
	default:
		for _, t := range types {
			cands = append(cands, t.Value)
		}
	}
	slices.SortStableFunc(cands, func(a, b string) int {
		return cmp.Compare(countOf(types, b), countOf(types, a))
	})
	cands = cands[:min(len(cands), chartMaxCandidates)]

	// Round trip 1: each candidate's count in the range, over every shard.
	if len(cands) > chartMaxTypes {
		p := s.rdb.Pipeline()
		cmds := make([][]*redis.IntCmd, len(cands))
		for i, t := range cands {
			for _, q := range queues {
				cmds[i] = append(cmds[i], p.ZCount(ctx, execindex.KeyPrefix(q)+"type:"+t, rangeLo, rangeHi))
			}
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return c, fmt.Errorf("chart: %w", err)
		}
		sums := map[string]int64{}
		for i, t := range cands {
			for _, cmd := range cmds[i] {
				sums[t] += cmd.Val()
			}
		}
		slices.SortStableFunc(cands, func(a, b string) int { return cmp.Compare(sums[b], sums[a]) })
		cands = cands[:chartMaxTypes]
	}

	// Round trip 2: per bucket, each top type, the whole scope (for
	// "other") and the failures, over every shard. Each of keys is summed
	// over its sets: the scope of a prefix is its types.
	keys := make([][]string, 0, len(cands)+1)
	for _, t := range cands {
		keys = append(keys, []string{"type:" + t})
	}
	keys = append(keys, total)
	p := s.rdb.Pipeline()
	counts := make([][][]*redis.IntCmd, len(keys)+1) // [key][bucket][shard and set]
	for k := range counts {
		counts[k] = make([][]*redis.IntCmd, n)
		for i := range n {
			for _, q := range queues {
				if k == len(keys) {
					counts[k][i] = append(counts[k][i], p.ZCount(ctx, failures.AllKey(q), lo[i], hi[i]))
					continue
				}
				for _, set := range keys[k] {
					counts[k][i] = append(counts[k][i], p.ZCount(ctx, execindex.KeyPrefix(q)+set, lo[i], hi[i]))
				}
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return c, fmt.Errorf("chart: %w", err)
	}
	sum := func(k int) []int64 {
		out := make([]int64, n)
		for i := range n {
			for _, cmd := range counts[k][i] {
				out[i] += cmd.Val()
			}
		}
		return out
	}
	all := sum(len(keys) - 1)
	other := slices.Clone(all)
	for k, t := range cands {
		v := sum(k)
		cs := chartSeries{Name: t, Counts: v, Class: "s" + strconv.Itoa(k)}
		for i, x := range v {
			cs.Total += int(x)
			other[i] -= x
		}
		c.Series = append(c.Series, cs)
	}
	rest := chartSeries{Name: "other", Counts: other, Class: "s" + strconv.Itoa(chartMaxTypes)}
	for i, x := range other {
		if x < 0 { // an entry added between two ZCOUNTs
			other[i] = 0
		}
		rest.Total += int(other[i])
	}
	if rest.Total > 0 {
		c.Series = append(c.Series, rest)
	}
	c.Failed = sum(len(keys))
	for i := range n {
		c.Received += int(all[i])
		c.FailedTotal += int(c.Failed[i])
	}
	// Series with nothing in the range only clutter the legend.
	c.Series = slices.DeleteFunc(c.Series, func(cs chartSeries) bool { return cs.Total == 0 })
	return c, nil
}

func countOf(vs []execindex.ValueCount, v string) int64 {
	for _, x := range vs {
		if x.Value == v {
			return x.Count
		}
	}
	return 0
}

// handleChart is GET /api/chart?<the list's filter>: the chart's counts.
func (s *server) handleChart() gin.HandlerFunc {
	return func(c *gin.Context) {
		now := time.Now()
		q, err := parseQuery(c.Request.URL.Query(), now)
		if err != nil {
			status := http.StatusBadRequest
			if !errors.Is(err, execindex.ErrInvalidFilter) {
				status = http.StatusInternalServerError
			}
			c.JSON(status, gin.H{"message": err.Error()})
			return
		}
		types, _ := s.index.Values(c.Request.Context(), execindex.FieldType)
		ch, err := s.chart(c.Request.Context(), q.Filter, types, now)
		if err != nil {
			c.Error(err)
			c.JSON(http.StatusInternalServerError, gin.H{"message": "chart failed"})
			return
		}
		c.JSON(http.StatusOK, ch)
	}
}

// svgSize is one drawing of the chart, in the SVG's own units (viewBox):
// CSS scales it to the page's width and shows the one that fits.
type svgSize struct {
	Name                     string // its class: "wide" or "narrow"
	W, H                     int
	Left, Right, Top, Bottom int     // the margins
	Font                     float64 // the axis labels' size, as in app.css
	Labels                   int     // about how many time labels
}

// The chart is drawn twice: wide for a desktop (about 14 px labels at
// 1400 px), narrow for a phone, which would shrink a wide drawing to a
// strip with unreadable labels. CSS shows one.
var (
	svgWide   = svgSize{Name: "wide", W: 1200, H: 200, Left: 48, Right: 8, Top: 10, Bottom: 26, Font: 12, Labels: 8}
	svgNarrow = svgSize{Name: "narrow", W: 600, H: 260, Left: 60, Right: 6, Top: 12, Bottom: 34, Font: 18, Labels: 3}
)

// svgRect is one bar segment, with its tooltip.
type svgRect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// svgLabel is one axis label.
type svgLabel struct {
	X, Y   float64
	Text   string
	Anchor string
}

// chartView is what list.html draws: numbers, and text the template
// escapes.
type chartView struct {
	svgSize
	Bars             []svgRect
	Failed           string // the points of the failed polyline
	FailedDots       []svgRect
	XLabels, YLabels []svgLabel
	Grid             []float64 // y of the grid lines
	Desc             string
	Step             string // "30m"
	C                chart
}

// chartFigure is the chart in both sizes, with its legend.
type chartFigure struct {
	Wide, Narrow chartView
	Legend       []chartSeries
	C            chart
}

func (c chart) figure() chartFigure {
	return chartFigure{Wide: c.view(svgWide), Narrow: c.view(svgNarrow), Legend: c.Series, C: c}
}

// view lays the chart out in size z.
func (c chart) view(z svgSize) chartView {
	v := chartView{svgSize: z, C: c, Step: shortDuration(c.Step)}
	n := len(c.Starts)
	if n == 0 {
		return v
	}
	var top int64 = 1
	for i := range n {
		var stack int64
		for _, s := range c.Series {
			stack += s.Counts[i]
		}
		top = max(top, stack, c.Failed[i])
	}
	top = niceCeil(top)
	plotW, plotH := float64(z.W-z.Left-z.Right), float64(z.H-z.Top-z.Bottom)
	y := func(x int64) float64 { return float64(z.Top) + plotH - float64(x)*plotH/float64(top) }
	slot := plotW / float64(n)
	gap := min(2, slot/4)
	bw := slot - gap
	layout := "15:04"
	if c.Step >= 24*time.Hour || c.To.Sub(c.From) > 3*24*time.Hour {
		layout = "Jan 2"
		if c.Step < 24*time.Hour {
			layout = "Jan 2 15:04"
		}
	}
	end := func(i int) time.Time {
		if i+1 < n {
			return c.Starts[i+1]
		}
		return c.To
	}
	var pts []string
	for i := range n {
		x := float64(z.Left) + float64(i)*slot + gap/2
		span := c.Starts[i].UTC().Format("Jan 2 15:04") + "–" + end(i).UTC().Format("15:04") + " UTC"
		var stack int64
		for _, s := range c.Series {
			if s.Counts[i] == 0 {
				continue
			}
			y0, y1 := y(stack), y(stack+s.Counts[i])
			stack += s.Counts[i]
			v.Bars = append(v.Bars, svgRect{X: round1(x), Y: round1(y1), W: round1(bw), H: round1(y0 - y1), Class: s.Class,
				Title: fmt.Sprintf("%s: %s received, %s", s.Name, thousands(int(s.Counts[i])), span)})
		}
		cx := x + bw/2
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", cx, y(c.Failed[i])))
		if c.Failed[i] > 0 {
			v.FailedDots = append(v.FailedDots, svgRect{X: round1(cx), Y: round1(y(c.Failed[i])),
				Title: fmt.Sprintf("%s failed for good, %s", thousands(int(c.Failed[i])), span)})
		}
	}
	if c.FailedTotal > 0 {
		v.Failed = strings.Join(pts, " ")
	}
	ticks := []int64{0, top}
	if top%2 == 0 {
		ticks = []int64{0, top / 2, top}
	}
	for _, f := range ticks {
		v.YLabels = append(v.YLabels, svgLabel{X: float64(z.Left) - z.Font/2, Y: round1(y(f) + z.Font/3), Text: thousands(int(f)), Anchor: "end"})
		v.Grid = append(v.Grid, round1(y(f)))
	}
	every := max(1, (n+z.Labels-1)/z.Labels)
	for i := 0; i < n; i += every {
		v.XLabels = append(v.XLabels, svgLabel{X: round1(float64(z.Left) + float64(i)*slot), Y: float64(z.H) - z.Font/2,
			Text: c.Starts[i].UTC().Format(layout), Anchor: "start"})
	}
	names := make([]string, 0, len(c.Series))
	for _, s := range c.Series {
		names = append(names, fmt.Sprintf("%s %s", s.Name, thousands(s.Total)))
	}
	if len(names) == 0 {
		names = append(names, "nothing")
	}
	v.Desc = fmt.Sprintf("%s received (%s) from %s to %s UTC in %d bars of %s; %s failed for good.",
		thousands(c.Received), strings.Join(names, ", "), c.From.UTC().Format("Jan 2 15:04"), c.To.UTC().Format("Jan 2 15:04"),
		n, shortDuration(c.Step), thousands(c.FailedTotal))
	return v
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// niceCeil rounds n up to 1, 2 or 5 × a power of ten.
func niceCeil(n int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

func shortDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
}
