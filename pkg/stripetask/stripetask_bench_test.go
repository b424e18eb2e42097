package stripetask_test

import (
	"testing"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// BenchmarkNew is the task constructor on the api's request path, for the
// smallest and largest fixtures and a typical 3.4 KB event, with its parts:
// Decode (the envelope) and Headers. Parse, the worker's full stripe-go
// decode of the same payload, is the cost New keeps off the request path.
func BenchmarkNew(b *testing.B) {
	for _, typ := range []string{events.CustomerCreated, events.ChargeFailed, events.InvoicePaymentFailed} {
		body := stripetest.Fixture(typ)
		b.Run(typ+"/New", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, _, err := stripetask.New(body, stripetask.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ+"/Decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := stripetask.Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		m, _ := stripetask.Decode(body)
		b.Run(typ+"/Headers", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Headers()
			}
		})
		task, _, _ := stripetask.New(body, stripetask.Options{})
		b.Run(typ+"/Parse", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, _, err := stripetask.Parse(task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
