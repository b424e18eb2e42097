// Package chart is the Console's chart of executions received per bucket
// of time, by type, of failures kept for good, and of executions still
// retrying after a failure: its range and buckets, the counting in Redis
// (Count), and its drawing as SVG (Chart.Draw). Everything but Count is
// pure, and tested without Redis.
//
// Internal to the dashboard command, with no compatibility promise.
package chart

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
)

// The chart's bounds: it costs at most MaxBuckets × (MaxTypes +
// 2) ZCOUNTs per shard, in two round trips, whatever the index holds; for
// a type prefix, whose total is the sum of its types' sets (the index
// keeps no set per prefix), MaxBuckets × (its types + 1) at most. The
// executions still retrying add one script per shard to the last round
// trip: a ZRANGE of at most MaxRetrying entries of asynq's retry set and
// their ZMSCORE in the index (about 15 ms of Redis time for 10,000 on a
// 2-core machine, measured with a 100,000-entry index). With
// no time in the filter, fitting the range to the data (Fit) adds a first
// round trip of two single-entry range lookups (O(log N)) per shard and
// set of the scope, and one more lookup each when nothing came in the
// last DefaultRange.
const (
	// MaxBuckets is the most bars across: 24 hours make 48 whole
	// half hours and a part of one at each end.
	MaxBuckets = 50
	MaxTypes   = 5 // types stacked; the rest is one "other" series
	// MaxCandidates is how many types (the most frequent of all
	// time) the first round trip counts over the range to pick the top
	// MaxTypes.
	MaxCandidates = 100
	// DefaultRange is the range with no time in the filter: the chart
	// fits its data within it (Fit), or shows all of it when empty.
	DefaultRange = 24 * time.Hour
	// MinFitRange is the shortest range Fit picks.
	MinFitRange = time.Hour
	// MaxRetrying is how many entries of each shard's retry set (the
	// soonest to retry first) the chart looks up in the index, for their
	// received time; past it, Chart.RetryingCapped is set and the counts
	// are lower bounds.
	MaxRetrying = 10_000
)

// steps are the bucket sizes the chart picks from: the smallest that
// makes no more than MaxBuckets bars.
var steps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// Series is one stacked series: a type, a type prefix or "other".
type Series struct {
	Name   string  `json:"name"`
	Counts []int64 `json:"counts"` // one per bucket
	Total  int     `json:"total"`
	Class  string  `json:"-"` // its colour in app.css: s0 … s5
}

// Chart is the list's time range in buckets: executions received per
// bucket by type, failures kept for good per bucket (by when they failed
// for good), and executions waiting for a retry after a failed attempt
// (asynq's state retry) per bucket, by when they were received.
type Chart struct {
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Step   time.Duration `json:"-"`
	StepS  int64         `json:"step_seconds"`
	Starts []time.Time   `json:"buckets"` // each bucket's start (the first is From)
	Series []Series      `json:"received"`
	Failed []int64       `json:"failed"`
	// Retrying counts, per bucket, the executions received in it that
	// wait for their next retry, of every type.
	Retrying []int64 `json:"retrying"`
	// Scope names what the received series count: "all types" or the
	// type filter. Other filters do not narrow the chart.
	Scope       string `json:"scope"`
	Received    int    `json:"received_total"`
	FailedTotal int    `json:"failed_total"`
	// RetryingTotal is the sum of Retrying. RetryingCapped is set when a
	// shard's retry set held more than MaxRetrying entries: the counts
	// are then of the MaxRetrying soonest to retry, lower bounds.
	RetryingTotal  int  `json:"retrying_total"`
	RetryingCapped bool `json:"retrying_capped,omitempty"`
	// Fitted says how the range was chosen when the filter has no time
	// (Fit): FitRecent, FitLatest, or "" for the filter's own range (and
	// for the last DefaultRange when nothing is indexed).
	Fitted string `json:"fitted,omitempty"`
}

