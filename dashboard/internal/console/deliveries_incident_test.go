package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
)

// seedDelivery is one delivery of seedDeliveries: its event, destination
// and the state it is brought to.
type seedDelivery struct {
	Event, Type, Customer, Dest string
	// State is pending, archived (its one attempt failed for good),
	// retry (failed, retried in an hour) or completed (after one failed
	// attempt, so that asynq keeps an old error).
	State string
	// Created is when Stripe created the event (default now).
	Created time.Time
}

// seedDeliveries stores the deliveries and brings each to its state with
// a worker of the destination queues, as the real one would leave them,
// then stops it; it returns their IDs.
func seedDeliveries(t *testing.T, b *bundle, ds []seedDelivery) []string {
	t.Helper()
	client := asynq.NewClientFromRedisClient(b.db.Client)
	insp := asynq.NewInspectorFromRedisClient(b.db.Client)
	ids := make([]string, len(ds))
	want := map[string]seedDelivery{}
	queues := map[string]int{}
	enqueue := func(i int) {
		d := ds[i]
		created := d.Created
		if created.IsZero() {
			created = time.Now()
		}
		body := execindextest.Body(execindextest.Exec{ID: d.Event, Type: d.Type, Customer: d.Customer, ReceivedAt: created})
		task, m, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = delivery.ID(m.ID, d.Dest)
		if _, err := client.Enqueue(delivery.New(task, m.ID, d.Dest, 0)); err != nil {
			t.Fatal(err)
		}
		want[ids[i]] = d
	}
	// Pending ones are stored once the worker is gone.
	defer func() {
		for i, d := range ds {
			if d.State == "pending" {
				enqueue(i)
			}
		}
	}()
	for i, d := range ds {
		if d.State != "pending" {
			enqueue(i)
			queues[delivery.Queue(d.Dest)] = 1
		}
	}
	if len(queues) > 0 {
		var mu sync.Mutex
		tries := map[string]int{}
		srv := asynq.NewServerFromRedisClient(b.db.Client, asynq.Config{
			Queues: queues, Concurrency: 4, LogLevel: asynq.FatalLevel,
			RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		})
		err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			mu.Lock()
			tries[id]++
			n := tries[id]
			mu.Unlock()
			switch want[id].State {
			case "archived":
				return fmt.Errorf("destination %s answered 503: %w", want[id].Dest, asynq.SkipRetry)
			case "completed":
				if n > 1 {
					return nil
				}
			}
			return errors.New("destination answered 500")
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		for id, d := range want {
			if d.State == "pending" {
				continue
			}
			q := delivery.Queue(d.Dest)
			poll.Until(t, 10*time.Second, id+" in "+d.State, func() bool {
				info, err := insp.GetTaskInfo(q, id)
				if err != nil {
					return false
				}
				if d.State == "completed" && info.State == asynq.TaskStateRetry {
					insp.RunTask(q, id) // its second attempt completes
				}
				return info.State.String() == d.State
			})
		}
	}
	return ids
}

// incident is an app outage: deliveries to app failed for cus_A and
// cus_B; crm is fine.
var incident = []seedDelivery{
	{Event: "evt_i1", Type: "invoice.payment_failed", Customer: "cus_A", Dest: "app", State: "archived"},
	{Event: "evt_i2", Type: "invoice.paid", Customer: "cus_A", Dest: "app", State: "completed"},
	{Event: "evt_i3", Type: "invoice.paid", Customer: "cus_B", Dest: "crm", State: "pending"},
	{Event: "evt_i4", Type: "customer.created", Customer: "cus_B", Dest: "app", State: "retry"},
	{Event: "evt_i5", Type: "invoice.payment_failed", Customer: "cus_B", Dest: "app", State: "archived"},
	{Event: "evt_i6", Type: "invoice.paid", Customer: "cus_C", Dest: "app", State: "pending", Created: time.Now().Add(-3 * time.Hour)},
}

