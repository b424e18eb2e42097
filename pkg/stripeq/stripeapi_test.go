package stripeq

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/stripecopy"
)

// TestStripeAnswersThatDoNotDecode: a 200 whose body is not an event is
// retried, as any unexpected answer; Stripe's copy without data.object, or
// with an object that does not decode, is archived at once.
func TestStripeAnswersThatDoNotDecode(t *testing.T) {
	bodies := map[string]string{
		"/v1/events/evt_truncated": `{"id": "evt_truncated", "data": {`,
		"/v1/events/evt_empty":     ``,
		"/v1/events/evt_no_object": `{"id": "evt_no_object", "type": "charge.failed", "data": {}}`,
		"/v1/events/evt_bad_field": `{"id": "evt_bad_field", "type": "charge.failed", "data": {"object": {"id": "ch_1", "amount": "a lot"}}}`,
	}
	accounts := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accounts <- r.Header.Get("Stripe-Account")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, bodies[r.URL.Path])
	}))
	t.Cleanup(srv.Close)
	api := stripecopy.New("sk_test_stripeq", srv.URL, 2, slog.New(slog.DiscardHandler))
	for id, permanent := range map[string]bool{"evt_truncated": false, "evt_empty": false, "evt_no_object": true, "evt_bad_field": true} {
		t.Run(id, func(t *testing.T) {
			raw, err := api.Event(t.Context(), id, "acct_1Connected")
			if err != nil {
				t.Fatal(err)
			}
			if got := <-accounts; got != "acct_1Connected" {
				t.Errorf("Stripe-Account = %q, want the event's account", got)
			}
			var e event[chargeObject]
			err = decodeCopy(raw, events.ChargeFailed, &e)
			if err == nil || errors.Is(err, asynq.SkipRetry) != permanent {
				t.Errorf("err = %v, want permanent %v", err, permanent)
			}
		})
	}
}
