package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeapi"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// bundle is what a recovery test works with.
type bundle struct {
	db     *redistest.DB
	api    *stripetest.API
	rec    *recovery.Recoverer
	insp   *asynq.Inspector
	client *asynq.Client
	opts   stripetask.Options
	waits  []time.Duration
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := redistest.New(t)
	b := &bundle{db: db, api: stripetest.NewAPI(t), opts: stripetask.Options{Shards: 3}}
	b.insp = asynq.NewInspectorFromRedisClient(db.Client)
	b.client = asynq.NewClientFromRedisClient(db.Client)
	var mu sync.Mutex
	b.rec = &recovery.Recoverer{
		Lister: &recovery.Lister{
			Backend: stripeapi.NewBackend(b.api.URL, 2, 10*time.Second),
			Key:     "rk_test_recovery",
			Sleep: func(_ context.Context, d time.Duration) error {
				mu.Lock()
				b.waits = append(b.waits, d)
				mu.Unlock()
				return nil
			},
		},
		Store: &recovery.Store{
			RDB: db.Client, Tasks: b.insp, Queue: b.client, Task: b.opts,
			Marks: dedupe.New(db.Client, dedupe.DefaultWindow),
			Index: execindex.NewShards(db.Client, b.opts),
		},
		Events:       events.Handled(),
		DedupeWindow: dedupe.DefaultWindow,
	}
	return b
}

// makeEvents makes n events of the handled types, created a minute apart
// from start, with IDs prefix_0 … .
func makeEvents(prefix string, n int, start time.Time) [][]byte {
	types := events.Handled()
	var out [][]byte
	for i := range n {
		out = append(out, stripetest.Event(types[i%len(types)], fmt.Sprintf("evt_%s_%d", prefix, i), start.Add(time.Duration(i)*time.Minute)))
	}
	return out
}