// Chart.Fitted's values.
const (
	// FitRecent: from the oldest execution of the last DefaultRange
	// (at least MinFitRange) to now.
	FitRecent = "recent"
	// FitLatest: nothing came in the last DefaultRange; the range ends
	// at the newest execution, and starts at the oldest of the
	// DefaultRange before it (at least MinFitRange before).
	FitLatest = "latest"
)

// Fit is the range the chart shows when the filter sets no time: the
// last DefaultRange fitted to the data, given the oldest execution
// received in it and the newest of all (zero when there is none). The
// range spans at least MinFitRange, and its start is rounded down to the
// step of its buckets (Step). With nothing in the last DefaultRange it is
// fitted the same way around the newest execution, its end rounded up to
// a step. With nothing at all it is the last
// DefaultRange, and fitted is "".
func Fit(now, oldest, newest time.Time) (from, to time.Time, fitted string) {
	if newest.IsZero() {
		return now.Add(-DefaultRange), now, ""
	}
	end, fitted := now, FitRecent
	if newest.Before(now.Add(-DefaultRange)) {
		end, fitted = newest, FitLatest
	}
	start := end.Add(-MinFitRange)
	if !oldest.IsZero() && oldest.Before(start) {
		start = oldest
		if start.Before(end.Add(-DefaultRange)) {
			start = end.Add(-DefaultRange)
		}
	}
	step, _ := Step(start, end)
	from, to = start.Truncate(step), now
	if fitted == FitLatest {
		to = end.Truncate(step).Add(step) // before now: end is a day before it
	}
	return from, to, fitted
}

// fits reports whether the chart of f is fitted to the data: f sets no
// time.
func fits(f execindex.Filter) bool { return f.From.IsZero() && f.To.IsZero() }

// Range is the range of q the chart shows: its from/to, or since,
// with the last 24 hours (before to, or now) by default.
func Range(f execindex.Filter, now time.Time) (time.Time, time.Time) {
	to := f.To
	if to.IsZero() || to.After(now) && f.From.Before(now) {
		to = now
	}
	from := f.From
	if from.IsZero() {
		from = to.Add(-DefaultRange)
	}
	if !from.Before(to) {
		from = to.Add(-time.Minute)
	}
	return from, to
}

// Step returns the bucket size for a range and the number of buckets.
func Step(from, to time.Time) (time.Duration, int) {
	span := to.Sub(from)
	step := steps[len(steps)-1]
	for _, s := range steps {
		if buckets(from, to, s) <= MaxBuckets {
			step = s
			break
		}
	}
	if buckets(from, to, step) > MaxBuckets { // ranges of years
		step = (span/MaxBuckets/(24*time.Hour) + 1) * 24 * time.Hour
		for buckets(from, to, step) > MaxBuckets {
			step += 24 * time.Hour
		}
	}
	return step, buckets(from, to, step)
}

// buckets counts the buckets of size step, aligned on step (in UTC), that
// cover [from, to]: a to on a step ends the bucket before it (which
// includes it), so that a range narrowed to whole buckets shows just them.
func buckets(from, to time.Time, step time.Duration) int {
	first := from.Truncate(step)
	return max(1, int((to.Sub(first)+step-1)/step))
}

// Count counts what filter f received in its range, by type, and what
// failed for good, and what waits for a retry, over the execution index's
// shard queues; types are the index's type facet (execindex.FieldType),
// the most frequent of all time first. It takes two round trips to Redis
// (one when at most MaxTypes types are candidates).
func Count(ctx context.Context, rdb redis.UniversalClient, queues []string, f execindex.Filter, types []execindex.ValueCount, now time.Time) (Chart, error) {
	cands, scope := Candidates(f, types)
	from, to := Range(f, now)
	fitted := ""
	if fits(f) {
		oldest, newest, err := extent(ctx, rdb, queues, scope.Sets, now)
		if err != nil {
			return New(f, now), err
		}
		from, to, fitted = Fit(now, oldest, newest)
	}
	c := newChart(from, to)
	c.Scope, c.Fitted = scope.Name, fitted
	if len(cands) > MaxTypes {
		sums, err := countInRange(ctx, rdb, queues, cands, c.From, c.To)
		if err != nil {
			return c, err
		}
		cands = Top(cands, sums)
	}
	counts, retrying, err := countBuckets(ctx, rdb, queues, c.keys(cands, scope.Sets), c.retryArgs())
	if err != nil {
		return c, err
	}
	c.Fill(cands, counts)
	c.FillRetrying(retrying)
	return c, nil
}

