package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/eventsender"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// trigger runs the offline event sender against s and returns its output.
func (s *stack) trigger(t *testing.T, args ...string) string {
	t.Helper()
	p := proctest.StartArgs(t, "trigger", proctest.Binary(t, "deploy/trigger"), map[string]string{
		"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "REDIS_URL": s.db.URL,
	}, append([]string{"-url", s.apiURL + "/webhooks/stripe"}, args...)...)
	select {
	case <-p.Done():
	case <-time.After(90 * time.Second):
		t.Fatalf("trigger %v did not finish:\n%s", args, p.Output())
	}
	if err := p.ExitErr(); err != nil {
		t.Fatalf("trigger %v: %v\n%s", args, err, p.Output())
	}
	return p.Output()
}

func TestTrigger(t *testing.T) {
	s := startStack(t)
	tests := []struct {
		args []string
		want []string // lines that must appear, in order
	}{
		{[]string{"invoice.payment_failed"}, []string{`→ 200 {"message":"Received"}`}},
		{[]string{"-twice", "charge.failed"}, []string{`→ 200 {"message":"Received"}`, `→ 200 {"message":"duplicate"}`}},
		{[]string{"-old", "customer.created"}, []string{`→ 400 {"message":"invalid Stripe-Signature: timestamp wasn't within tolerance"}`}},
		{[]string{"-rotate", "-livemode", "-account", "acct_1", "customer.updated"}, []string{`→ 200 {"message":"Received"}`}},
		{[]string{"-id", "evt_fixed_1", "invoice.paid"}, []string{`evt_fixed_1 → 200 {"message":"Received"}`}},
		{[]string{"-id", "evt_fixed_1", "invoice.paid"}, []string{`evt_fixed_1 → 200 {"message":"duplicate"}`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := s.trigger(t, tt.args...)
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestTriggerScenarioShuffled plays the scenario shuffled at the default
// API version (2023-10-16) and at the one a new Stripe account defaults to
// (2026-08-26.dahlia), for a customer each, on one stack.
func TestTriggerScenarioShuffled(t *testing.T) {
	s := startStack(t)
	tests := []struct {
		name string
		args []string // before scenario
		want string   // the version scenario names
	}{
		{"default", []string{"-objects", "e2e"}, stripetest.APIVersion20231016},
		{stripetest.APIVersionDahlia, []string{"-objects", "e2edahlia", "-api-version", stripetest.APIVersionDahlia}, stripetest.APIVersionDahlia},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := s.trigger(t, append(tc.args, "scenario", "-shuffle")...)
			customer := stripetest.CustomerID(tc.args[1])
			if !strings.Contains(out, "scenario for customer "+customer+" (shuffled order, API version "+tc.want+")") {
				t.Errorf("the output does not name the customer and version:\n%s", out)
			}
			if c := strings.Count(out, `→ 200 {"message":"Received"}`); c != len(eventsender.Lifecycle) {
				t.Errorf("%d events received, want %d:\n%s", c, len(eventsender.Lifecycle), out)
			}
			for _, want := range []string{
				"redis-cli HGETALL 'stripeq:customer:{" + customer + "}'",
				"delinquent                   false",
				"last_dispute_outcome         won",
				"last_payment_error           insufficient_funds",
				"on_hold                      false",
				"subscription_status          active",
				"email                        jenny.rosen@example.com",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("the final record lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