// deliver stores bodies as the api would: the task, then the marker.
func (b *bundle) deliver(t *testing.T, bodies ...[]byte) {
	t.Helper()
	ctx := context.Background()
	for _, body := range bodies {
		task, m, err := stripetask.New(body, b.opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			b.rec.Store.Marks.Mark(ctx, p, stripetask.QueueFor(m.ID, b.opts), m.ID, m.Created)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bundle) run(t *testing.T, req recovery.Request) recovery.Progress {
	t.Helper()
	p, err := b.rec.Run(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return p
}

// task returns the stored task of id, failing when there is none.
func (b *bundle) task(t *testing.T, id string) *asynq.TaskInfo {
	t.Helper()
	info, err := b.insp.GetTaskInfo(stripetask.QueueFor(id, b.opts), id)
	if err != nil {
		t.Fatalf("task %s: %v", id, err)
	}
	return info
}

func TestDryRunRunRerun(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-5 * time.Hour)
	all := makeEvents("a", 30, start)
	b.api.Add("", all...)
	// An event of a type stripeq does not permit is not listed.
	b.api.Add("", stripetest.Edit(stripetest.Event("customer.created", "evt_other", start), func(e map[string]any) { e["type"] = "balance.available" }))
	delivered := all[:18]
	b.deliver(t, delivered...)
	// One delivered event has lost its task but kept its marker.
	if err := b.insp.DeleteTask(stripetask.QueueFor("evt_a_0", b.opts), "evt_a_0"); err != nil {
		t.Fatal(err)
	}
	req := recovery.Request{Since: start.Add(-time.Minute), DryRun: true}

	dry := b.run(t, req)
	if dry.Listed != 30 || dry.Missing != 12 || dry.Enqueued != 0 {
		t.Fatalf("dry run: listed %d missing %d enqueued %d, want 30 12 0", dry.Listed, dry.Missing, dry.Enqueued)
	}
	if _, err := b.insp.GetTaskInfo(stripetask.QueueFor("evt_a_20", b.opts), "evt_a_20"); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("a dry run stored evt_a_20: %v", err)
	}
	if sum(dry.MissingByType) != 12 || dry.MissingByAccount[""] != 12 {
		t.Errorf("dry run breakdown: %v %v", dry.MissingByType, dry.MissingByAccount)
	}

	req.DryRun = false
	got := b.run(t, req)
	if got.Listed != 30 || got.Missing != 12 || got.Enqueued != 12 {
		t.Fatalf("run: listed %d missing %d enqueued %d, want 30 12 12", got.Listed, got.Missing, got.Enqueued)
	}
	for i := 18; i < 30; i++ {
		id := fmt.Sprintf("evt_a_%d", i)
		info := b.task(t, id)
		if info.Headers[stripetask.HeaderSource] != stripetask.SourceRecovery {
			t.Errorf("%s: source header %q", id, info.Headers[stripetask.HeaderSource])
		}
		if info.Queue != stripetask.QueueFor(id, b.opts) {
			t.Errorf("%s: queue %s", id, info.Queue)
		}
		body, err := stripetask.Body(info.Payload)
		if err != nil || string(body) != string(all[i]) {
			t.Errorf("%s: payload differs from Stripe's event (%v)", id, err)
		}
		m, _ := stripetask.Decode(all[i])
		seen, err := b.rec.Store.Marks.Check(context.Background(), b.db.Client, info.Queue, id, m.Created).Result()
		if err != nil || !seen {
			t.Errorf("%s: no duplicate marker (%v)", id, err)
		}
		if _, ok, err := b.rec.Store.Index.For(id).ReceivedAt(context.Background(), id); err != nil || !ok {
			t.Errorf("%s: no index entry (%v)", id, err)
		}
	}
	if _, err := b.insp.GetTaskInfo(stripetask.QueueFor("evt_a_0", b.opts), "evt_a_0"); err == nil {
		t.Error("evt_a_0, whose marker remains, was stored again")
	}

	again := b.run(t, req)
	if again.Listed != 30 || again.Missing != 0 || again.Enqueued != 0 {
		t.Fatalf("second run: listed %d missing %d enqueued %d, want 30 0 0", again.Listed, again.Missing, again.Enqueued)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestPagesAndTypes lists more than a page in each of the two type
// filters (21 handled types, Stripe takes 20), within the window only.
func TestPagesAndTypes(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-50 * time.Hour)
	b.api.Add("", makeEvents("p", 250, start)...)
	// Outside the window on both sides.
	b.api.Add("", stripetest.Event("customer.created", "evt_before", start.Add(-time.Hour)))
	b.api.Add("", stripetest.Event("customer.created", "evt_after", start.Add(300*time.Minute)))
	got := b.run(t, recovery.Request{Since: start, Until: start.Add(249 * time.Minute), DryRun: true})
	if got.Listed != 250 || got.Missing != 250 {
		t.Fatalf("listed %d missing %d, want 250 250", got.Listed, got.Missing)
	}
	var pages, withAfter int
	for _, r := range b.api.Requests() {
		if r.Path != "/v1/events" {
			continue
		}
		pages++
		if r.Status != 200 {
			t.Errorf("Stripe answered %d to %s", r.Status, r.Query)
		}
		if strings.Contains(r.Query, "starting_after=") {
			withAfter++
		}
		if !strings.Contains(r.Query, "types[0]=") || strings.Contains(r.Query, "types[20]=") {
			t.Errorf("page without a types filter of at most 20: %s", r.Query)
		}
		if !strings.Contains(r.Query, "limit=100") {
			t.Errorf("page without limit=100: %s", r.Query)
		}
	}
	// 21 types: 20 in one filter (about 238 events, 3 pages), 1 in the
	// other (12 events, 1 page).
	if pages != 4 || withAfter != 2 || got.Pages != 4 {
		t.Errorf("%d pages (%d reported), %d with starting_after; want 4, 2", pages, got.Pages, withAfter)
	}
}

func TestConnectedAccounts(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-time.Hour)
	b.api.Add("", makeEvents("plat", 3, start)...)
	b.api.Add("acct_1ConnA", makeEvents("conna", 4, start)...)
	b.api.Add("acct_1ConnB", makeEvents("connb", 5, start)...)

	one := b.run(t, recovery.Request{Since: start.Add(-time.Minute), Account: "acct_1ConnB", DryRun: true})
	if one.Listed != 5 || one.MissingByAccount["acct_1ConnB"] != 5 || one.Accounts != 1 {
		t.Fatalf("account=acct_1ConnB: %+v", one)
	}
	for _, r := range b.api.Requests() {
		if r.Path == "/v1/accounts" {
			t.Error("account= listed the connected accounts")
		}
		if r.Path == "/v1/events" && r.Account != "acct_1ConnB" {
			t.Errorf("events listed with Stripe-Account %q", r.Account)
		}
	}

	all := b.run(t, recovery.Request{Since: start.Add(-time.Minute)})
	if all.Listed != 12 || all.Enqueued != 12 || all.Accounts != 3 {
		t.Fatalf("every account: %+v", all)
	}
	if got := b.task(t, "evt_conna_0").Headers[stripetask.HeaderAccount]; got != "acct_1ConnA" {
		t.Errorf("account header %q", got)
	}
}

func TestRateLimited(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-time.Hour)
	b.api.Add("", makeEvents("r", 3, start)...)
	b.api.Fail429(2, 3)
	got := b.run(t, recovery.Request{Since: start.Add(-time.Minute), DryRun: true})
	if got.Listed != 3 {
		t.Fatalf("listed %d, want 3", got.Listed)
	}
	if fmt.Sprint(b.waits) != "[3s 3s]" {
		t.Errorf("waits %v, want Retry-After's [3s 3s]", b.waits)
	}
	b.waits = nil
	b.api.Fail429(1, -1)
	b.run(t, recovery.Request{Since: start.Add(-time.Minute), DryRun: true})
	if fmt.Sprint(b.waits) != "[1s]" {
		t.Errorf("waits %v without Retry-After, want [1s]", b.waits)
	}
	b.api.Fail429(100, 0)
	if _, err := b.rec.Run(context.Background(), recovery.Request{Since: start}, nil); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("after 8 refusals: %v, want Stripe's 429", err)
	}
}