// New is the empty chart of f's range at now (Range): its step and
// buckets.
func New(f execindex.Filter, now time.Time) Chart {
	return newChart(Range(f, now))
}

// newChart is the empty chart of [from, to]: its step and buckets.
func newChart(from, to time.Time) Chart {
	step, n := Step(from, to)
	c := Chart{From: from, To: to, Step: step, StepS: int64(step / time.Second), Scope: "all types"}
	start := from.Truncate(step)
	for i := range n {
		b := start.Add(time.Duration(i) * step)
		if b.Before(from) {
			b = from
		}
		c.Starts = append(c.Starts, b)
	}
	return c
}

// bounds are bucket i's ZCOUNT bounds in unix ms: [lo, hi), the last one
// including To.
func (c Chart) bounds(i int) (lo, hi string) {
	lo = strconv.FormatInt(c.Starts[i].UnixMilli(), 10)
	if i == len(c.Starts)-1 {
		return lo, strconv.FormatInt(c.To.UnixMilli(), 10)
	}
	return lo, "(" + strconv.FormatInt(c.Starts[i+1].UnixMilli(), 10)
}

// Scope is what the chart counts as all: a name, and the index's sets
// (after the shard's key prefix) whose sum is the total that "other" is
// the rest of.
type Scope struct {
	Name string
	Sets []string
}

