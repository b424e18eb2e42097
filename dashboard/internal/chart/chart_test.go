package chart

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// TestStep: the smallest step of steps that makes at most MaxBuckets
// bars, and whole days past them.
func TestStep(t *testing.T) {
	base := time.Date(2026, 11, 30, 6, 7, 8, 0, time.UTC)
	for _, tt := range []struct {
		span time.Duration
		step time.Duration
	}{
		{15 * time.Minute, time.Minute},
		{time.Hour, 2 * time.Minute},
		{24 * time.Hour, 30 * time.Minute},
		{7 * 24 * time.Hour, 6 * time.Hour},
		{3 * 365 * 24 * time.Hour, 30 * 24 * time.Hour},
		{10 * 365 * 24 * time.Hour, 0},
	} {
		step, n := Step(base.Add(-tt.span), base)
		if n > MaxBuckets || (tt.step != 0 && step != tt.step) {
			t.Errorf("%v: step %v, %d buckets; want %v", tt.span, step, n, tt.step)
		}
	}
}

// TestRange: the filter's from/to, or the 24 hours before to (or now); a
// to in the future of a range that has begun ends now.
func TestRange(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		f        execindex.Filter
		from, to time.Time
	}{
		{"default", execindex.Filter{}, now.Add(-DefaultRange), now},
		{"since", execindex.Filter{From: now.Add(-time.Hour)}, now.Add(-time.Hour), now},
		{"to in the future", execindex.Filter{From: now.Add(-time.Hour), To: now.Add(time.Hour)}, now.Add(-time.Hour), now},
		{"to only", execindex.Filter{To: now.Add(-time.Hour)}, now.Add(-time.Hour - DefaultRange), now.Add(-time.Hour)},
		{"empty range", execindex.Filter{From: now.Add(-time.Hour), To: now.Add(-time.Hour)}, now.Add(-time.Hour - time.Minute), now.Add(-time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, to := Range(tt.f, now)
			if !from.Equal(tt.from) || !to.Equal(tt.to) {
				t.Errorf("Range = %v, %v; want %v, %v", from, to, tt.from, tt.to)
			}
		})
	}
}

// TestNew: the buckets start at the range's start, then on whole steps;
// each bucket's bounds meet the next one's, exclusive, and the last one
// includes the range's end.
func TestNew(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 7, 30, 0, time.UTC)
	c := New(execindex.Filter{From: now.Add(-time.Hour)}, now)
	if c.Step != 2*time.Minute || len(c.Starts) != 31 {
		t.Fatalf("step %v, %d buckets; want 2m, 31", c.Step, len(c.Starts))
	}
	if !c.Starts[0].Equal(c.From) || !c.Starts[1].Equal(time.Date(2026, 12, 7, 11, 8, 0, 0, time.UTC)) {
		t.Errorf("buckets start %v, %v", c.Starts[0], c.Starts[1])
	}
	for i, want := range [][2]string{
		{ms(c.From), "(" + ms(c.Starts[1])},
		{ms(c.Starts[1]), "(" + ms(c.Starts[2])},
	} {
		if lo, hi := c.bounds(i); lo != want[0] || hi != want[1] {
			t.Errorf("bucket %d: [%s, %s], want [%s, %s]", i, lo, hi, want[0], want[1])
		}
	}
	if _, hi := c.bounds(len(c.Starts) - 1); hi != ms(now) {
		t.Errorf("last bucket ends %s, want %s (inclusive)", hi, ms(now))
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// types is a type facet, the most frequent first.
var types = []execindex.ValueCount{
	{Value: "invoice.paid", Count: 40}, {Value: "customer.created", Count: 30}, {Value: "invoice.payment_failed", Count: 20},
	{Value: "charge.failed", Count: 10},
}

// TestCandidates: the filter's type alone, a prefix's types, or every
// type, the most frequent first; and the sets their total sums.
func TestCandidates(t *testing.T) {
	for _, tt := range []struct {
		name  string
		f     execindex.Filter
		cands []string
		scope Scope
	}{
		{"all", execindex.Filter{}, []string{"invoice.paid", "customer.created", "invoice.payment_failed", "charge.failed"}, Scope{"all types", []string{"all"}}},
		{"type", execindex.Filter{Type: "charge.failed"}, []string{"charge.failed"}, Scope{"charge.failed", []string{"type:charge.failed"}}},
		{"prefix", execindex.Filter{TypePrefix: "invoice"}, []string{"invoice.paid", "invoice.payment_failed"},
			Scope{"invoice.*", []string{"type:invoice.paid", "type:invoice.payment_failed"}}},
		{"prefix of nothing", execindex.Filter{TypePrefix: "payout"}, nil, Scope{"payout.*", nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cands, scope := Candidates(tt.f, types)
			if !slices.Equal(cands, tt.cands) || scope.Name != tt.scope.Name || !slices.Equal(scope.Sets, tt.scope.Sets) {
				t.Errorf("Candidates = %v, %+v; want %v, %+v", cands, scope, tt.cands, tt.scope)
			}
		})
	}
}

// TestTop: the MaxTypes busiest in the range, ties in the candidates'
// order.
func TestTop(t *testing.T) {
	cands := []string{"a", "b", "c", "d", "e", "f", "g"}
	sums := map[string]int64{"a": 1, "b": 5, "c": 5, "d": 0, "e": 9, "f": 2, "g": 3}
	if got, want := Top(cands, sums), []string{"e", "b", "c", "g", "f"}; !slices.Equal(got, want) {
		t.Errorf("Top = %v, want %v", got, want)
	}
	if got := Top(cands[:2], sums); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Top of two = %v", got)
	}
}