func TestWindow(t *testing.T) {
	b := setup(t)
	now := time.Now()
	for _, tc := range []struct {
		name string
		req  recovery.Request
		want error
	}{
		{"past DEDUPE_WINDOW", recovery.Request{Since: now.Add(-dedupe.DefaultWindow)}, recovery.ErrTooOld},
		{"Stripe's 30 days", recovery.Request{Since: now.Add(-30 * 24 * time.Hour)}, recovery.ErrTooOld},
		{"since after until", recovery.Request{Since: now.Add(-time.Hour), Until: now.Add(-2 * time.Hour)}, recovery.ErrWindow},
		{"no since", recovery.Request{}, recovery.ErrWindow},
		{"bad account", recovery.Request{Since: now.Add(-time.Hour), Account: "cus_1"}, recovery.ErrWindow},
		{"within", recovery.Request{Since: now.Add(-dedupe.DefaultWindow + time.Hour)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.rec.Check(tc.req)
			if !errors.Is(err, tc.want) {
				t.Errorf("Check: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := b.rec.Run(context.Background(), recovery.Request{Since: now.Add(-8 * 24 * time.Hour)}, nil); !errors.Is(err, recovery.ErrTooOld) {
		t.Errorf("Run: %v", err)
	}
	if n := len(b.api.Requests()); n != 0 {
		t.Errorf("a refused window sent %d requests to Stripe", n)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"2h":                   "2026-11-30T10:00:00Z",
		"7d":                   "2026-11-23T12:00:00Z",
		"90m":                  "2026-11-30T10:30:00Z",
		"2026-11-29T08:00:00Z": "2026-11-29T08:00:00Z",
	} {
		got, err := recovery.ParseTime("since", in, now)
		if err != nil || got.UTC().Format(time.RFC3339) != want {
			t.Errorf("%q: %v %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-2h", "yesterday", "7days", "2026-11-29"} {
		if _, err := recovery.ParseTime("since", in, now); !errors.Is(err, recovery.ErrWindow) {
			t.Errorf("%q: %v, want ErrWindow", in, err)
		}
	}
}

// TestRaces runs two recoveries and webhook-like deliveries of the same
// events at once: every event is stored once, and the enqueued counts add
// up to the events the deliveries did not store.
func TestRaces(t *testing.T) {
	b := setup(t)
	start := time.Now().Add(-time.Hour)
	all := makeEvents("race", 60, start)
	b.api.Add("", all...)
	var wg sync.WaitGroup
	results := make([]recovery.Progress, 2)
	delivered := make([]bool, len(all))
	for i := range results {
		wg.Go(func() {
			p, err := b.rec.Run(context.Background(), recovery.Request{Since: start.Add(-time.Minute)}, nil)
			if err != nil {
				t.Error(err)
			}
			results[i] = p
		})
	}
	wg.Go(func() {
		ctx := context.Background()
		for i, body := range all {
			if i%2 == 1 {
				continue
			}
			task, m, _ := stripetask.New(body, b.opts)
			q := stripetask.QueueFor(m.ID, b.opts)
			if seen, _ := b.rec.Store.Marks.Check(ctx, b.db.Client, q, m.ID, m.Created).Result(); seen {
				continue
			}
			if _, err := b.client.Enqueue(task); err == nil {
				delivered[i] = true
			} else if !errors.Is(err, asynq.ErrTaskIDConflict) {
				t.Error(err)
			}
			b.db.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
				b.rec.Store.Marks.Mark(ctx, p, q, m.ID, m.Created)
				return nil
			})
		}
	})
	wg.Wait()
	byDelivery := 0
	for _, d := range delivered {
		if d {
			byDelivery++
		}
	}
	if got := results[0].Enqueued + results[1].Enqueued + byDelivery; got != len(all) {
		t.Errorf("stored %d + %d by recoveries, %d by deliveries: %d, want %d", results[0].Enqueued, results[1].Enqueued, byDelivery, got, len(all))
	}
	for i := range all {
		b.task(t, fmt.Sprintf("evt_race_%d", i))
	}
}
