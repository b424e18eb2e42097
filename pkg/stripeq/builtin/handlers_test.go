package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// sent is one entry of the notifications stream.
type sent struct{ Kind, Customer, Email, EventID string }

func notifications(t testing.TB, rdb redis.UniversalClient) []sent {
	t.Helper()
	entries, err := rdb.XRange(context.Background(), records.NotificationsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []sent
	for _, e := range entries {
		v := e.Values
		out = append(out, sent{v["kind"].(string), v["customer"].(string), v["email"].(string), v["event_id"].(string)})
	}
	return out
}

func hash(t testing.TB, rdb redis.UniversalClient, key string) map[string]string {
	t.Helper()
	h, err := rdb.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHandlers(t *testing.T) {
	const cus, email = "cus_stripeq_demo", "jenny.rosen@example.com"
	customer, subscription, dispute := records.CustomerKey(cus), records.SubscriptionKey("sub_stripeq_demo"), records.DisputeKey("dp_stripeq_demo")
	tests := []struct {
		typ    string
		before []string                     // handled first, in order
		want   map[string]map[string]string // key → fields that must hold
		notify []string                     // notification kinds sent by typ
	}{
		{"customer.subscription.created", nil, map[string]map[string]string{
			subscription: {"customer": cus, "status": "active", "current_period_end": "1769904120", "cancel_at_period_end": "false"},
			customer:     {"subscription_id": "sub_stripeq_demo", "subscription_status": "active"},
		}, nil},
		{"customer.subscription.updated", nil, map[string]map[string]string{subscription: {"status": "trialing"}, customer: {"subscription_status": "trialing"}}, nil},
		{"customer.subscription.paused", nil, map[string]map[string]string{subscription: {"status": "paused"}, customer: {"subscription_status": "paused"}}, nil},
		{"customer.subscription.resumed", nil, map[string]map[string]string{subscription: {"status": "active"}, customer: {"subscription_status": "active"}}, nil},
		{"customer.subscription.deleted", nil, map[string]map[string]string{subscription: {"status": "canceled"}, customer: {"subscription_status": "canceled"}}, nil},
		{"customer.subscription.trial_will_end", []string{"customer.created"}, map[string]map[string]string{subscription: {"status": "trialing"}}, []string{records.KindTrialWillEnd}},
		{"invoice.payment_failed", nil, map[string]map[string]string{customer: {"delinquent": "true"},
			records.ChargeKey("ch_stripeq_demo"): {"customer": cus, "invoice": "in_stripeq_demo", "payment_intent": "pi_stripeq_demo"}}, []string{records.KindPaymentFailed}},
		{"charge.failed", nil, map[string]map[string]string{customer: {"delinquent": "true", "last_payment_error": "insufficient_funds"}}, nil},
		{"payment_intent.payment_failed", nil, map[string]map[string]string{customer: {"delinquent": "true", "last_payment_error": "insufficient_funds"}}, nil},
		{"payment_intent.succeeded", nil, map[string]map[string]string{
			records.ChargeKey("ch_stripeq_demo"): {"customer": cus, "invoice": "in_stripeq_demo", "payment_intent": "pi_stripeq_demo"}}, nil},
		{"invoice.paid", []string{"invoice.payment_failed"}, map[string]map[string]string{customer: {"delinquent": "false"}}, []string{records.KindInvoice}},
		{"invoice.finalized", nil, nil, []string{records.KindInvoice}},
		{"invoice.upcoming", nil, nil, []string{records.KindUpcomingCharge}},
		{"charge.dispute.created", []string{"charge.failed"}, map[string]map[string]string{
			dispute:  {"charge": "ch_stripeq_demo", "customer": cus, "status": "needs_response", "amount": "2000", "currency": "usd", "reason": "fraudulent", "evidence_due_by": "1768003199"},
			customer: {"on_hold": "true"},
		}, []string{records.KindDisputeOpened}},
		{"charge.dispute.funds_withdrawn", []string{"charge.failed"}, map[string]map[string]string{dispute: {"status": "needs_response"}, customer: {"on_hold": "true"}}, nil},
		{"charge.dispute.updated", []string{"charge.failed"}, map[string]map[string]string{dispute: {"status": "under_review"}, customer: {"on_hold": "true"}}, nil},
		{"charge.dispute.closed", []string{"charge.failed", "charge.dispute.created"}, map[string]map[string]string{
			dispute: {"status": "won"}, customer: {"on_hold": "false", "last_dispute_id": "dp_stripeq_demo", "last_dispute_outcome": "won"},
		}, []string{records.KindDisputeClosed}},
		{"charge.dispute.funds_reinstated", []string{"charge.failed"}, map[string]map[string]string{dispute: {"status": "won"}, customer: {"on_hold": "false"}}, nil},
		{"checkout.session.completed", nil, map[string]map[string]string{customer: {"client_reference_id": "user_42"}}, nil},
	}
	covered := map[string]bool{"customer.created": true, "customer.updated": true, "customer.deleted": true} // customer_test.go
	for _, tt := range tests {
		covered[tt.typ] = true
		t.Run(tt.typ, func(t *testing.T) {
			w, db := setup(t)
			for _, typ := range tt.before {
				if err := process(t, w, stripetest.Fixture(typ)); err != nil {
					t.Fatalf("%s first: %v", typ, err)
				}
			}
			already := len(notifications(t, db.Client))
			if err := process(t, w, stripetest.Fixture(tt.typ)); err != nil {
				t.Fatalf("handler: %v", err)
			}
			for key, fields := range tt.want {
				got := hash(t, db.Client, key)
				for f, v := range fields {
					if got[f] != v {
						t.Errorf("%s %s = %q, want %q", key, f, got[f], v)
					}
				}
			}
			var kinds []string
			for _, n := range notifications(t, db.Client)[already:] {
				kinds = append(kinds, n.Kind)
				if n.Customer != cus || n.EventID == "" {
					t.Errorf("notification %+v: want customer %s and an event ID", n, cus)
				}
				if n.Kind != records.KindDisputeOpened && n.Kind != records.KindDisputeClosed && n.Email != email {
					t.Errorf("notification %+v: want email %s", n, email)
				}
			}
			if !slices.Equal(kinds, tt.notify) {
				t.Errorf("notifications %v, want %v", kinds, tt.notify)
			}
		})
	}
	for _, typ := range events.Handled() {
		if !covered[typ] {
			t.Errorf("no handler test for %s", typ)
		}
	}
}

// TestStaleFailuresSendNothing: Stripe can deliver invoice.paid before the
// invoice.payment_failed of an earlier attempt. The customer stays not
// delinquent and no payment_failed notice goes out for a settled invoice.
func TestStaleFailuresSendNothing(t *testing.T) {
	w, db := setup(t)
	for _, typ := range []string{"customer.created", "invoice.paid", "invoice.payment_failed", "charge.failed", "payment_intent.payment_failed"} {
		if err := process(t, w, stripetest.Fixture(typ)); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	if got := hash(t, db.Client, records.CustomerKey("cus_stripeq_demo"))["delinquent"]; got != "false" {
		t.Errorf("delinquent = %q, want false", got)
	}
	for _, n := range notifications(t, db.Client) {
		if n.Kind == records.KindPaymentFailed {
			t.Errorf("payment_failed notice sent after the invoice was paid: %+v", n)
		}
	}
}

func TestNotificationsGoOutOnce(t *testing.T) {
	w, db := setup(t)
	process(t, w, stripetest.Fixture("customer.created"))
	// Deliveries, retries and dashboard re-runs all run the handler again.
	for range 3 {
		for _, typ := range []string{"invoice.payment_failed", "invoice.finalized", "invoice.upcoming"} {
			if err := process(t, w, stripetest.Fixture(typ)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A re-run copy has a new task ID but the same event.
	task, _, _ := stripetask.New(stripetest.Fixture("invoice.paid"), stripetask.Options{})
	rerun := asynq.NewTaskWithHeaders(task.Type(), task.Payload(), maps.Clone(task.Headers()))
	for range 2 {
		if err := w.ProcessTask(context.Background(), rerun); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for _, n := range notifications(t, db.Client) {
		kinds = append(kinds, n.Kind)
	}
	want := []string{records.KindPaymentFailed, records.KindInvoice, records.KindUpcomingCharge, records.KindInvoice}
	if !slices.Equal(kinds, want) {
		t.Errorf("notifications %v, want each once: %v", kinds, want)
	}
	// A second attempt of the same invoice is a new notice.
	second := stripetest.Edit(stripetest.Event("invoice.payment_failed", "evt_attempt_2", time.Unix(1767226300, 0)), func(e map[string]any) {
		stripetest.Object(e)["attempt_count"] = 2
	})
	if err := process(t, w, second); err != nil {
		t.Fatal(err)
	}
	if got := len(notifications(t, db.Client)); got != len(want)+1 {
		t.Errorf("%d notifications after a second failed attempt, want %d", got, len(want)+1)
	}
}

// TestLifecycleShuffledWithDuplicates delivers the whole lifecycle in random
// orders, every event once or twice, through a real asynq server with
// concurrency, at every API version of the fixtures, and checks that the
// records end as Stripe's final state says and that every notification
// went out once, one payment_failed notice at most for the one failed
// attempt.
func TestLifecycleShuffledWithDuplicates(t *testing.T) {
	lifecycle := stripetest.Lifecycle()
	for _, version := range stripetest.APIVersions() {
		for seed := range uint64(2) {
			t.Run(fmt.Sprintf("%s/seed %d", version, seed), func(t *testing.T) {
				lifecycleShuffled(t, version, seed, lifecycle)
			})
		}
	}
}

func lifecycleShuffled(t *testing.T, version string, seed uint64, lifecycle []string) {
	w, db := setup(t)
	rng := rand.New(rand.NewPCG(seed, 42))
	var deliveries []string
	for _, typ := range lifecycle {
		deliveries = append(deliveries, typ)
		if rng.IntN(2) == 0 {
			deliveries = append(deliveries, typ)
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	runServer(t, w)
	client := asynq.NewClientFromRedisClient(db.Client)
	duplicates := 0
	for _, typ := range deliveries {
		task, _, _ := stripetask.New(stripetest.FixtureAt(version, typ), stripetask.Options{})
		if _, err := client.Enqueue(task); errors.Is(err, asynq.ErrTaskIDConflict) {
			duplicates++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if duplicates != len(deliveries)-len(lifecycle) {
		t.Errorf("%d duplicates caught, want %d", duplicates, len(deliveries)-len(lifecycle))
	}
	waitCompleted(t, db, len(lifecycle))

	customer := hash(t, db.Client, records.CustomerKey("cus_stripeq_demo"))
	for f, v := range map[string]string{
		"email": "jenny.rosen@example.com", "name": "Jenny Rosen", "deleted": "true", "last_event_id": "evt_stripeq_customer_deleted",
		"delinquent": "false", "last_payment_error": "insufficient_funds",
		"subscription_id": "sub_stripeq_demo", "subscription_status": "canceled",
		"on_hold": "false", "last_dispute_outcome": "won", "client_reference_id": "user_42",
	} {
		if customer[f] != v {
			t.Errorf("customer %s = %q, want %q", f, customer[f], v)
		}
	}
	if s := hash(t, db.Client, records.SubscriptionKey("sub_stripeq_demo")); s["status"] != "canceled" || s["last_event_id"] != "evt_stripeq_customer_subscription_deleted" ||
		s["current_period_end"] != finalPeriodEnd(t) {
		t.Errorf("subscription = %v, want canceled by the deleted event, current_period_end %s", s, finalPeriodEnd(t))
	}
	if d := hash(t, db.Client, records.DisputeKey("dp_stripeq_demo")); d["status"] != "won" || d["customer"] != "cus_stripeq_demo" {
		t.Errorf("dispute = %v, want won, of cus_stripeq_demo", d)
	}
	counts := map[string]int{}
	for _, n := range notifications(t, db.Client) {
		counts[n.Kind+" "+n.EventID]++
	}
	paymentFailed := 0
	for k, n := range counts {
		if n != 1 {
			t.Errorf("notification %s sent %d times", k, n)
		}
		if strings.HasPrefix(k, records.KindPaymentFailed+" ") {
			paymentFailed++
		}
	}
	if paymentFailed > 1 {
		t.Errorf("%d payment_failed notices for one failed attempt: %v", paymentFailed, counts)
	}
	// Every notification but payment_failed and dispute_opened, which
	// are rightly skipped when the invoice was paid, or the dispute
	// closed, before the failure or the opening was handled.
	for _, kind := range []string{records.KindInvoice, records.KindUpcomingCharge, records.KindDisputeClosed, records.KindTrialWillEnd} {
		found := false
		for k := range counts {
			found = found || k[:len(kind)+1] == kind+" "
		}
		if !found {
			t.Errorf("no %s notification; sent: %v", kind, counts)
		}
	}
}

// finalPeriodEnd is the current_period_end of the story's last
// subscription event at 2023-10-16, which every version's record must
// hold.
func finalPeriodEnd(t *testing.T) string {
	t.Helper()
	var e struct {
		Data struct {
			Object struct {
				CurrentPeriodEnd int64 `json:"current_period_end"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(stripetest.Fixture("customer.subscription.deleted"), &e); err != nil || e.Data.Object.CurrentPeriodEnd == 0 {
		t.Fatalf("the 2023-10-16 fixture's current_period_end: %v", err)
	}
	return strconv.FormatInt(e.Data.Object.CurrentPeriodEnd, 10)
}

// waitCompleted waits until n tasks are completed, or fails the test.
func waitCompleted(t *testing.T, db *redistest.DB, n int) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	poll.Value(t, 30*time.Second, fmt.Sprintf("%d completed tasks", n), func() (*asynq.QueueInfo, error) {
		return redistest.QueueCompleted(insp, stripetask.DefaultQueue, n)
	})
}

// TestHoldIgnoresAnOlderEventOfTheDispute replays the interleaving of two
// events of one dispute handled at once: the older one's hold update
// arriving after the newer one's must change nothing.
func TestHoldIgnoresAnOlderEventOfTheDispute(t *testing.T) {
	_, db := setup(t)
	ctx := context.Background()
	keys := []string{records.CustomerKey("cus_1"), records.CustomerDisputesKey("cus_1"), records.CustomerDisputeClocksKey("cus_1")}
	if err := holdScript.Run(ctx, db.Client, keys, "dp_1", "false", "won", 200).Err(); err != nil {
		t.Fatal(err)
	}
	if err := holdScript.Run(ctx, db.Client, keys, "dp_1", "true", "needs_response", 100).Err(); err != nil {
		t.Fatal(err)
	}
	if h := hash(t, db.Client, records.CustomerKey("cus_1")); h["on_hold"] != "false" || h["last_dispute_outcome"] != "won" {
		t.Errorf("customer = %v, want on_hold false after the newer close", h)
	}
	// A second, newer dispute opens: the hold is back.
	if err := holdScript.Run(ctx, db.Client, keys, "dp_2", "true", "needs_response", 300).Err(); err != nil {
		t.Fatal(err)
	}
	if h := hash(t, db.Client, records.CustomerKey("cus_1")); h["on_hold"] != "true" {
		t.Errorf("on_hold = %q with dp_2 open, want true", h["on_hold"])
	}
}

// TestRecordsAfterScriptFlush: the records' scripts go by their hash; a
// Redis that lost its script cache (a restart, a failover) gets them
// loaded, and the whole batch sent again, in its order. It runs on its own
// redis-server: SCRIPT FLUSH is server-wide.
func TestRecordsAfterScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	w, err := stripeq.NewWorker(stripeq.Config{RedisURL: srv.URL(0), GlobalConcurrency: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Redis().Close()
	Register(w, Options{})
	ctx := context.Background()
	t0 := time.Unix(1767225600, 0)
	for i, typ := range []string{"customer.created", "charge.failed", "charge.dispute.created"} {
		if err := w.Redis().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := process(t, w, stripetest.Event(typ, "evt_flush"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", typ, err)
		}
	}
	if h := hash(t, w.Redis(), records.CustomerKey("cus_stripeq_demo")); h["email"] != "jenny.rosen@example.com" || h["on_hold"] != "true" {
		t.Errorf("customer = %v, want its email and on_hold true", h)
	}
	if h := hash(t, w.Redis(), records.DisputeKey("dp_stripeq_demo")); h["last_event_id"] != "evt_flush2" {
		t.Errorf("dispute = %v, want it applied", h)
	}
}
