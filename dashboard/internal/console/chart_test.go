package console

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/chart"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/failures"
)

// wantChart buckets execs and the failure times by hand, on the chart's
// bucket starts.
func wantChart(t *testing.T, c chart.Chart, execs []execindextest.Exec, failed []time.Time) (map[string][]int64, []int64) {
	t.Helper()
	at := func(r time.Time) int {
		if r.Before(c.From) || r.After(c.To) {
			return -1
		}
		i := len(c.Starts) - 1
		for i > 0 && r.Before(c.Starts[i]) {
			i--
		}
		return i
	}
	types := map[string][]int64{}
	for _, e := range execs {
		if types[e.Type] == nil {
			types[e.Type] = make([]int64, len(c.Starts))
		}
		if i := at(e.ReceivedAt); i >= 0 {
			types[e.Type][i]++
		}
	}
	fails := make([]int64, len(c.Starts))
	for _, f := range failed {
		if i := at(f); i >= 0 {
			fails[i]++
		}
	}
	return types, fails
}

// keepFailures stores failure times as the worker's failure store does.
func keepFailures(t *testing.T, rdb redis.UniversalClient, queue string, at []time.Time) {
	t.Helper()
	for i, f := range at {
		id := "evt_f" + string(rune('a'+i))
		if err := rdb.ZAdd(context.Background(), failures.AllKey(queue), redis.Z{Score: float64(f.UnixMilli()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func checkChart(t *testing.T, c chart.Chart, execs []execindextest.Exec, failed []time.Time, onlyPrefix string) {
	t.Helper()
	if n := len(c.Starts); n == 0 || n > chart.MaxBuckets {
		t.Fatalf("%d buckets", n)
	}
	if !c.Starts[0].Equal(c.From) {
		t.Errorf("first bucket at %v, want the range's start %v", c.Starts[0], c.From)
	}
	for i := 1; i < len(c.Starts); i++ {
		if c.Starts[i].Sub(c.Starts[0].Truncate(c.Step)) != time.Duration(i)*c.Step {
			t.Fatalf("bucket %d at %v: not aligned on %v", i, c.Starts[i], c.Step)
		}
	}
	types, fails := wantChart(t, c, execs, failed)
	var total int
	seen := 0
	for name, want := range types {
		if onlyPrefix != "" && !strings.HasPrefix(name, onlyPrefix) {
			continue
		}
		for _, x := range want {
			total += int(x)
		}
		for _, s := range c.Series {
			if s.Name == name {
				seen++
				for i := range want {
					if s.Counts[i] != want[i] {
						t.Errorf("%s bucket %d: %d, want %d", name, i, s.Counts[i], want[i])
					}
				}
			}
		}
	}
	if want := len(c.Series); seen != want {
		t.Errorf("series %v: %d of them are the seeded types", c.Series, seen)
	}
	if c.Received != total {
		t.Errorf("received %d, want %d", c.Received, total)
	}
	for i := range fails {
		if c.Failed[i] != fails[i] {
			t.Errorf("failed bucket %d: %d, want %d", i, c.Failed[i], fails[i])
		}
	}
	// Still retrying: the executions in state retry, of every type, by
	// received time.
	var retrying []execindextest.Exec
	for _, e := range execs {
		if e.State == execindex.StateRetry {
			retrying = append(retrying, e)
		}
	}
	_, wantRetrying := wantChart(t, c, nil, receivedTimes(retrying))
	total = 0
	for i, want := range wantRetrying {
		total += int(want)
		if c.Retrying[i] != want {
			t.Errorf("retrying bucket %d: %d, want %d", i, c.Retrying[i], want)
		}
	}
	if c.RetryingTotal != total || c.RetryingCapped {
		t.Errorf("retrying %d (capped %v), want %d", c.RetryingTotal, c.RetryingCapped, total)
	}
}

func receivedTimes(execs []execindextest.Exec) []time.Time {
	var ts []time.Time
	for _, e := range execs {
		ts = append(ts, e.ReceivedAt)
	}
	return ts
}

// TestChart counts the seeded executions and failures per bucket, against
// Redis, for the default range, a since, a type prefix and with shards.
func TestChart(t *testing.T) {
	now := time.Now()
	failed := []time.Time{t0.Add(-5 * time.Minute), t0.Add(40 * time.Minute), t0.Add(41 * time.Minute), now.Add(-48 * time.Hour)}

	b := setup(t, seeds)
	keepFailures(t, b.db.Client, "stripe", failed)
	types, err := b.srv.index.Values(context.Background(), execindex.FieldType)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		f      execindex.Filter
		prefix string
	}{
		{"fitted", execindex.Filter{}, ""},
		{"last 24 h", execindex.Filter{From: now.Add(-24 * time.Hour)}, ""},
		{"since 30m", execindex.Filter{From: now.Add(-30 * time.Minute)}, ""},
		{"7 days", execindex.Filter{From: now.Add(-7 * 24 * time.Hour)}, ""},
		{"invoice.*", execindex.Filter{TypePrefix: "invoice"}, "invoice."},
		{"one type", execindex.Filter{Type: "charge.failed"}, "charge.failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := b.srv.chart(context.Background(), tt.f, types, now)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, c, seeds, failed, tt.prefix)
			if c.Received == 0 {
				t.Error("nothing received")
			}
			if tt.name == "last 24 h" && (c.Step != 30*time.Minute || c.FailedTotal != 3 || c.RetryingTotal != 1) {
				t.Errorf("step %v, %d failed, %d retrying; want 30m, 3, 1", c.Step, c.FailedTotal, c.RetryingTotal)
			}
			// With no time, the range fits the seeds: from the oldest
			// (70 minutes ago) in bars of 2 minutes.
			if fitted := tt.f.From.IsZero(); fitted != (c.Fitted == chart.FitRecent) || tt.name == "fitted" && (c.Step != 2*time.Minute || c.From.After(seeds[0].ReceivedAt) || c.Received != 8) {
				t.Errorf("fitted %q: %v–%v in %v, %d received", c.Fitted, c.From, c.To, c.Step, c.Received)
			}
		})
	}

	t.Run("shards", func(t *testing.T) {
		sb, _ := setupShards(t, shardSeeds, 3)
		keepFailures(t, sb.db.Client, "stripe-1", failed[:2])
		keepFailures(t, sb.db.Client, "stripe-2", failed[2:])
		c, err := sb.srv.chart(context.Background(), execindex.Filter{}, types, now)
		if err != nil {
			t.Fatal(err)
		}
		checkChart(t, c, shardSeeds, failed, "")
		if c.Received != 8 || c.FailedTotal != 3 {
			t.Errorf("received %d, failed %d over the shards; want 8, 3", c.Received, c.FailedTotal)
		}
	})

	t.Run("api", func(t *testing.T) {
		rec := b.op(t, "GET", "/api/chart?type=invoice.*&since=24h")
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		var got struct {
			Received []struct {
				Name  string
				Total int
			}
			ReceivedTotal int `json:"received_total"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.ReceivedTotal != 5 || len(got.Received) != 2 || got.Received[0].Name != "invoice.payment_failed" || got.Received[0].Total != 4 {
			t.Errorf("got %+v, want 5 invoice.*: 4 invoice.payment_failed first", got)
		}
		if rec := b.op(t, "GET", "/api/chart?sinse=1h"); rec.Code != 400 {
			t.Errorf("unknown parameter: %d", rec.Code)
		}
	})

	t.Run("page", func(t *testing.T) {
		rec := b.op(t, "GET", "/")
		body := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(body, `<svg class="wide" viewBox="0 0 1200 200"`) || !strings.Contains(body, `<svg class="narrow"`) || strings.Count(body, `<rect class="bar `) < 10 {
			t.Fatalf("%d: no chart with bars", rec.Code)
		}
		if !strings.Contains(body, `role="group"`) || !strings.Contains(body, "<desc id=\"chart-desc-wide\">8 received") {
			t.Error("the chart is not described")
		}
		if !strings.Contains(body, "failed for good 3</li>") || !strings.Contains(body, "</html>") {
			t.Error("the chart's legend or the page after it is missing")
		}
	})
}
