package console

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/execindex/execindextest"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// TestUntestedVersionsBanner: every page tells a signed-in user when
// executions at an API version the built-ins are not tested with are
// retained, links to them, and says what to do; tested versions, and a
// later monthly version of the newest tested release, show nothing.
func TestUntestedVersionsBanner(t *testing.T) {
	tests := []struct {
		name     string
		versions []string
		banner   []string // versions named in the banner
	}{
		{"tested versions only", []string{"2023-10-16", "2025-03-31.basil", "2026-08-26.dahlia", "2026-10-28.dahlia"}, nil},
		{"a release after dahlia", []string{"2023-10-16", "2027-02-24.elder"}, []string{"2027-02-24.elder"}},
		{"older than stripe-go's", []string{"2020-08-27"}, []string{"2020-08-27"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var execs []execindextest.Exec
			for i, v := range tt.versions {
				execs = append(execs, execindextest.Exec{ID: "evt_v" + string(rune('a'+i)), Type: "customer.created", APIVersion: v, State: "completed"})
			}
			b := setup(t, execs)
			for _, path := range []string{"/", "/deliveries", "/audit"} {
				body := b.op(t, "GET", path).Body.String()
				has := strings.Contains(body, `id="versions-banner"`)
				if has != (tt.banner != nil) {
					t.Fatalf("GET %s: banner shown = %v, want %v", path, has, tt.banner != nil)
				}
				for _, v := range tt.banner {
					if !strings.Contains(body, `href="/?api_version=`+v+`"`) || !strings.Contains(body, "Pin your webhook endpoint") {
						t.Errorf("GET %s: the banner does not link %s and say what to do:\n%s", path, v, body)
					}
				}
			}
		})
	}
	// Signed out, no banner.
	b := setup(t, []execindextest.Exec{{ID: "evt_new", Type: "customer.created", APIVersion: "2027-02-24.elder", ReceivedAt: time.Now()}})
	if strings.Contains(b.do(t, req{path: "/login"}).Body.String(), "versions-banner") {
		t.Error("the login page shows the versions banner")
	}
}

// TestDetailShowsUnknownFields: a value the event did not carry at its API
// version is in the outcome's line and in the detail's "What it did".
func TestDetailShowsUnknownFields(t *testing.T) {
	b := setup(t, seeds[:4])
	o := outcome.Outcome{
		Notices: []outcome.Notice{{Kind: "payment_failed", Customer: "cus_X", Status: outcome.NoticeSkipped, Reason: "whether the payment belongs to an invoice is unknown at API version 2026-08-26.dahlia"}},
		Unknown: []outcome.Unknown{{Field: "invoice", Reason: "the event does not say whether this payment belongs to an invoice"}},
	}
	result, _ := json.Marshal(o)
	now := time.Now().UTC()
	if err := failures.New(b.db.Client, 0).Complete(t.Context(), "stripe", "evt_03", failures.Attempt{
		Start: now, At: now.Add(time.Millisecond), MS: 1, Worker: "w:1", Outcome: o.Line(),
	}, result, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	d := decode[detail](t, b.op(t, "GET", "/api/executions/evt_03"), 200)
	if !strings.Contains(d.Outcome, "invoice unknown") {
		t.Errorf("outcome line %q does not say the invoice is unknown", d.Outcome)
	}
	page := b.op(t, "GET", "/executions/evt_03").Body.String()
	if !strings.Contains(page, `id="unknown"`) || !strings.Contains(page, "does not say whether this payment belongs to an invoice") {
		t.Errorf("the detail page does not show the unknown field:\n%s", page)
	}
}
