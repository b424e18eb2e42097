package console

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"golang.org/x/time/rate"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// setupShards returns a dashboard with QUEUE_SHARDS=shards over a fresh
// Redis holding execs, each seeded in its shard queue, as the api would.
func setupShards(t *testing.T, execs []execindextest.Exec, shards int) (*bundle, *asynq.Inspector) {
	t.Helper()
	db := redistest.New(t)
	vars := map[string]string{
		"REDIS_URL": db.URL, "QUEUE_SHARDS": "3",
		"DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass,
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Task.Shards != shards {
		t.Fatalf("QUEUE_SHARDS read as %d", cfg.Task.Shards)
	}
	opts := cfg.Task
	byQueue := map[string][]execindextest.Exec{}
	for _, e := range execs {
		q := stripetask.QueueFor(e.ID, opts)
		byQueue[q] = append(byQueue[q], e)
	}
	if len(byQueue) != shards {
		t.Fatalf("seeds use shards %v, want all %d", slices.Collect(maps.Keys(byQueue)), shards)
	}
	var env *execindextest.Env
	for _, q := range slices.Sorted(maps.Keys(byQueue)) {
		env = execindextest.Seed(t, db.Client, q, byQueue[q])
	}
	mon := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: db.Opt})
	t.Cleanup(func() { mon.Close() })
	s := newServer(slog.New(slog.DiscardHandler), cfg, db.Client, mon, mon, env.Inspector, env.Client)
	s.reads = auth.NewUserLimits(rate.Inf, 1)
	return &bundle{h: s.handler(), srv: s, env: env, db: db}, env.Inspector
}

// shardSeeds are seeds under IDs of their own: asynq broadcasts a
// cancellation to every server of the Redis instance, whatever the
// database, so a test elsewhere cancelling evt_07 must not reach these.
// With QUEUE_SHARDS=3 they lie in stripe-0 (evt_s01, 06), stripe-1
// (evt_s03, 05) and stripe-2 (evt_s02, 04, 07, 08).
var shardSeeds = func() []execindextest.Exec {
	out := slices.Clone(seeds)
	for i := range out {
		out[i].ID = strings.Replace(out[i].ID, "evt_", "evt_s", 1)
	}
	return out
}()

