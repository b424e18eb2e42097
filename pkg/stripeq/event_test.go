package stripeq

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// chargeObject is a caller's own struct for a stripe.Charge.
type chargeObject struct {
	ID       string       `json:"id"`
	Customer ExpandableID `json:"customer"`
	Amount   int64        `json:"amount"`
}

func TestParseErrors(t *testing.T) {
	body := stripetest.Fixture(events.ChargeFailed)
	good, _, _ := stripetask.New(body, stripetask.Options{})
	edit := func(fn func(e map[string]any)) *asynq.Task {
		return asynq.NewTaskWithHeaders(good.Type(), stripetest.Edit(body, fn), good.Headers())
	}
	tests := []struct {
		name   string
		task   *asynq.Task
		want   error  // errors.Is
		substr string // in the message
	}{
		{"not a stripe task", asynq.NewTask("email:send", body), stripetask.ErrNotStripeTask, ""},
		{"not JSON", asynq.NewTaskWithHeaders(good.Type(), []byte("{"), good.Headers()), stripetask.ErrMalformed, ""},
		{"an array", asynq.NewTaskWithHeaders(good.Type(), []byte("[]"), good.Headers()), stripetask.ErrMalformed, ""},
		{"created is a string", edit(func(e map[string]any) { e["created"] = "yesterday" }), stripetask.ErrMalformed, ""},
		{"no data.object", edit(func(e map[string]any) { e["data"] = map[string]any{} }), stripetask.ErrNotEvent, "data.object"},
		{"null data.object", edit(func(e map[string]any) { e["data"] = map[string]any{"object": nil} }), stripetask.ErrNotEvent, "data.object"},
		{"no id", edit(func(e map[string]any) { delete(e, "id") }), stripetask.ErrNotEvent, ""},
		{"type differs from the task's", edit(func(e map[string]any) { e["type"] = "charge.succeeded" }), stripetask.ErrNotEvent, "differs"},
		{"a field of the object has the wrong type", edit(func(e map[string]any) { stripetest.Object(e)["amount"] = "2000" }), nil,
			`JSON string into Go int64 within "/data/object/amount"`},
		{"an expandable field is a number", edit(func(e map[string]any) { stripetest.Object(e)["customer"] = 42 }), nil, "decode data.object of charge.failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e event[chargeObject]
			_, _, err := parse(tt.task, &e)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want %v containing %q", err, tt.want, tt.substr)
			}
			// Every parse error archives the task at once.
			w := newTestWorker(t)
			ran := false
			Handle(w, events.ChargeFailed, func(context.Context, *Event[chargeObject]) error { ran = true; return nil })
			if err := w.ProcessTask(t.Context(), tt.task); tt.want != stripetask.ErrNotStripeTask && (!errors.Is(err, asynq.SkipRetry) || ran) {
				t.Errorf("handler: %v, want SkipRetry", err)
			}
		})
	}
}

func TestDecodeCopy(t *testing.T) {
	body := stripetest.Fixture(events.ChargeFailed)
	tests := []struct {
		name      string
		body      []byte
		permanent bool
	}{
		{"no data.object", stripetest.Edit(body, func(e map[string]any) { delete(e, "data") }), true},
		{"an object that does not decode", stripetest.Edit(body, func(e map[string]any) { stripetest.Object(e)["amount"] = true }), true},
		{"an envelope that does not decode", stripetest.Edit(body, func(e map[string]any) { e["created"] = "now" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e event[chargeObject]
			err := decodeCopy(tt.body, events.ChargeFailed, &e)
			if err == nil || errors.Is(err, asynq.SkipRetry) != tt.permanent {
				t.Errorf("err = %v, want permanent %v", err, tt.permanent)
			}
		})
	}
	var e event[chargeObject]
	if err := decodeCopy(body, events.ChargeFailed, &e); err != nil || e.Data.Object.ID != "ch_stripeq_demo" {
		t.Errorf("decodeCopy = %v, object %+v", err, e.Data.Object)
	}
}
