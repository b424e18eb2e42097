package delivery_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestDeliveryRoundTrip builds the delivery of an event task, stored
// plain and compressed, of an original and of a re-run copy, and reads
// back its ID, destination, queue, webhook-id and body.
func TestDeliveryRoundTrip(t *testing.T) {
	body := stripetest.Event("invoice.paid", "evt_deliv", time.Now())
	for _, compression := range []string{"", compress.Zstd} {
		task, m, err := stripetask.New(body, stripetask.Options{Compression: compression})
		if err != nil {
			t.Fatal(err)
		}
		for _, taskID := range []string{m.ID, stripetask.RerunID(m.ID, 2)} {
			d := delivery.New(task, taskID, "billing-1", 0)
			id := delivery.ID(taskID, "billing-1")
			name, ok := delivery.DestinationOf(id)
			got, err := stripetask.Body(d.Payload())
			switch {
			case d.Type() != "deliver:invoice.paid" || !delivery.Is(d.Type()):
				t.Errorf("type %q", d.Type())
			case !ok || name != "billing-1":
				t.Errorf("delivery.DestinationOf(%q) = %q, %v", id, name, ok)
			case d.Headers()[delivery.HeaderEventID] != "evt_deliv" || d.Headers()[delivery.HeaderDestination] != "billing-1" || d.Headers()[stripetask.HeaderType] != "invoice.paid":
				t.Errorf("headers %v", d.Headers())
			case err != nil || !bytes.Equal(got, body):
				t.Errorf("%s body (%v) differs", compression, err)
			}
			if n, ok := delivery.DestinationOf(stripetask.RerunID(id, 3)); !ok || n != "billing-1" {
				t.Errorf("a re-run copy's destination: %q %v", n, ok)
			}
		}
	}
	if delivery.Queue("billing-1") != "dest-billing-1" {
		t.Error(delivery.Queue("billing-1"))
	}
	for name, want := range map[string]bool{"a": true, "billing_2-x": true, "": false, "Billing": false, "a:b": false, "a.b": false,
		string(make([]byte, delivery.MaxName+1)): false} {
		if delivery.ValidName(name) != want {
			t.Errorf("delivery.ValidName(%q) = %v", name, !want)
		}
	}
	if _, ok := delivery.DestinationOf("evt_1:rerun:1"); ok {
		t.Error("an event's re-run copy is not a delivery")
	}
}

// TestWebhookID: a delivery's webhook-id is its event's ID, from its
// header, or from its task ID when stored without it; a re-run copy's is
// its original's.
func TestWebhookID(t *testing.T) {
	for _, tt := range []struct {
		taskID  string
		headers map[string]string
		want    string
	}{
		{"evt_1:dest:app", map[string]string{delivery.HeaderEventID: "evt_1"}, "evt_1"},
		{"evt_1:dest:app", nil, "evt_1"},
		{"evt_1:rerun:2:dest:app", nil, "evt_1"},
		{"evt_1:dest:app:rerun:3", nil, "evt_1"},
	} {
		if got := delivery.WebhookID(tt.taskID, tt.headers); got != tt.want {
			t.Errorf("WebhookID(%q, %v) = %q, want %q", tt.taskID, tt.headers, got, tt.want)
		}
	}
}
