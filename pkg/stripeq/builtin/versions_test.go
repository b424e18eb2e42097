package builtin

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// snapshot is every record the built-ins keep, and every notification,
// as comparable values.
type snapshot struct {
	records map[string]map[string]string // key → fields (a SET's members as fields "member")
	notices []string                     // "kind event_id email subject", in stream order
}

func takeSnapshot(t *testing.T, rdb redis.UniversalClient) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{records: map[string]map[string]string{}}
	keys, err := rdb.Keys(ctx, records.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch {
		case k == records.NotificationsStream, strings.HasPrefix(k, records.Prefix+"notified:"):
			// The stream is compared below; a notified marker holds a stream ID.
		case rdb.Type(ctx, k).Val() == "hash":
			s.records[k] = rdb.HGetAll(ctx, k).Val()
		case rdb.Type(ctx, k).Val() == "set":
			members := map[string]string{}
			for _, m := range rdb.SMembers(ctx, k).Val() {
				members[m] = "member"
			}
			s.records[k] = members
		}
	}
	for _, e := range rdb.XRange(ctx, records.NotificationsStream, "-", "+").Val() {
		v := e.Values
		s.notices = append(s.notices, strings.Join([]string{v["kind"].(string), v["event_id"].(string), v["email"].(string), v["subject"].(string)}, " "))
	}
	return s
}

// playInOrder handles every event of the story at version once, in the
// order Stripe created them, then every one again (a duplicate delivery,
// or a re-run), as the worker's handlers, and returns the snapshot.
func playInOrder(t *testing.T, w *stripeq.Worker, rdb redis.UniversalClient, version string) snapshot {
	t.Helper()
	for range 2 {
		for _, typ := range stripetest.Lifecycle() {
			if err := process(t, w, stripetest.FixtureAt(version, typ)); err != nil {
				t.Fatalf("%s at %s: %v", typ, version, err)
			}
		}
	}
	return takeSnapshot(t, rdb)
}

// TestSameStoryAtEveryAPIVersion: the story rendered at 2023-10-16,
// 2025-03-31.basil and 2026-08-26.dahlia leaves the same records and sends
// the same notifications. With STRIPE_SECRET_KEY, everything is the same;
// without it, since basil no event of a failed payment names its invoice,
// so the charge's link lacks its invoice (never a wrong one), the failure
// events note it as unknown, and the one notice per failed attempt still
// comes from invoice.payment_failed.
func TestSameStoryAtEveryAPIVersion(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		name := "without STRIPE_SECRET_KEY"
		if keyed {
			name = "with STRIPE_SECRET_KEY"
		}
		t.Run(name, func(t *testing.T) {
			var want snapshot
			for _, version := range stripetest.APIVersions() {
				t.Run(version, func(t *testing.T) {
					cfg := stripeq.Config{}
					var api *stripetest.API
					if keyed {
						api = stripetest.NewAPI(t)
						for _, typ := range stripetest.Lifecycle() {
							api.Add("", stripetest.FixtureAt(version, typ))
						}
						// What stripe-go v76 gets when it retrieves the payment
						// intent: its 2023-10-16 rendering, which names the invoice.
						var e map[string]any
						if err := json.Unmarshal(stripetest.Fixture("payment_intent.payment_failed"), &e); err != nil {
							t.Fatal(err)
						}
						pi, _ := json.Marshal(stripetest.Object(e))
						api.AddObject("", pi)
						cfg.StripeSecretKey, cfg.StripeAPIBase = "sk_test_stripeq", api.URL
					}
					w, db := setupWith(t, cfg, Options{})
					got := playInOrder(t, w, db.Client, version)
					if version == stripetest.APIVersion20231016 {
						want = got
						if len(got.records) == 0 || !slices.ContainsFunc(got.notices, func(n string) bool {
							return strings.HasPrefix(n, records.KindPaymentFailed+" evt_stripeq_invoice_payment_failed ")
						}) {
							t.Fatalf("the 2023-10-16 story left %d records and notices %q", len(got.records), got.notices)
						}
						return
					}
					expect := want
					if !keyed {
						expect = withoutChargeInvoice(want)
					}
					for _, k := range slices.Sorted(maps.Keys(expect.records)) {
						if !maps.Equal(got.records[k], expect.records[k]) {
							t.Errorf("%s at %s:\n got %v\nwant %v", k, version, got.records[k], expect.records[k])
						}
					}
					for _, k := range slices.Sorted(maps.Keys(got.records)) {
						if _, ok := expect.records[k]; !ok {
							t.Errorf("%s at %s: a record the 2023-10-16 story does not have: %v", k, version, got.records[k])
						}
					}
					if !slices.Equal(got.notices, expect.notices) {
						t.Errorf("notifications at %s:\n got %q\nwant %q", version, got.notices, expect.notices)
					}
					if keyed {
						asked := 0
						for _, r := range api.Requests() {
							if strings.HasPrefix(r.Path, "/v1/payment_intents/") {
								asked++
							}
						}
						if asked == 0 {
							t.Error("Stripe was never asked for the payment intent's invoice")
						}
					}
				})
			}
		})
	}
}

