package stripetask_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRoundTrip builds the task of every handled event type from its
// real-shaped fixture and parses it back.
func TestRoundTrip(t *testing.T) {
	for _, typ := range stripetask.Handled() {
		t.Run(typ, func(t *testing.T) {
			body := stripetest.Fixture(typ)
			task, meta, err := stripetask.New(body, stripetask.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if task.Type() != "stripe:"+typ {
				t.Errorf("task type = %q", task.Type())
			}
			if !bytes.Equal(task.Payload(), body) {
				t.Error("payload is not the body as received")
			}
			// asynq copies headers into the stored message; Parse reads
			// them back the way the worker gets them.
			stored := asynq.NewTaskWithHeaders(task.Type(), task.Payload(), task.Headers())
			event, parsed, err := stripetask.Parse(stored)
			if err != nil {
				t.Fatal(err)
			}
			if parsed != meta {
				t.Errorf("parsed metadata %+v, want %+v", parsed, meta)
			}
			if string(event.Type) != typ || event.ID != meta.ID || event.Created != meta.Created {
				t.Errorf("event %s %s %d does not match metadata %+v", event.Type, event.ID, event.Created, meta)
			}
			if meta.APIVersion != "2023-10-16" || meta.Livemode {
				t.Errorf("metadata %+v: want test-mode 2023-10-16", meta)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name string
		edit func(e map[string]any)
		typ  string
		want map[string]string
	}{
		{"customer is its own customer", nil, "customer.created", map[string]string{
			"type": "customer.created", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "objectId": "cus_stripeq_demo", "created": "1700000000"}},
		{"invoice names its customer", nil, "invoice.paid", map[string]string{
			"type": "invoice.paid", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "objectId": "in_stripeq_demo", "created": "1700000000"}},
		{"upcoming invoice has no id", nil, "invoice.upcoming", map[string]string{
			"type": "invoice.upcoming", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "created": "1700000000"}},
		{"connect, live, expanded customer", func(e map[string]any) {
			e["account"] = "acct_123"
			e["livemode"] = true
			stripetest.Object(e)["customer"] = map[string]any{"id": "cus_expanded", "object": "customer"}
		}, "invoice.paid", map[string]string{
			"type": "invoice.paid", "livemode": "true", "apiVersion": "2023-10-16", "account": "acct_123",
			"customer": "cus_expanded", "objectId": "in_stripeq_demo", "created": "1700000000"}},
		{"no api_version", func(e map[string]any) { delete(e, "api_version") }, "charge.failed", map[string]string{
			"type": "charge.failed", "livemode": "false", "apiVersion": "",
			"customer": "cus_stripeq_demo", "objectId": "ch_stripeq_demo", "created": "1700000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := stripetest.Event(tt.typ, "evt_h", time.Unix(1700000000, 0))
			if tt.edit != nil {
				body = stripetest.Edit(body, tt.edit)
			}
			task, _, err := stripetask.New(body, stripetask.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := task.Headers()
			if len(got) != len(tt.want) {
				t.Errorf("headers = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("header %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"not JSON", `hello`, stripetask.ErrMalformed},
		{"truncated", `{"id":"evt_1"`, stripetask.ErrMalformed},
		{"JSON array", `[1,2]`, stripetask.ErrNotEvent},
		{"another object", `{"id":"cus_1","object":"customer"}`, stripetask.ErrNotEvent},
		{"no type", `{"id":"evt_1","object":"event","created":1,"data":{"object":{}}}`, stripetask.ErrNotEvent},
		{"no id", `{"object":"event","type":"x","created":1,"data":{"object":{}}}`, stripetask.ErrNotEvent},
		{"no created", `{"id":"evt_1","type":"x","data":{"object":{}}}`, stripetask.ErrNotEvent},
		{"no data.object", `{"id":"evt_1","type":"x","created":1,"data":{}}`, stripetask.ErrNotEvent},
		{"id of the wrong type", `{"id":5,"type":"x","created":1,"data":{"object":{}}}`, stripetask.ErrNotEvent},
		{"minimal event", `{"id":"evt_1","type":"x","created":1,"data":{"object":{}}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stripetask.Decode([]byte(tt.body))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	good := stripetest.Fixture("customer.created")
	tests := []struct {
		name string
		task *asynq.Task
		want error
	}{
		{"not a stripe task", asynq.NewTask("email:send", good), stripetask.ErrNotStripeTask},
		{"payload not JSON", asynq.NewTask("stripe:customer.created", []byte("{")), stripetask.ErrMalformed},
		{"payload of another type", asynq.NewTask("stripe:customer.updated", good), stripetask.ErrNotEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := stripetask.Parse(tt.task); !errors.Is(err, tt.want) {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}
