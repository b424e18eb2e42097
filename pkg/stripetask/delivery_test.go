package stripetask

import (
	"bytes"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestDeliveryRoundTrip builds the delivery of an event task, stored
// plain and compressed, of an original and of a re-run copy, and reads
// back its ID, destination, queue, webhook-id and body.
func TestDeliveryRoundTrip(t *testing.T) {
	body := stripetest.Event("invoice.paid", "evt_deliv", time.Now())
	for _, compression := range []string{"", CompressionZstd} {
		task, m, err := New(body, Options{Compression: compression})
		if err != nil {
			t.Fatal(err)
		}
		for _, taskID := range []string{m.ID, RerunID(m.ID, 2)} {
			d := NewDelivery(task, taskID, "billing-1", 0)
			id := DeliveryID(taskID, "billing-1")
			name, ok := DestinationOf(id)
			got, err := Body(d.Payload())
			switch {
			case d.Type() != "deliver:invoice.paid" || !IsDelivery(d.Type()):
				t.Errorf("type %q", d.Type())
			case !ok || name != "billing-1":
				t.Errorf("DestinationOf(%q) = %q, %v", id, name, ok)
			case d.Headers()[HeaderEventID] != "evt_deliv" || d.Headers()[HeaderDestination] != "billing-1" || d.Headers()[HeaderType] != "invoice.paid":
				t.Errorf("headers %v", d.Headers())
			case err != nil || !bytes.Equal(got, body):
				t.Errorf("%s body (%v) differs", compression, err)
			}
			if n, ok := DestinationOf(RerunID(id, 3)); !ok || n != "billing-1" {
				t.Errorf("a re-run copy's destination: %q %v", n, ok)
			}
		}
	}
	if DeliveryQueue("billing-1") != "dest-billing-1" {
		t.Error(DeliveryQueue("billing-1"))
	}
	for name, want := range map[string]bool{"a": true, "billing_2-x": true, "": false, "Billing": false, "a:b": false, "a.b": false,
		string(make([]byte, MaxDestinationName+1)): false} {
		if ValidDestinationName(name) != want {
			t.Errorf("ValidDestinationName(%q) = %v", name, !want)
		}
	}
	if _, ok := DestinationOf("evt_1:rerun:1"); ok {
		t.Error("an event's re-run copy is not a delivery")
	}
}