// Candidates are the types that may get a series of their own: those the
// filter names (a prefix's types), the most frequent of all time first,
// at most MaxCandidates; and the scope they are counted in.
func Candidates(f execindex.Filter, types []execindex.ValueCount) ([]string, Scope) {
	var cands []string
	scope := Scope{Name: "all types", Sets: []string{"all"}}
	switch {
	case f.Type != "":
		return []string{f.Type}, Scope{Name: f.Type, Sets: []string{"type:" + f.Type}}
	case f.TypePrefix != "":
		scope = Scope{Name: f.TypePrefix + ".*"}
		for _, t := range types {
			if strings.HasPrefix(t.Value, f.TypePrefix+".") {
				cands = append(cands, t.Value)
				scope.Sets = append(scope.Sets, "type:"+t.Value)
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
	return cands[:min(len(cands), MaxCandidates)], scope
}

// Top is the MaxTypes candidates with the most in the range (sums), the
// most first; ties keep the candidates' order.
func Top(cands []string, sums map[string]int64) []string {
	top := slices.Clone(cands)
	slices.SortStableFunc(top, func(a, b string) int { return cmp.Compare(sums[b], sums[a]) })
	return top[:min(len(top), MaxTypes)]
}

// extent is the oldest execution received in the DefaultRange before
// now and the newest received by now, in the scope's sets over every
// shard (zero times for none): one round trip, and a second one for the
// oldest in the DefaultRange before the newest when that is older.
func extent(ctx context.Context, rdb redis.UniversalClient, queues, sets []string, now time.Time) (oldest, newest time.Time, err error) {
	end := strconv.FormatInt(now.UnixMilli(), 10)
	p := rdb.Pipeline()
	var olds, news []*redis.ZSliceCmd
	for _, q := range queues {
		for _, set := range sets {
			k := execindex.KeyPrefix(q) + set
			news = append(news, p.ZRevRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Max: end, Min: "-inf", Count: 1}))
			olds = append(olds, p.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: strconv.FormatInt(now.Add(-DefaultRange).UnixMilli(), 10), Max: end, Count: 1}))
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return oldest, newest, fmt.Errorf("chart: %w", err)
	}
	newest, _ = firstScore(news, false)
	oldest, _ = firstScore(olds, true)
	if newest.IsZero() || !newest.Before(now.Add(-DefaultRange)) {
		return oldest, newest, nil
	}
	p = rdb.Pipeline()
	olds = olds[:0]
	for _, q := range queues {
		for _, set := range sets {
			olds = append(olds, p.ZRangeByScoreWithScores(ctx, execindex.KeyPrefix(q)+set, &redis.ZRangeBy{
				Min: strconv.FormatInt(newest.Add(-DefaultRange).UnixMilli(), 10), Max: strconv.FormatInt(newest.UnixMilli(), 10), Count: 1}))
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return oldest, newest, fmt.Errorf("chart: %w", err)
	}
	oldest, _ = firstScore(olds, true)
	return oldest, newest, nil
}

// firstScore is the least (or, with least false, the greatest) score of
// the first entries cmds returned, as a time from unix ms.
func firstScore(cmds []*redis.ZSliceCmd, least bool) (time.Time, bool) {
	var best float64
	found := false
	for _, cmd := range cmds {
		for _, z := range cmd.Val() {
			if !found || least && z.Score < best || !least && z.Score > best {
				best, found = z.Score, true
			}
		}
	}
	if !found {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(best)), true
}

// countInRange is each candidate's count in [from, to], over every shard:
// one round trip.
func countInRange(ctx context.Context, rdb redis.UniversalClient, queues, cands []string, from, to time.Time) (map[string]int64, error) {
	lo, hi := strconv.FormatInt(from.UnixMilli(), 10), strconv.FormatInt(to.UnixMilli(), 10)
	p := rdb.Pipeline()
	cmds := make([][]*redis.IntCmd, len(cands))
	for i, t := range cands {
		for _, q := range queues {
			cmds[i] = append(cmds[i], p.ZCount(ctx, execindex.KeyPrefix(q)+"type:"+t, lo, hi))
		}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("chart: %w", err)
	}
	sums := map[string]int64{}
	for i, t := range cands {
		for _, cmd := range cmds[i] {
			sums[t] += cmd.Val()
		}
	}
	return sums, nil
}

// bucketKeys are the sorted sets one count of a bucket sums, per shard
// queue; failed marks the failure store's set, which has no index prefix.
type bucketKeys struct {
	sets   [][]string // per key: the index's sets summed
	failed bool       // the last key is the failures
	lo, hi []string   // per bucket
}

// keys are what Fill needs counted per bucket: each top type, the scope's
// sets (for "other"), then the failures.
func (c Chart) keys(cands, scope []string) bucketKeys {
	k := bucketKeys{failed: true}
	for _, t := range cands {
		k.sets = append(k.sets, []string{"type:" + t})
	}
	k.sets = append(k.sets, scope)
	for i := range c.Starts {
		lo, hi := c.bounds(i)
		k.lo, k.hi = append(k.lo, lo), append(k.hi, hi)
	}
	return k
}

// retryingScript counts a shard's executions waiting for a retry per
// bucket (retrying.lua).
//
//go:embed retrying.lua
var retryingScript string

// retryArgs are retrying.lua's ARGV: the cap, the buckets' starts and
// the range's end, in unix ms.
func (c Chart) retryArgs() []any {
	args := []any{MaxRetrying}
	for _, b := range c.Starts {
		args = append(args, b.UnixMilli())
	}
	return append(args, c.To.UnixMilli())
}

// countBuckets counts every key in every bucket, summed over the shards
// and each key's sets, in one round trip: counts[key][bucket], the
// failures last; and runs retrying.lua with args on each shard, in the
// same round trip: one answer per shard.
func countBuckets(ctx context.Context, rdb redis.UniversalClient, queues []string, k bucketKeys, args []any) ([][]int64, [][]int64, error) {
	n := len(k.lo)
	p := rdb.Pipeline()
	cmds := make([][][]*redis.IntCmd, len(k.sets)+1) // [key][bucket][shard and set]
	for key := range cmds {
		cmds[key] = make([][]*redis.IntCmd, n)
		for i := range n {
			for _, q := range queues {
				if key == len(k.sets) {
					cmds[key][i] = append(cmds[key][i], p.ZCount(ctx, failures.AllKey(q), k.lo[i], k.hi[i]))
					continue
				}
				for _, set := range k.sets[key] {
					cmds[key][i] = append(cmds[key][i], p.ZCount(ctx, execindex.KeyPrefix(q)+set, k.lo[i], k.hi[i]))
				}
			}
		}
	}
	retry := make([]*redis.Cmd, len(queues))
	for i, q := range queues {
		retry[i] = p.Eval(ctx, retryingScript, []string{keyspace.Retry(q), keyspace.IndexAll(q)}, args...)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("chart: %w", err)
	}
	var retrying [][]int64
	for _, cmd := range retry {
		r, err := cmd.Int64Slice()
		if err != nil {
			return nil, nil, fmt.Errorf("chart: retrying: %w", err)
		}
		retrying = append(retrying, r)
	}
	counts := make([][]int64, len(cmds))
	for key := range cmds {
		counts[key] = make([]int64, n)
		for i := range n {
			for _, cmd := range cmds[key][i] {
				counts[key][i] += cmd.Val()
			}
		}
	}
	return counts, retrying, nil
}

// FillRetrying sets the chart's executions still retrying from
// retrying.lua's answers, one per shard: {entries in the retry set,
// entries examined, then one count per bucket}.
func (c *Chart) FillRetrying(shards [][]int64) {
	c.Retrying = make([]int64, len(c.Starts))
	c.RetryingTotal, c.RetryingCapped = 0, false
	for _, r := range shards {
		if len(r) < 2 {
			continue
		}
		if r[0] > r[1] {
			c.RetryingCapped = true
		}
		for i, x := range r[2:min(len(r), len(c.Starts)+2)] {
			c.Retrying[i] += x
			c.RetryingTotal += int(x)
		}
	}
}

// Fill sets the chart's series and totals from counts[key][bucket]: one
// key per top type (cands), then the scope's total, then the failures.
// What the scope holds beyond the top types is one "other" series; series
// with nothing in the range are left out.
func (c *Chart) Fill(cands []string, counts [][]int64) {
	all := counts[len(cands)]
	other := slices.Clone(all)
	c.Series = nil
	for k, t := range cands {
		cs := Series{Name: t, Counts: counts[k], Class: "s" + strconv.Itoa(k)}
		for i, x := range counts[k] {
			cs.Total += int(x)
			other[i] -= x
		}
		c.Series = append(c.Series, cs)
	}
	rest := Series{Name: "other", Counts: other, Class: "s" + strconv.Itoa(MaxTypes)}
	for i, x := range other {
		if x < 0 { // an entry added between two ZCOUNTs
			other[i] = 0
		}
		rest.Total += int(other[i])
	}
	if rest.Total > 0 {
		c.Series = append(c.Series, rest)
	}
	c.Failed = counts[len(cands)+1]
	c.Received, c.FailedTotal = 0, 0
	for i := range all {
		c.Received += int(all[i])
		c.FailedTotal += int(c.Failed[i])
	}
	// Series with nothing in the range only clutter the legend.
	c.Series = slices.DeleteFunc(c.Series, func(cs Series) bool { return cs.Total == 0 })
}

func countOf(vs []execindex.ValueCount, v string) int64 {
	for _, x := range vs {
		if x.Value == v {
			return x.Count
		}
	}
	return 0
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

// svgHit is one bucket's target, over the whole height of the plot: a
// link to the list narrowed to the bucket (Figure.Link), for a click, a
// drag across buckets (app.js) or the keyboard.
type svgHit struct {
	X, Y, W, H float64
	From, To   string // the bucket's bounds as the list's from and to take them
	Label      string // the bucket in words
	URL        string
}

// View is what list.html draws: numbers, and text the template
// escapes.
type View struct {
	svgSize
	Bars             []svgRect
	Failed           string // the points of the failed polyline
	FailedDots       []svgRect
	Retrying         string // the points of the still-retrying polyline
	RetryingDots     []svgRect
	XLabels, YLabels []svgLabel
	Grid             []float64 // y of the grid lines
	Hits             []svgHit  // one per bucket
	Slot             float64   // a bucket's width
	PlotH            float64   // the plot's height
	Desc             string
	Step             string // "30m"
	C                Chart
}

// Figure is the chart in both sizes, with its legend.
type Figure struct {
	Wide, Narrow View
	Legend       []Series
	C            Chart
	// RangeURL is the list narrowed to the chart's range (Link).
	RangeURL string
}

// Link sets the URLs of the figure's bucket targets and its RangeURL:
// url returns the list narrowed to [from, to], given as the list's from
// and to parameters take them (RFC 3339, whole seconds).
func (f *Figure) Link(url func(from, to string) string) {
	for _, v := range []*View{&f.Wide, &f.Narrow} {
		for i := range v.Hits {
			v.Hits[i].URL = url(v.Hits[i].From, v.Hits[i].To)
		}
	}
	f.RangeURL = url(FromParam(f.C.From), ToParam(f.C.To))
}

// Span is the time a click on bucket i, or a drag from bucket i to bucket
// j (either way), narrows the list to: from the first bucket's start to
// the last one's end (the next bucket's start, or To), as the list's from
// and to parameters (FromParam, ToParam). Indexes out of range are
// clamped. app.js does the same with the buckets' data-from and data-to.
func (c Chart) Span(i, j int) (from, to string) {
	n := len(c.Starts)
	if n == 0 {
		return FromParam(c.From), ToParam(c.To)
	}
	lo, hi := max(0, min(i, j, n-1)), min(n-1, max(i, j, 0))
	end := c.To
	if hi+1 < n {
		end = c.Starts[hi+1]
	}
	return FromParam(c.Starts[lo]), ToParam(end)
}

// FromParam is t as the list's from parameter: RFC 3339 in UTC, rounded
// down to the second, so that it includes t.
func FromParam(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// ToParam is t as the list's to parameter, rounded up to the second, so
// that it includes t.
func ToParam(t time.Time) string {
	up := t.UTC().Truncate(time.Second)
	if up.Before(t) {
		up = up.Add(time.Second)
	}
	return up.Format(time.RFC3339)
}

// Draw lays the chart out in both sizes, with its legend.
func (c Chart) Draw() Figure {
	return Figure{Wide: c.view(svgWide), Narrow: c.view(svgNarrow), Legend: c.Series, C: c}
}

// view lays the chart out in size z.
func (c Chart) view(z svgSize) View {
	v := View{svgSize: z, C: c, Step: shortDuration(c.Step)}
	n := len(c.Starts)
	v.Slot = round1(float64(z.W-z.Left-z.Right) / float64(max(n, 1)))
	if n == 0 {
		return v
	}
	var top int64 = 1
	for i := range n {
		var stack int64
		for _, s := range c.Series {
			stack += s.Counts[i]
		}
		top = max(top, stack, c.Failed[i], c.retrying(i))
	}
	top = niceCeil(top)
	plotW, plotH := float64(z.W-z.Left-z.Right), float64(z.H-z.Top-z.Bottom)
	v.PlotH = plotH
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
	var pts, rpts []string
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
				Title: fmt.Sprintf("%s: %s received, %s", s.Name, Thousands(int(s.Counts[i])), span)})
		}
		cx := x + bw/2
		from, to := c.Span(i, i)
		v.Hits = append(v.Hits, svgHit{X: round1(float64(z.Left) + float64(i)*slot), Y: float64(z.Top), W: round1(slot), H: plotH,
			From: from, To: to, Label: c.bucketLabel(i, span)})
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", cx, y(c.Failed[i])))
		if c.Failed[i] > 0 {
			v.FailedDots = append(v.FailedDots, svgRect{X: round1(cx), Y: round1(y(c.Failed[i])),
				Title: fmt.Sprintf("%s failed for good, %s", Thousands(int(c.Failed[i])), span)})
		}
		r := c.retrying(i)
		rpts = append(rpts, fmt.Sprintf("%.1f,%.1f", cx, y(r)))
		if r > 0 {
			v.RetryingDots = append(v.RetryingDots, svgRect{X: round1(cx), Y: round1(y(r)),
				Title: fmt.Sprintf("%s still retrying, received %s", Thousands(int(r)), span)})
		}
	}
	if c.FailedTotal > 0 {
		v.Failed = strings.Join(pts, " ")
	}
	if c.RetryingTotal > 0 {
		v.Retrying = strings.Join(rpts, " ")
	}
	ticks := []int64{0, top}
	if top%2 == 0 {
		ticks = []int64{0, top / 2, top}
	}
	for _, f := range ticks {
		v.YLabels = append(v.YLabels, svgLabel{X: float64(z.Left) - z.Font/2, Y: round1(y(f) + z.Font/3), Text: Thousands(int(f)), Anchor: "end"})
		v.Grid = append(v.Grid, round1(y(f)))
	}
	every := max(1, (n+z.Labels-1)/z.Labels)
	for i := 0; i < n; i += every {
		v.XLabels = append(v.XLabels, svgLabel{X: round1(float64(z.Left) + float64(i)*slot), Y: float64(z.H) - z.Font/2,
			Text: c.Starts[i].UTC().Format(layout), Anchor: "start"})
	}
	names := make([]string, 0, len(c.Series))
	for _, s := range c.Series {
		names = append(names, fmt.Sprintf("%s %s", s.Name, Thousands(s.Total)))
	}
	if len(names) == 0 {
		names = append(names, "nothing")
	}
	v.Desc = fmt.Sprintf("%s received (%s) from %s to %s UTC in %d bars of %s; %s failed for good; %s of them still retrying.",
		Thousands(c.Received), strings.Join(names, ", "), c.From.UTC().Format("Jan 2 15:04"), c.To.UTC().Format("Jan 2 15:04"),
		n, shortDuration(c.Step), Thousands(c.FailedTotal), c.RetryingText())
	return v
}

