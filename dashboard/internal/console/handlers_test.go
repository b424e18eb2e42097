package console

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// TestDetailShowsHandlersAndWaits: an event type with several handlers
// shows each one's part in "What it did" (status, time, what it noted or
// its error) and in every attempt; an attempt that waited (a rate limit)
// says until when and why, and that it used no retry.
func TestDetailShowsHandlersAndWaits(t *testing.T) {
	b := setup(t, seeds[:3])
	store := failures.New(b.db.Client, 0)
	start := time.Now().Add(-3 * time.Minute).UTC()
	until := start.Add(90 * time.Second)
	if err := store.AddAttempt(t.Context(), "stripe", "evt_03", failures.Attempt{
		Start: start, At: start.Add(40 * time.Millisecond), MS: 40, Worker: "worker-a:41",
		Waiting: true, Until: until, Error: "rate limited by mailer: retry in 1m30s",
		Handlers: []failures.HandlerAttempt{
			{Name: "builtin", Status: outcome.HandlerDone, Outcome: "1 record updated", MS: 3},
			{Name: "dunning", Status: outcome.HandlerWaiting, Error: "rate limited by mailer: retry in 1m30s", MS: 37},
		},
	}); err != nil {
		t.Fatal(err)
	}
	parts := []outcome.Handler{
		{Name: "builtin", Status: outcome.HandlerDoneBefore, Records: []outcome.RecordChange{{Key: "stripeq:customer:{cus_X}", Changed: true}}},
		{Name: "dunning", Status: outcome.HandlerDone, MS: 21, Summary: "dunning email sent to cus_X"},
		{Name: "audit", Status: outcome.HandlerFailed, Error: "audit sink refused the event", Permanent: true},
	}
	o := outcome.Outcome{Handlers: parts, Records: parts[0].Records, Summary: "builtin: 1 record updated; dunning: dunning email sent to cus_X"}
	result, _ := json.Marshal(o)
	second := until.Add(time.Second)
	if err := store.Complete(t.Context(), "stripe", "evt_03", failures.Attempt{
		Start: second, At: second.Add(21 * time.Millisecond), MS: 21, Worker: "worker-b:7", Outcome: o.Line(),
		Handlers: failures.HandlerAttempts(parts),
	}, result, true, time.Hour); err != nil {
		t.Fatal(err)
	}

	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200)
	if d.OutcomeOf == nil || len(d.OutcomeOf.Handlers) != 3 {
		t.Fatalf("outcome = %+v", d.OutcomeOf)
	}
	if len(d.Attempts) != 2 || !d.Attempts[0].Waiting || !d.Attempts[0].Until.Equal(until) || len(d.Attempts[1].Handlers) != 3 {
		t.Fatalf("attempts = %+v", d.Attempts)
	}

	page := b.op(t, "GET", "/executions/evt_03").Body.String()
	what := section(t, page, `id="handlers"`, "</table>")
	for _, s := range []string{"builtin", "done before", "1 record updated", "dunning", "dunning email sent to cus_X", "21 ms", "audit", "audit sink refused the event", "permanent: not retried"} {
		if !strings.Contains(what, s) {
			t.Errorf("the handlers' table lacks %q:\n%s", s, what)
		}
	}
	attempts := section(t, page, `id="attempts"`, "</section>")
	for _, s := range []string{"waited until", until.Format("2006-01-02 15:04:05 UTC"), "no retry used", "rate limited by mailer: retry in 1m30s", "h-waiting", "h-failed", "audit sink refused the event"} {
		if !strings.Contains(attempts, s) {
			t.Errorf("the attempts lack %q:\n%s", s, attempts)
		}
	}
	if strings.Contains(attempts, `class="err pre">rate limited by mailer`) {
		t.Error("the wait is shown as a failure")
	}
}

// section returns page from the first from to the next to after it.
func section(t *testing.T, page, from, to string) string {
	t.Helper()
	i := strings.Index(page, from)
	if i < 0 {
		t.Fatalf("the page has no %s", from)
	}
	j := strings.Index(page[i:], to)
	if j < 0 {
		t.Fatalf("the page has no %s after %s", to, from)
	}
	return page[i : i+j]
}
