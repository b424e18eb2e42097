package stripeq

import (
	"encoding/json"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// BenchmarkParse decodes a charge.failed task as the worker does (parse
// into its small struct) against stripe-go's full decode, which the worker
// did before: stripetask.Parse into a stripe.Event, then data.object into
// a stripe.Charge.
func BenchmarkParse(b *testing.B) {
	task, _, _ := stripetask.New(stripetest.Fixture(events.ChargeFailed), stripetask.Options{})
	b.Run("worker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e event[chargeObject]
			if _, _, err := parse(task, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stripe-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, _, err := stripetask.Parse(task)
			if err != nil {
				b.Fatal(err)
			}
			var ch stripe.Charge
			if err := json.Unmarshal(e.Data.Raw, &ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