// TestFill: the top types' series, "other" as the rest of the scope's
// total (never below zero), the failures, the totals, and no empty series.
func TestFill(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cands    []string
		counts   [][]int64
		series   []string
		other    []int64
		received int
		failed   int
	}{
		{"other is the rest", []string{"a", "b"}, [][]int64{{1, 2, 0}, {0, 0, 0}, {3, 2, 1}, {0, 1, 0}},
			[]string{"a 3", "other 3"}, []int64{2, 0, 1}, 6, 1},
		{"nothing", []string{"a"}, [][]int64{{0, 0}, {0, 0}, {0, 0}}, nil, nil, 0, 0},
		{"entry added between counts", []string{"a"}, [][]int64{{2, 1}, {1, 1}, {0, 0}}, []string{"a 3"}, nil, 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c Chart
			c.Fill(tt.cands, tt.counts)
			var series []string
			for _, s := range c.Series {
				series = append(series, s.Name+" "+strconv.Itoa(s.Total))
				if s.Name == "other" && !slices.Equal(s.Counts, tt.other) {
					t.Errorf("other %v, want %v", s.Counts, tt.other)
				}
			}
			if !slices.Equal(series, tt.series) || c.Received != tt.received || c.FailedTotal != tt.failed {
				t.Errorf("series %v, received %d, failed %d; want %v, %d, %d", series, c.Received, c.FailedTotal, tt.series, tt.received, tt.failed)
			}
		})
	}
}

// TestDraw: bars stack per bucket (two in the first, one in the second), the failures are a line with dots
// where there are some, and the description says it all in words.
func TestDraw(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c := New(execindex.Filter{From: now.Add(-3 * time.Minute)}, now)
	n := len(c.Starts)
	counts := [][]int64{make([]int64, n), make([]int64, n), make([]int64, n)}
	counts[0][0], counts[1][0], counts[1][1], counts[2][1] = 2, 3, 1, 1
	c.Fill([]string{"invoice.paid"}, counts)
	retrying := make([]int64, n+2)
	retrying[0], retrying[1], retrying[2] = 2, 2, 2
	c.FillRetrying([][]int64{retrying})
	f := c.Draw()
	for _, v := range []View{f.Wide, f.Narrow} {
		if len(v.Bars) != 3 || len(v.FailedDots) != 1 || v.Failed == "" {
			t.Errorf("%s: %d bars, %d failure dots, line %q", v.Name, len(v.Bars), len(v.FailedDots), v.Failed)
		}
		if len(v.RetryingDots) != 1 || v.Retrying == "" || !strings.HasPrefix(v.RetryingDots[0].Title, "2 still retrying, received") {
			t.Errorf("%s: retrying dots %+v, line %q", v.Name, v.RetryingDots, v.Retrying)
		}
		if want := "4 received (invoice.paid 2, other 2)"; !strings.HasPrefix(v.Desc, want) || !strings.HasSuffix(v.Desc, "1 failed for good; 2 of them still retrying.") {
			t.Errorf("%s: %q", v.Name, v.Desc)
		}
	}
	if got := Thousands(1234567); got != "1,234,567" {
		t.Errorf("Thousands = %s", got)
	}
}

// TestFillRetrying: retrying.lua's answers, one per shard, summed per
// bucket; a shard whose retry set held more than it examined makes the
// counts lower bounds.
func TestFillRetrying(t *testing.T) {
	for _, tt := range []struct {
		name   string
		shards [][]int64
		counts []int64
		total  int
		capped bool
		text   string
	}{
		{"none", nil, []int64{0, 0, 0}, 0, false, "0"},
		{"one shard", [][]int64{{5, 5, 1, 0, 2}}, []int64{1, 0, 2}, 3, false, "3"},
		{"two shards", [][]int64{{1, 1, 0, 1, 0}, {2, 2, 1, 0, 0}}, []int64{1, 1, 0}, 2, false, "2"},
		{"capped", [][]int64{{12000, 10000, 4000, 3000, 3000}}, []int64{4000, 3000, 3000}, 10000, true, "at least 10,000"},
		{"short answer", [][]int64{{1}}, []int64{0, 0, 0}, 0, false, "0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Chart{Starts: make([]time.Time, 3)}
			c.FillRetrying(tt.shards)
			if !slices.Equal(c.Retrying, tt.counts) || c.RetryingTotal != tt.total || c.RetryingCapped != tt.capped || c.RetryingText() != tt.text {
				t.Errorf("got %v, %d, capped %v, %q; want %v, %d, %v, %q", c.Retrying, c.RetryingTotal, c.RetryingCapped, c.RetryingText(), tt.counts, tt.total, tt.capped, tt.text)
			}
		})
	}
}

