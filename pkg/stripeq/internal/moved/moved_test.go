package moved

import (
	"errors"
	"testing"
)

func TestInvoiceSubscriptionID(t *testing.T) {
	tests := []struct {
		name, object string
		want         ID
	}{
		{"2023-10-16", `{"subscription":"sub_1","charge":"ch_1"}`, ID{"sub_1", true}},
		{"2023-10-16 expanded", `{"subscription":{"id":"sub_1","object":"subscription"}}`, ID{"sub_1", true}},
		{"2023-10-16 no subscription", `{"subscription":null}`, ID{"", true}},
		{"basil", `{"parent":{"type":"subscription_details","subscription_details":{"subscription":"sub_1"}}}`, ID{"sub_1", true}},
		{"basil quote", `{"parent":{"type":"quote_details","quote_details":{"quote":"qt_1"},"subscription_details":null}}`, ID{"", true}},
		{"basil no parent", `{"parent":null}`, ID{}},
		{"not an invoice", `{"id":"cus_1"}`, ID{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inv Invoice
			if err := Object([]byte(`{"data":{"object":`+tt.object+`}}`), &inv); err != nil {
				t.Fatal(err)
			}
			if got := inv.SubscriptionID(); got != tt.want {
				t.Errorf("SubscriptionID() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPaymentInvoice(t *testing.T) {
	tests := []struct {
		object string
		want   ID
	}{
		{`{"id":"ch_1","invoice":"in_1"}`, ID{"in_1", true}},
		{`{"id":"ch_1","invoice":{"id":"in_1","object":"invoice"}}`, ID{"in_1", true}},
		{`{"id":"ch_1","invoice":null}`, ID{"", true}},
		{`{"id":"ch_1"}`, ID{}}, // basil and later: the event does not say
	}
	for _, tt := range tests {
		var p Payment
		if err := Object([]byte(`{"data":{"object":`+tt.object+`}}`), &p); err != nil {
			t.Fatal(err)
		}
		if p.Invoice != tt.want {
			t.Errorf("%s: Invoice = %+v, want %+v", tt.object, p.Invoice, tt.want)
		}
	}
	var p Payment
	if err := Object([]byte(`{"data":{"object":{"invoice":42}}}`), &p); err == nil {
		t.Error("an invoice that is a number decoded without error")
	}
}

func TestSubscriptionPeriod(t *testing.T) {
	tests := []struct {
		name, object string
		start, end   int64
		err          error
	}{
		{"2023-10-16", `{"current_period_start":100,"current_period_end":200,"items":{"data":[{"id":"si_1"}]}}`, 100, 200, nil},
		{"basil, one item", `{"items":{"data":[{"current_period_start":100,"current_period_end":200}]}}`, 100, 200, nil},
		{"basil, items on their own cycles", `{"items":{"data":[{"current_period_start":150,"current_period_end":300},{"current_period_start":100,"current_period_end":200}]}}`, 100, 200, nil},
		{"basil, no items", `{"items":{"data":[]}}`, 0, 0, ErrNoPeriod},
		{"nothing", `{"id":"sub_1"}`, 0, 0, ErrNoPeriod},
		{"a zero end is no period", `{"current_period_end":0,"items":{"data":[{"current_period_end":0}]}}`, 0, 0, ErrNoPeriod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Subscription
			if err := Object([]byte(`{"data":{"object":`+tt.object+`}}`), &s); err != nil {
				t.Fatal(err)
			}
			start, end, err := s.Period()
			if start != tt.start || end != tt.end || !errors.Is(err, tt.err) {
				t.Errorf("Period() = %d, %d, %v; want %d, %d, %v", start, end, err, tt.start, tt.end, tt.err)
			}
		})
	}
}

func TestObjectWithoutData(t *testing.T) {
	var p Payment
	if err := Object([]byte(`{"id":"evt_1"}`), &p); err == nil {
		t.Error("an event without data.object decoded without error")
	}
}
