package stripeqtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/stripeqtest"
)

// TestHandle runs one handler on a fixture for each kind of error, and
// checks the result the kit returns.
func TestHandle(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		next      stripeqtest.Next
		min, most time.Duration // After's bounds
	}{
		{"success", nil, stripeqtest.Complete, 0, 0},
		{"an error", errors.New("db down"), stripeqtest.Retry, 24 * time.Second, 36 * time.Second},
		{"a rate limit", &stripeq.RateLimitError{After: 5 * time.Second}, stripeqtest.Wait, 6 * time.Second, 6 * time.Second},
		{"a claim elsewhere", fmt.Errorf("email: %w", stripeq.ErrInProgress), stripeqtest.Wait, time.Second, 2 * time.Second},
		{"a permanent error", stripeq.Permanent(errors.New("bad")), stripeqtest.Archive, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := stripeqtest.Handle(context.Background(), func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
				e.SetOutcome("noted " + e.Object.ID)
				return tt.err
			}, stripeqtest.Fixture("invoice.paid"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Next != tt.next || res.After < tt.min || res.After > tt.most || !errors.Is(res.Err, tt.err) {
				t.Errorf("result %+v (%v), want %v after %v–%v", res, res.Next, tt.next, tt.min, tt.most)
			}
			if res.Outcome.Summary != "noted in_stripeq_demo" {
				t.Errorf("outcome %+v", res.Outcome)
			}
		})
	}
}

// TestRun: an event that is not one is an error; a type without a handler
// completes, saying so; a fixture at another API version reaches the
// handler at that version.
func TestRun(t *testing.T) {
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit})
	if err != nil {
		t.Fatal(err)
	}
	var version string
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[stripe.Invoice]) error {
		version = e.APIVersion
		return nil
	})
	if _, err := stripeqtest.Run(t.Context(), w, []byte(`{"id": "evt_1"}`)); err == nil || !strings.Contains(err.Error(), "not a Stripe event") {
		t.Errorf("Run on a non-event: %v", err)
	}
	res, err := stripeqtest.Run(t.Context(), w, stripeqtest.Fixture("customer.created"))
	if err != nil || res.Next != stripeqtest.Complete || res.Outcome.Line() != "no handler for customer.created" {
		t.Errorf("an unhandled type: %+v, %v", res, err)
	}
	if _, err := stripeqtest.Run(t.Context(), w, stripeqtest.FixtureAt("2026-08-26.dahlia", "invoice.paid")); err != nil || version != "2026-08-26.dahlia" {
		t.Errorf("at dahlia: version %q, %v", version, err)
	}
}