// TestFit: with no time in the filter, the range fits the data: from the
// oldest execution of the last 24 hours, at least an hour, rounded down to
// its step; or around the newest when nothing came in the last 24 hours;
// or the last 24 hours when nothing is indexed.
func TestFit(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 7, 30, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 12, 7, h, m, 0, 0, time.UTC) }
	for _, tt := range []struct {
		name           string
		oldest, newest time.Time
		from, to       time.Time
		fitted         string
		step           time.Duration
	}{
		{"nothing", time.Time{}, time.Time{}, now.Add(-DefaultRange), now, "", 30 * time.Minute},
		{"the last 40 minutes: an hour", now.Add(-40 * time.Minute), now.Add(-time.Minute), at(11, 6), now, FitRecent, 2 * time.Minute},
		{"one execution just now", now.Add(-time.Second), now.Add(-time.Second), at(11, 6), now, FitRecent, 2 * time.Minute},
		{"the last 5 hours", now.Add(-5 * time.Hour), now, at(7, 0), now, FitRecent, 10 * time.Minute},
		{"all day", now.Add(-23*time.Hour - 50*time.Minute), now, at(12, 0).Add(-24 * time.Hour), now, FitRecent, 30 * time.Minute},
		{"3 days old, over 20 minutes", at(9, 40).Add(-72 * time.Hour), at(10, 1).Add(-72 * time.Hour),
			at(9, 0).Add(-72 * time.Hour), at(10, 2).Add(-72 * time.Hour), FitLatest, 2 * time.Minute},
		{"3 days old, over 10 hours", at(0, 5).Add(-72 * time.Hour), at(10, 1).Add(-72 * time.Hour),
			at(0, 0).Add(-72 * time.Hour), at(10, 15).Add(-72 * time.Hour), FitLatest, 15 * time.Minute},
		{"just over a day old", now.Add(-DefaultRange - time.Second), now.Add(-DefaultRange - time.Second),
			at(11, 6).Add(-DefaultRange), at(12, 8).Add(-DefaultRange), FitLatest, 2 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			from, to, fitted := Fit(now, tt.oldest, tt.newest)
			if !from.Equal(tt.from) || !to.Equal(tt.to) || fitted != tt.fitted {
				t.Errorf("Fit = %v, %v, %q; want %v, %v, %q", from, to, fitted, tt.from, tt.to, tt.fitted)
			}
			if step, n := Step(from, to); step != tt.step || n > MaxBuckets {
				t.Errorf("step %v in %d buckets, want %v", step, n, tt.step)
			}
			if !tt.oldest.IsZero() && (tt.oldest.Before(from) || tt.newest.After(to)) {
				t.Errorf("[%v, %v] leaves out the data [%v, %v]", from, to, tt.oldest, tt.newest)
			}
		})
	}
}

// TestSpan: the list's from and to for a click on a bucket or a drag
// across buckets, either way; the range's ends rounded out to whole
// seconds; indexes clamped.
func TestSpan(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 7, 30, 500_000_000, time.UTC)
	c := New(execindex.Filter{From: now.Add(-time.Hour)}, now) // 11:07:30.5, 11:08, 11:10, … 12:06, to 12:07:30.5
	for _, tt := range []struct {
		name     string
		i, j     int
		from, to string
	}{
		{"first bucket", 0, 0, "2026-12-07T11:07:30Z", "2026-12-07T11:08:00Z"},
		{"a bucket", 3, 3, "2026-12-07T11:12:00Z", "2026-12-07T11:14:00Z"},
		{"drag right", 3, 5, "2026-12-07T11:12:00Z", "2026-12-07T11:18:00Z"},
		{"drag left", 5, 3, "2026-12-07T11:12:00Z", "2026-12-07T11:18:00Z"},
		{"last bucket", 30, 30, "2026-12-07T12:06:00Z", "2026-12-07T12:07:31Z"},
		{"past the ends", -4, 99, "2026-12-07T11:07:30Z", "2026-12-07T12:07:31Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if from, to := c.Span(tt.i, tt.j); from != tt.from || to != tt.to {
				t.Errorf("Span(%d, %d) = %s, %s; want %s, %s", tt.i, tt.j, from, to, tt.from, tt.to)
			}
		})
	}
	// Narrowed to whole buckets, the chart shows just them.
	f := execindex.Filter{From: time.Date(2026, 12, 7, 11, 12, 0, 0, time.UTC), To: time.Date(2026, 12, 7, 11, 18, 0, 0, time.UTC)}
	if n := New(f, now); n.Step != time.Minute || len(n.Starts) != 6 {
		t.Errorf("6 minutes: %d buckets of %v, want 6 of 1m", len(n.Starts), n.Step)
	}
}