// TestAPIShards: the Console shows the shards as one queue.
func TestAPIShards(t *testing.T) {
	b, insp := setupShards(t, shardSeeds, 3)
	tests := []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"evt_s08", "evt_s07", "evt_s06", "evt_s05", "evt_s04", "evt_s03", "evt_s02", "evt_s01"}, 8},
		{"type=invoice.*", []string{"evt_s08", "evt_s04", "evt_s03", "evt_s02", "evt_s01"}, 5},
		{"state=failed", []string{"evt_s08", "evt_s02", "evt_s01"}, 3},
		{"state=completed,pending", []string{"evt_s05", "evt_s04", "evt_s03"}, 3},
		{"customer=cus_Y", []string{"evt_s07", "evt_s04"}, 2},
		{"since=30m", []string{"evt_s08", "evt_s07", "evt_s06", "evt_s05", "evt_s04", "evt_s03", "evt_s02"}, 7},
		{"id=evt_s07", []string{"evt_s07"}, 1},
		{"limit=3", []string{"evt_s08", "evt_s07", "evt_s06"}, 8},
		{"limit=3&page=2", []string{"evt_s05", "evt_s04", "evt_s03"}, 8},
		{"limit=3&page=3", []string{"evt_s02", "evt_s01"}, 8},
		{"limit=1&page=8", []string{"evt_s01"}, 8},
		{"limit=3&page=4", nil, 8},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			l := decode[listing](t, b.op(t, "GET", "/api/executions?"+tt.query), 200)
			if got := rowIDs(l); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if l.Total != tt.total {
				t.Errorf("total = %d, want %d", l.Total, tt.total)
			}
		})
	}

	t.Run("counts summed over shards", func(t *testing.T) {
		l := decode[listing](t, b.op(t, "GET", "/api/executions?type=invoice.payment_failed&state=archived"), 200)
		want := map[string]int{"pending": 0, "active": 0, "scheduled": 0, "retry": 1, "archived": 2, "completed": 1}
		for k, v := range want {
			if l.Counts[k] != v {
				t.Errorf("counts = %v, want %v", l.Counts, want)
				break
			}
		}
		l = decode[listing](t, b.op(t, "GET", "/api/executions"), 200)
		want = map[string]int{"pending": 1, "active": 1, "scheduled": 1, "retry": 1, "archived": 2, "completed": 2}
		if !maps.Equal(map[string]int(l.Counts), want) {
			t.Errorf("counts = %v, want %v", l.Counts, want)
		}
	})

	t.Run("facets summed over shards", func(t *testing.T) {
		f := decode[map[string][]struct {
			Value string
			Count int
		}](t, b.op(t, "GET", "/api/facets"), 200)
		got := map[string]int{}
		for _, v := range f["type"] {
			got[v.Value] = v.Count
		}
		if got["invoice.payment_failed"] != 4 || got["invoice.paid"] != 1 || len(got) != 5 {
			t.Errorf("types = %v", got)
		}
	})

	t.Run("detail finds the shard", func(t *testing.T) {
		d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_s07"), 200)
		if d.Queue != "stripe-2" || d.State != "active" {
			t.Errorf("evt_s07: queue %q state %q", d.Queue, d.State)
		}
		if rec := b.op(t, "GET", "/api/executions/evt_nope"); rec.Code != 404 {
			t.Errorf("unknown: %d", rec.Code)
		}
	})

	t.Run("re-run of a completed task copies it into its shard", func(t *testing.T) {
		r := decode[rerunResult](t, b.op(t, "POST", "/api/executions/evt_s04/rerun"), 200)
		if r.Action != "copy" || r.NewID != "evt_s04:rerun:1" {
			t.Fatalf("re-run = %+v", r)
		}
		cp, err := insp.GetTaskInfo("stripe-2", "evt_s04:rerun:1")
		if err != nil {
			t.Fatalf("copy not in the original's shard stripe-2: %v", err)
		}
		if cp.Headers["rerunOf"] != "evt_s04" || cp.State != asynq.TaskStatePending {
			t.Errorf("copy %+v", cp)
		}
		d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_s04"), 200)
		if len(d.Reruns) != 1 || d.Reruns[0].ID != "evt_s04:rerun:1" || d.Reruns[0].State != "pending" {
			t.Errorf("original's history = %+v", d.Reruns)
		}
		d = decode[detail](t, b.op(t, "GET", "/api/executions/evt_s04:rerun:1"), 200)
		if d.Queue != "stripe-2" || d.RerunOf != "evt_s04" {
			t.Errorf("copy: queue %q rerun_of %q", d.Queue, d.RerunOf)
		}
		l := decode[listing](t, b.op(t, "GET", "/api/executions?id=evt_s04"), 200)
		if got := rowIDs(l); !slices.Equal(got, []string{"evt_s04:rerun:1", "evt_s04"}) {
			t.Errorf("search by event ID = %v", got)
		}
		// evt_s03 is completed in stripe-1: its copy goes there.
		r = decode[rerunResult](t, b.op(t, "POST", "/api/executions/evt_s03/rerun"), 200)
		if _, err := insp.GetTaskInfo("stripe-1", r.NewID); err != nil {
			t.Errorf("copy %s not in stripe-1: %v", r.NewID, err)
		}
	})

	t.Run("bulk re-run over every shard", func(t *testing.T) {
		q := "state=failed"
		res := decode[bulkResult](t, b.op(t, "POST", "/api/executions/rerun?"+q+"&expect=3"), 200)
		if res.Matched != 3 || res.Run != 3 || res.Failed != 0 {
			t.Errorf("bulk = %+v", res)
		}
		for id, q := range map[string]string{"evt_s01": "stripe-0", "evt_s02": "stripe-2", "evt_s08": "stripe-2"} {
			if info, err := insp.GetTaskInfo(q, id); err != nil || info.State != asynq.TaskStatePending {
				t.Errorf("%s in %s: %v %v", id, q, info, err)
			}
		}
	})

	t.Run("cancel and delete find the shard", func(t *testing.T) {
		if rec := b.op(t, "POST", "/api/executions/evt_s07/cancel"); rec.Code != 200 {
			t.Fatalf("cancel active: %d %s", rec.Code, rec.Body.String())
		}
		poll.Until(t, 5*time.Second, "the cancelled task in retry in its shard", func() bool {
			info, err := insp.GetTaskInfo("stripe-2", "evt_s07")
			return err == nil && info.State == asynq.TaskStateRetry
		})
		if rec := b.op(t, "DELETE", "/api/executions/evt_s06"); rec.Code != 200 {
			t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
		}
		if _, err := insp.GetTaskInfo("stripe-0", "evt_s06"); err == nil {
			t.Error("evt_s06 still in stripe-0")
		}
		if rec := b.op(t, "DELETE", "/api/executions/evt_s06"); rec.Code != 404 {
			t.Errorf("delete again: %d", rec.Code)
		}
	})
}