// TestDeliveriesFilters: customer, event type (exact or prefix), event,
// destination, state and time apply at once, with the counts per state
// of what the other filters match; pages of size; a completed delivery
// shows no old error.
func TestDeliveriesFilters(t *testing.T) {
	b := setup(t, nil)
	ids := seedDeliveries(t, b, incident)
	type listing struct {
		Deliveries []deliveryRow
		Counts     map[string]int
		Total      int
	}
	rowIDs := func(l listing) []string {
		var out []string
		for _, r := range l.Deliveries {
			out = append(out, strings.TrimSuffix(r.ID, ":dest:"+r.Destination))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		query  string
		want   []string
		counts map[string]int
	}{
		{"", []string{"evt_i1", "evt_i2", "evt_i3", "evt_i4", "evt_i5", "evt_i6"}, map[string]int{"archived": 2, "completed": 1, "pending": 2, "retry": 1}},
		{"?customer=cus_B", []string{"evt_i3", "evt_i4", "evt_i5"}, map[string]int{"archived": 1, "pending": 1, "retry": 1}},
		{"?customer=cus_B&destination=app&state=archived", []string{"evt_i5"}, map[string]int{"archived": 1, "retry": 1}},
		{"?type=invoice.*&state=archived", []string{"evt_i1", "evt_i5"}, map[string]int{"archived": 2, "completed": 1, "pending": 2}},
		{"?type=invoice.paid&customer=cus_A", []string{"evt_i2"}, map[string]int{"completed": 1}},
		{"?event=evt_i4", []string{"evt_i4"}, map[string]int{"retry": 1}},
		{"?since=1h", []string{"evt_i1", "evt_i2", "evt_i3", "evt_i4", "evt_i5"}, map[string]int{"archived": 2, "completed": 1, "pending": 1, "retry": 1}},
		{"?to=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), []string{"evt_i6"}, map[string]int{"pending": 1}},
	} {
		l := decode[listing](t, b.op(t, "GET", "/api/deliveries"+tt.query), 200)
		if got := rowIDs(l); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
		for st, n := range tt.counts {
			if l.Counts[st] != n {
				t.Errorf("%s: counts %v, want %v", tt.query, l.Counts, tt.counts)
				break
			}
		}
	}
	p1 := decode[listing](t, b.op(t, "GET", "/api/deliveries?size=4"), 200)
	p2 := decode[listing](t, b.op(t, "GET", "/api/deliveries?size=4&page=2"), 200)
	if len(p1.Deliveries) != 4 || len(p2.Deliveries) != 2 || p1.Total != 6 || slices.ContainsFunc(p2.Deliveries, func(r deliveryRow) bool {
		return slices.Contains(rowIDs(p1), strings.TrimSuffix(r.ID, ":dest:"+r.Destination))
	}) {
		t.Errorf("pages of 4: %v then %v of %d", rowIDs(p1), rowIDs(p2), p1.Total)
	}
	if !p1.Deliveries[0].At.After(p2.Deliveries[1].At) {
		t.Errorf("not newest first: %v … %v", p1.Deliveries[0].At, p2.Deliveries[1].At)
	}
	for _, bad := range []string{"?state=gone", "?sinse=1h", "?since=soon", "?from=yesterday", "?destination=No!"} {
		if rec := b.op(t, "GET", "/api/deliveries"+bad); rec.Code != 400 {
			t.Errorf("%s: %d, want 400", bad, rec.Code)
		}
	}
	completed := decode[deliveryDetail](t, b.op(t, "GET", "/api/deliveries/"+ids[1]), 200)
	if completed.State != "completed" || completed.LastError != "" || completed.LastFailed != nil {
		t.Errorf("a completed delivery shows its old error: %q %v", completed.LastError, completed.LastFailed)
	}
	if page := b.op(t, "GET", "/deliveries/"+ids[1]).Body.String(); strings.Contains(page, "answered 500") && strings.Contains(page, `id="last-error"`) {
		t.Error("the completed delivery's page shows an old error as its last error")
	}
}

// TestDeliveryDetailShowsWhatWasSent: the headers of an attempt, the
// webhook-id among them, the body, attempts newest first, and links to
// the execution and back.
func TestDeliveryDetailShowsWhatWasSent(t *testing.T) {
	b := setup(t, []execindextest.Exec{{ID: "evt_i1", Type: "invoice.payment_failed", Customer: "cus_A", State: "completed"}})
	ids := seedDeliveries(t, b, incident[:1])
	for i, status := range []int{500, 503} {
		a, _ := json.Marshal(delivery.Attempt{At: time.Now().Add(time.Duration(i-2) * time.Minute), Status: status})
		b.db.Client.RPush(t.Context(), keyspace.DeliveryAttempts(ids[0]), a)
	}
	d := decode[deliveryDetail](t, b.op(t, "GET", "/api/deliveries/"+ids[0]), 200)
	if len(d.Attempts) != 2 || d.Attempts[0].Status != 503 || !d.Attempts[0].At.After(d.Attempts[1].At) {
		t.Errorf("attempts not newest first: %+v", d.Attempts)
	}
	headers := map[string]string{}
	for _, h := range d.Headers {
		headers[h.Name] = h.Value
	}
	if headers["webhook-id"] != "evt_i1" || headers["stripe-event-type"] != "invoice.payment_failed" || headers["webhook-timestamp"] != fmt.Sprint(d.Attempts[0].At.Unix()) {
		t.Errorf("headers %v", headers)
	}
	if !strings.Contains(string(d.Body), `"id":"evt_i1"`) || d.ExecutionURL != "/executions/evt_i1" {
		t.Errorf("body %.80s, execution %q", d.Body, d.ExecutionURL)
	}
	page := b.op(t, "GET", "/deliveries/"+ids[0]).Body.String()
	for _, want := range []string{`<th class="mono">webhook-id</th><td class="mono">evt_i1</td>`, `id="sent-body"`, `href="/executions/evt_i1"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the delivery page lacks %s", want)
		}
	}
	ex := decode[detail](t, b.op(t, "GET", "/api/executions/evt_i1"), 200)
	if len(ex.Deliveries) != 1 || ex.Deliveries[0].ID != ids[0] || ex.DeliveriesURL != "/deliveries?event=evt_i1" {
		t.Errorf("the execution's deliveries: %+v %q", ex.Deliveries, ex.DeliveriesURL)
	}
}

// TestDeliveriesBulkRerun: "re-send all matching" acts only on the count
// confirmed, skips pending ones, and is audited with its filter, count
// and IDs; "re-send selected" names what it re-sent; both are for
// operators only.
func TestDeliveriesBulkRerun(t *testing.T) {
	b := setup(t, nil)
	ids := seedDeliveries(t, b, incident)
	filter := "destination=app&customer=cus_B"
	if rec := b.op(t, "POST", "/api/deliveries/rerun?"+filter+"&expect=5&reason=INC-1"); rec.Code != 409 {
		t.Errorf("a stale count: %d %s", rec.Code, rec.Body)
	}
	if rec := b.do(t, req{method: "POST", path: "/api/deliveries/rerun?" + filter + "&expect=2", user: viewerUser, pass: viewerPass}); rec.Code != 403 {
		t.Errorf("a viewer: %d", rec.Code)
	}
	res := decode[bulkResult](t, b.op(t, "POST", "/api/deliveries/rerun?"+filter+"&expect=2&reason=INC-1"), 200)
	if res.Matched != 2 || res.Run != 2 || res.Skipped != 0 {
		t.Errorf("re-send all matching: %+v", res)
	}
	insp := asynq.NewInspectorFromRedisClient(b.db.Client)
	for _, id := range []string{ids[3], ids[4]} {
		if info, err := insp.GetTaskInfo("dest-app", id); err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("%s after the re-send: %v %v", id, info, err)
		}
	}
	if rec := b.op(t, "POST", "/api/deliveries/rerun-selected"); rec.Code != 400 {
		t.Errorf("re-send selected without IDs: %d", rec.Code)
	}
	rec := b.do(t, req{method: "POST", path: "/api/deliveries/rerun-selected", user: opUser, pass: opPass,
		headers: map[string]string{"Content-Type": "application/json"},
		body:    `{"ids": ["` + ids[0] + `", "` + ids[1] + `", "` + ids[2] + `", "evt_nope:dest:app"], "reason": "INC-1"}`})
	sel := decode[bulkResult](t, rec, 200)
	if sel.Run != 1 || sel.Copied != 1 || sel.Skipped != 2 {
		t.Errorf("re-send selected: %+v", sel)
	}
	p := decode[audit.Page](t, b.op(t, "GET", "/api/audit"), 200)
	var got []string
	for _, e := range p.Entries {
		got = append(got, fmt.Sprintf("%s|%s|%d|%s|%s|%s", e.Action, e.Target, e.Count, e.Reason, e.Result, e.Detail))
	}
	want := []string{
		"delivery_rerun_selected|" + audit.NamedIDs([]string{ids[0], ids[1]}) + "|2|INC-1|ok|1 run, 1 copied, 2 skipped, 0 failed, of 4 asked",
		"delivery_bulk_rerun|customer=cus_B&destination=app|2|INC-1|ok|2 run, 0 copied, 0 skipped, 0 failed, of 2 matched: " + audit.NamedIDs([]string{ids[3], ids[4]}),
	}
	if len(got) < 3 || !slices.Equal(got[:2], want) || !strings.HasPrefix(got[2], "delivery_bulk_rerun|customer=cus_B&destination=app|0|INC-1|not possible in this state: the filter now matches 2") {
		t.Errorf("audit log:\n%s\nwant first\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
