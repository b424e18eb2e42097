package console

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestDeliveries lists deliveries by destination and state, shows one
// with its attempts (the response escaped), and re-runs an archived one,
// for operators only.
func TestDeliveries(t *testing.T) {
	b := setup(t, nil)
	ids := enqueueDeliveries(t, b, "app", "app", "crm")
	insp := asynq.NewInspectorFromRedisClient(b.db.Client)
	if err := insp.ArchiveTask("dest-app", ids[0]); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(delivery.Attempt{At: time.Now(), Status: 410, LatencyMS: 12, Response: "<script>alert(1)</script>", Error: "destination app answered 410 Gone"})
	b.db.Client.RPush(context.Background(), keyspace.DeliveryAttempts(ids[0]), a)

	type list struct{ Deliveries []deliveryRow }
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{ids[1], ids[0], ids[2]}},
		{"?destination=app", []string{ids[1], ids[0]}},
		{"?destination=app&state=archived", []string{ids[0]}},
		{"?state=pending", []string{ids[1], ids[2]}},
		{"?destination=nobody", nil},
	} {
		l := decode[list](t, b.op(t, "GET", "/api/deliveries"+tt.query), 200)
		var got []string
		for _, r := range l.Deliveries {
			got = append(got, r.ID)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	if rec := b.op(t, "GET", "/api/deliveries?state=gone"); rec.Code != 400 {
		t.Errorf("a bad state: %d", rec.Code)
	}

	d := decode[deliveryDetail](t, b.op(t, "GET", "/api/deliveries/"+ids[0]), 200)
	if d.State != "archived" || d.EventID != "evt_deliv_a" || d.Destination != "app" || len(d.Attempts) != 1 || d.Attempts[0].Status != 410 {
		t.Errorf("detail %+v", d)
	}
	if raw := b.op(t, "GET", "/api/deliveries/"+ids[0]).Body.String(); !strings.Contains(raw, `"webhook_id":"evt_deliv_a"`) {
		t.Errorf("the delivery's JSON lacks its webhook-id: %s", raw)
	}
	if raw := b.op(t, "GET", "/api/deliveries?destination=crm").Body.String(); !strings.Contains(raw, `"webhook_id":"evt_deliv_c"`) {
		t.Errorf("the list's JSON lacks the webhook-id: %s", raw)
	}
	page := b.op(t, "GET", "/deliveries/"+ids[0]).Body.String()
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(page, "<script>alert") {
		t.Errorf("the response excerpt is not escaped:\n%s", page)
	}
	if rec := b.op(t, "GET", "/api/deliveries/evt_deliv_a"); rec.Code != 404 {
		t.Errorf("an event ID as a delivery: %d", rec.Code)
	}

	if rec := b.do(t, req{method: "POST", path: "/api/deliveries/" + ids[0] + "/rerun", user: viewerUser, pass: viewerPass}); rec.Code != 403 {
		t.Errorf("a viewer's re-run: %d", rec.Code)
	}
	if rec := b.op(t, "POST", "/api/deliveries/"+ids[1]+"/rerun"); rec.Code != 409 {
		t.Errorf("re-run of a pending delivery: %d %s", rec.Code, rec.Body.String())
	}
	r := decode[rerunResult](t, b.op(t, "POST", "/api/deliveries/"+ids[0]+"/rerun"), 200)
	if r.Action != "run" {
		t.Errorf("re-run of an archived delivery: %+v", r)
	}
	if info, _ := insp.GetTaskInfo("dest-app", ids[0]); info == nil || info.State != asynq.TaskStatePending {
		t.Errorf("after the re-run: %+v", info)
	}
}

// enqueueDeliveries stores one pending delivery to each destination
// named, of the events evt_deliv_a, evt_deliv_b, …, and returns their IDs.
func enqueueDeliveries(t *testing.T, b *bundle, destinations ...string) []string {
	t.Helper()
	client := asynq.NewClientFromRedisClient(b.db.Client)
	var ids []string
	for i, dest := range destinations {
		body := stripetest.Event("customer.created", "evt_deliv_"+string(rune('a'+i)), time.Now())
		task, m, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(delivery.New(task, m.ID, dest, 0)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, delivery.ID(m.ID, dest))
	}
	return ids
}