// withoutChargeInvoice is s without the invoice field of charge links,
// which no event of a failed payment names since basil.
func withoutChargeInvoice(s snapshot) snapshot {
	out := snapshot{records: map[string]map[string]string{}, notices: s.notices}
	for k, fields := range s.records {
		if strings.HasPrefix(k, records.ChargeKey("")[:len(records.ChargeKey(""))-2]) {
			fields = maps.Clone(fields)
			delete(fields, "invoice")
		}
		out.records[k] = fields
	}
	return out
}

// TestFailedPaymentOfUnknownInvoice: since basil, without a key, a failed
// charge says in its outcome that its invoice is unknown and sends no
// notice, and still marks the customer delinquent with the reason.
func TestFailedPaymentOfUnknownInvoice(t *testing.T) {
	for _, typ := range []string{events.ChargeFailed, events.PaymentIntentPaymentFailed} {
		t.Run(typ, func(t *testing.T) {
			w, db := setup(t)
			runServer(t, w)
			task, m, _ := stripetask.New(stripetest.FixtureAt(stripetest.APIVersionDahlia, typ), stripetask.Options{})
			if _, err := asynq.NewClientFromRedisClient(db.Client).Enqueue(task); err != nil {
				t.Fatal(err)
			}
			waitCompleted(t, db, 1)
			info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo(stripetask.DefaultQueue, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := outcome.Parse(info.Result)
			if len(o.Unknown) != 1 || o.Unknown[0].Field != "invoice" || !strings.Contains(o.Unknown[0].Reason, stripetest.APIVersionDahlia) ||
				len(o.Notices) != 1 || o.Notices[0].Status != stripeq.NoticeSkipped {
				t.Errorf("outcome = %+v, want the invoice unknown and the notice skipped", o)
			}
			if !strings.Contains(o.Line(), "invoice unknown") {
				t.Errorf("outcome line %q", o.Line())
			}
			if c := hash(t, db.Client, records.CustomerKey("cus_stripeq_demo")); c["delinquent"] != "true" || c["last_payment_error"] != "insufficient_funds" {
				t.Errorf("customer = %v, want delinquent with the reason", c)
			}
			if n := notifications(t, db.Client); len(n) != 0 {
				t.Errorf("notifications %v, want none", n)
			}
		})
	}
}

// TestSubscriptionWithoutPeriod: a subscription event with no period on
// the subscription or its items leaves current_period_end unset, removing
// an older event's value, and says so; it never writes 0.
func TestSubscriptionWithoutPeriod(t *testing.T) {
	w, db := setup(t)
	if err := process(t, w, stripetest.FixtureAt(stripetest.APIVersionDahlia, "customer.subscription.created")); err != nil {
		t.Fatal(err)
	}
	key := records.SubscriptionKey("sub_stripeq_demo")
	if hash(t, db.Client, key)["current_period_end"] == "" {
		t.Fatal("no current_period_end from the subscription's item")
	}
	noPeriod := stripetest.Edit(stripetest.FixtureAt(stripetest.APIVersionDahlia, "customer.subscription.updated"), func(e map[string]any) {
		stripetest.Object(e)["items"].(map[string]any)["data"] = []any{}
	})
	task, _, _ := stripetask.New(noPeriod, stripetask.Options{})
	runServer(t, w)
	if _, err := asynq.NewClientFromRedisClient(db.Client).Enqueue(task); err != nil {
		t.Fatal(err)
	}
	waitCompleted(t, db, 1)
	s := hash(t, db.Client, key)
	if _, ok := s["current_period_end"]; ok || s["status"] != "trialing" || s["last_event_id"] != "evt_stripeq_customer_subscription_updated" {
		t.Errorf("subscription = %v, want updated without current_period_end", s)
	}
	info, _ := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo(stripetask.DefaultQueue, "evt_stripeq_customer_subscription_updated")
	if o, _ := outcome.Parse(info.Result); len(o.Unknown) != 1 || o.Unknown[0].Field != "current_period_end" {
		t.Errorf("outcome = %+v, want current_period_end unknown", o)
	}
}
