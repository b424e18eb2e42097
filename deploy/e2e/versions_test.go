package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRecoveryAtDahlia: Stripe's Events API renders an event at the
// account's version when it was created, whatever the endpoint's. A Stripe
// account at 2026-08-26.dahlia whose deliveries never arrived: `recover`
// (the binary) stores the whole story from a fake Events API serving it at
// dahlia, and the worker (with STRIPE_SECRET_KEY, so it also reads each
// event's copy and asks for the failed payment's invoice, and a dispute's
// charge, at stripe-go's 2023-10-16) ends with the records of the 2023-10-16 story: the period
// end from the subscription's items, the dispute's customer, the charge's
// invoice, and no payment_failed notice from a charge or payment intent.
func TestRecoveryAtDahlia(t *testing.T) {
	db := redistest.New(t)
	stripe := stripetest.NewAPI(t)
	const suffix = "dahlia"
	lifecycle := stripetest.Lifecycle()
	start := time.Now().Add(-3 * time.Hour)
	var ids []string
	for i, typ := range lifecycle {
		body := stripetest.Relabel(stripetest.FixtureAt(stripetest.APIVersionDahlia, typ), suffix)
		body = stripetest.Edit(body, func(e map[string]any) {
			e["id"] = e["id"].(string) + "_" + suffix
			e["created"] = start.Add(time.Duration(i) * time.Minute).Unix() // within DEDUPE_WINDOW, in the story's order
			ids = append(ids, e["id"].(string))
		})
		stripe.Add("", body)
	}
	// The payment intent and the charge as stripe-go v76 retrieves them:
	// at 2023-10-16, which names their invoice (and the charge's
	// customer, which a dispute handled before the charge's events asks).
	for _, typ := range []string{"payment_intent.payment_failed", "charge.failed"} {
		var e map[string]any
		if err := json.Unmarshal(stripetest.Relabel(stripetest.Fixture(typ), suffix), &e); err != nil {
			t.Fatal(err)
		}
		object, _ := json.Marshal(stripetest.Object(e))
		stripe.AddObject("", object)
	}

	env := map[string]string{"REDIS_URL": db.URL, "STRIPE_SECRET_KEY": "rk_test_e2e_dahlia", "STRIPE_API_BASE": stripe.URL}
	startWorker(t, "worker", db.URL, env)
	if out, errOut, code := runRecover(t, env, "-since", "4h"); code != 0 || !strings.Contains(out, "enqueued "+strconv.Itoa(len(lifecycle))) {
		t.Fatalf("recover: exit %d\n%s%s", code, out, errOut)
	}
	poll.Until(t, 60*time.Second, "every recovered event to complete", func() bool {
		return countStates(taskStates(t, db.Client, ids))["completed"] == len(ids)
	})

	var sub struct {
		Data struct {
			Object struct {
				CurrentPeriodEnd int64 `json:"current_period_end"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(stripetest.Fixture("customer.subscription.deleted"), &sub); err != nil {
		t.Fatal(err)
	}
	id := func(prefix string) string { return prefix + "_stripeq_demo_" + suffix }
	for key, want := range map[string]map[string]string{
		records.SubscriptionKey(id("sub")): {"status": "canceled", "current_period_end": strconv.FormatInt(sub.Data.Object.CurrentPeriodEnd, 10)},
		records.CustomerKey(id("cus")): {"delinquent": "false", "last_payment_error": "insufficient_funds", "subscription_status": "canceled",
			"on_hold": "false", "last_dispute_outcome": "won", "client_reference_id": "user_42"},
		records.DisputeKey(id("dp")): {"customer": id("cus"), "status": "won"},
		records.ChargeKey(id("ch")):  {"customer": id("cus"), "invoice": id("in"), "payment_intent": id("pi")},
	} {
		got, err := db.Client.HGetAll(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range want {
			if got[f] != v {
				t.Errorf("%s %s = %q, want %q", key, f, got[f], v)
			}
		}
	}
	for _, n := range notifications(t, db.Client) {
		if n.Values["kind"] == records.KindPaymentFailed && n.Values["event_id"] != "evt_stripeq_invoice_payment_failed_"+suffix {
			t.Errorf("a payment_failed notice from %v: only invoice.payment_failed sends one for an invoice's payment", n.Values["event_id"])
		}
	}
	asked := false
	for _, r := range stripe.Requests() {
		if strings.HasPrefix(r.Path, "/v1/payment_intents/") {
			asked = r.Version == "2023-10-16"
		}
	}
	if !asked {
		t.Error("the worker did not retrieve the payment intent at 2023-10-16 for its invoice")
	}
}