// bucketLabel is bucket i in words, for its target's tooltip and
// accessible name: "Dec 7 11:00–11:30 UTC: 5 received (invoice.paid 3,
// other 2), 1 failed for good, 1 still retrying".
func (c Chart) bucketLabel(i int, span string) string {
	var total int64
	var parts []string
	for _, s := range c.Series {
		if s.Counts[i] > 0 {
			total += s.Counts[i]
			parts = append(parts, s.Name+" "+Thousands(int(s.Counts[i])))
		}
	}
	b := span + ": " + Thousands(int(total)) + " received"
	if len(parts) > 0 {
		b += " (" + strings.Join(parts, ", ") + ")"
	}
	return b + ", " + Thousands(int(c.Failed[i])) + " failed for good, " + Thousands(int(c.retrying(i))) + " still retrying"
}

// retrying is bucket i's count of executions still retrying (0 when
// FillRetrying was not called).
func (c Chart) retrying(i int) int64 {
	if i < len(c.Retrying) {
		return c.Retrying[i]
	}
	return 0
}

// RetryingText is RetryingTotal in words: "12", or "at least 10,000"
// when a retry set held more than MaxRetrying.
func (c Chart) RetryingText() string {
	if c.RetryingCapped {
		return "at least " + Thousands(c.RetryingTotal)
	}
	return Thousands(c.RetryingTotal)
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

// Thousands writes n with a comma between each three digits: 12,345.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
