package stripetask_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRoundTrip builds the task of every handled event type from its
// real-shaped fixture and parses it back.
func TestRoundTrip(t *testing.T) {
	for _, typ := range events.Handled() {
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
			if !reflect.DeepEqual(parsed, meta) {
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
			"customer": "cus_stripeq_demo", "objectId": "cus_stripeq_demo", "created": "1700000000", "refs": "jenny.rosen@example.com"}},
		{"invoice names its customer", nil, "invoice.paid", map[string]string{
			"type": "invoice.paid", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "objectId": "in_stripeq_demo", "created": "1700000000",
			"refs": "ch_stripeq_demo,pi_stripeq_demo,sub_stripeq_demo,jenny.rosen@example.com"}},
		{"upcoming invoice has no id", nil, "invoice.upcoming", map[string]string{
			"type": "invoice.upcoming", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "created": "1700000000", "refs": "sub_stripeq_demo,jenny.rosen@example.com"}},
		{"connect, live, expanded customer", func(e map[string]any) {
			e["account"] = "acct_123"
			e["livemode"] = true
			stripetest.Object(e)["customer"] = map[string]any{"id": "cus_expanded", "object": "customer"}
		}, "invoice.paid", map[string]string{
			"type": "invoice.paid", "livemode": "true", "apiVersion": "2023-10-16", "account": "acct_123",
			"customer": "cus_expanded", "objectId": "in_stripeq_demo", "created": "1700000000",
			"refs": "ch_stripeq_demo,pi_stripeq_demo,sub_stripeq_demo,jenny.rosen@example.com"}},
		{"no api_version", func(e map[string]any) { delete(e, "api_version") }, "charge.failed", map[string]string{
			"type": "charge.failed", "livemode": "false", "apiVersion": "",
			"customer": "cus_stripeq_demo", "objectId": "ch_stripeq_demo", "created": "1700000000",
			"refs": "in_stripeq_demo,pi_stripeq_demo,jenny.rosen@example.com"}},
		{"refs: expanded, mixed-case email, odd shapes left out", func(e map[string]any) {
			o := stripetest.Object(e)
			o["charge"] = map[string]any{"id": "ch_expanded", "object": "charge"}
			o["payment_intent"] = 42
			o["subscription"] = "sub with space"
			o["customer_email"] = " Jenny.Rosen@Example.COM "
			o["receipt_email"] = []any{"not", "an", "email"}
		}, "invoice.paid", map[string]string{
			"type": "invoice.paid", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "objectId": "in_stripeq_demo", "created": "1700000000",
			"refs": "ch_expanded,jenny.rosen@example.com"}},
		{"refs: a checkout session's customer_details", func(e map[string]any) {
			stripetest.Object(e)["customer_details"] = map[string]any{"email": "buyer@example.com", "name": "B"}
		}, "checkout.session.completed", map[string]string{
			"type": "checkout.session.completed", "livemode": "false", "apiVersion": "2023-10-16",
			"customer": "cus_stripeq_demo", "objectId": "cs_stripeq_demo", "created": "1700000000",
			"refs": "in_stripeq_demo,sub_stripeq_demo,buyer@example.com"}},
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

// TestDecodeValidatesIDs checks that event, customer and account IDs, the
// type and the API version are held to Stripe's characters, so that none
// can carry a character that means something in a URL, a Redis key or a
// log line.
func TestDecodeValidatesIDs(t *testing.T) {
	base := stripetest.Fixture(events.ChargeFailed)
	edit := func(fn func(e map[string]any)) []byte { return stripetest.Edit(base, fn) }
	set := func(k string, v any) []byte { return edit(func(e map[string]any) { e[k] = v }) }
	customer := func(v any) []byte { return edit(func(e map[string]any) { stripetest.Object(e)["customer"] = v }) }
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"a real event", base, true},
		{"an ID with capitals and digits", set("id", "evt_1OabcXYZ09"), true},
		{"a type of three parts", set("type", "customer.subscription.trial_will_end"), true},
		{"a named API version", set("api_version", "2024-09-30.acacia"), true},
		{"a Connect account", set("account", "acct_1032D82eZvKYlo2C"), true},
		{"an expanded customer", customer(map[string]any{"id": "cus_X1", "object": "customer"}), true},
		{"an ID of 255 bytes", set("id", "evt_"+strings.Repeat("a", 251)), true},

		{"an ID with #", set("id", "evt_victim1#x"), false},
		{"an ID with ?", set("id", "evt_victim1?x=1"), false},
		{"an ID with a newline", set("id", "evt_a\nb"), false},
		{"an ID with NUL", set("id", "evt_a\x00b"), false},
		{"an ID of a re-run copy", set("id", "evt_victim1:rerun:7"), false},
		{"an ID with /", set("id", "evt_a/../b"), false},
		{"an ID with a space", set("id", "evt_a b"), false},
		{"an ID with %", set("id", "evt_a%2Fb"), false},
		{"an ID with a non-ASCII letter", set("id", "evt_é"), false},
		{"an ID of 256 bytes", set("id", "evt_"+strings.Repeat("a", 252)), false},
		{"a type with a newline", set("type", "charge.failed\ncustomer:cus_x"), false},
		{"a type with :", set("type", "charge:failed"), false},
		{"a type with an empty part", set("type", "charge..failed"), false},
		{"a type ending in .", set("type", "charge."), false},
		{"a type starting with .", set("type", ".charge"), false},
		{"a customer with #", customer("cus_a#b"), false},
		{"a customer with a newline", customer("cus_a\nb"), false},
		{"an expanded customer with ?", customer(map[string]any{"id": "cus_a?b", "object": "customer"}), false},
		{"an account with /", set("account", "acct_1/x"), false},
		{"an account with a newline", set("account", "acct_1\n"), false},
		{"an API version with a newline", set("api_version", "2023-10-16\nx"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stripetask.Decode(tt.body)
			if tt.ok && err != nil {
				t.Errorf("Decode = %v, want no error", err)
			}
			if !tt.ok && !errors.Is(err, stripetask.ErrNotEvent) {
				t.Errorf("Decode = %v, want ErrNotEvent", err)
			}
		})
	}
}

// TestRerunCopyIDs checks that the ID validation applies to the event, not
// to task IDs: a re-run copy "<id>:rerun:<n>" is built, queued next to its
// original and parsed back.
func TestRerunCopyIDs(t *testing.T) {
	body := stripetest.Event(events.InvoicePaid, "evt_orig1", time.Unix(1700000000, 0))
	_, m, err := stripetask.New(body, stripetask.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := stripetask.Options{Shards: 8}
	cp := m
	cp.ID = m.ID + ":rerun:7"
	task := stripetask.NewFromMetadata(body, cp, o)
	if stripetask.QueueFor(cp.ID, o) != stripetask.QueueFor(m.ID, o) {
		t.Error("the copy is queued apart from its original")
	}
	stored := asynq.NewTaskWithHeaders(task.Type(), task.Payload(), task.Headers())
	if _, parsed, err := stripetask.Parse(stored); err != nil || parsed.Type != events.InvoicePaid {
		t.Errorf("Parse of the copy = %+v, %v", parsed, err)
	}
}

// TestOneParse decodes the event of issue 19 (a charge.failed carrying both
// "customer":"cus_a" and "cuſtomer":"cus_b", the long s that
// encoding/json folds to s) and events with duplicate names: names match
// exactly, and a name given twice is refused.
func TestOneParse(t *testing.T) {
	base := string(stripetest.Event(events.ChargeFailed, "evt_longs", time.Unix(1700000000, 0)))
	longS := strings.Replace(base, `"customer":"cus_stripeq_demo"`, `"customer":"cus_a","cuſtomer":"cus_b"`, 1)
	if longS == base {
		t.Fatal("the fixture has no customer to replace")
	}
	m, err := stripetask.Decode([]byte(longS))
	if err != nil || m.Customer != "cus_a" {
		t.Errorf("Decode = %+v, %v; want customer cus_a", m, err)
	}
	var o struct {
		Data struct {
			Object struct {
				Customer string `json:"customer"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := stripetask.Unmarshal([]byte(longS), &o); err != nil || o.Data.Object.Customer != "cus_a" {
		t.Errorf("Unmarshal: customer %q, %v; want cus_a", o.Data.Object.Customer, err)
	}
	for name, body := range map[string]string{
		"customer twice":    strings.Replace(base, `"customer":"cus_stripeq_demo"`, `"customer":"cus_a","customer":"cus_b"`, 1),
		"id twice":          strings.Replace(base, `"id":"evt_longs"`, `"id":"evt_longs","id":"evt_other"`, 1),
		"a name twice deep": strings.Replace(base, `"object":"charge"`, `"object":"charge","metadata":{"k":1,"k":2}`, 1),
		"invalid UTF-8":     strings.Replace(base, `"cus_stripeq_demo"`, "\"cus_\xff\"", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if body == base {
				t.Fatal("nothing replaced")
			}
			if _, err := stripetask.Decode([]byte(body)); !errors.Is(err, stripetask.ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
			task := asynq.NewTaskWithHeaders("stripe:charge.failed", []byte(body), nil)
			if _, _, err := stripetask.Parse(task); !errors.Is(err, stripetask.ErrMalformed) {
				t.Errorf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestDecodeRefs: the Console finds an invoice's events by its
// subscription at every API version: invoice.subscription up to acacia,
// invoice.parent.subscription_details.subscription since basil.
func TestDecodeRefs(t *testing.T) {
	tests := []struct {
		name, object string
		want         []string
	}{
		{"2023-10-16", `{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1","charge":"ch_1","payment_intent":"pi_1"}`,
			[]string{"ch_1", "pi_1", "sub_1"}},
		{"2026-08-26.dahlia", `{"id":"in_1","object":"invoice","customer":"cus_1","parent":{"type":"subscription_details","quote_details":null,"subscription_details":{"metadata":{},"subscription":"sub_1"}}}`,
			[]string{"sub_1"}},
		{"dahlia, expanded", `{"id":"in_1","object":"invoice","parent":{"subscription_details":{"subscription":{"id":"sub_1","object":"subscription"}}}}`,
			[]string{"sub_1"}},
		{"dahlia, a quote's invoice", `{"id":"in_1","object":"invoice","parent":{"type":"quote_details","quote_details":{"quote":"qt_1"},"subscription_details":null}}`,
			nil},
		{"a parent that is not an object", `{"id":"in_1","object":"invoice","parent":"x"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := stripetask.Decode([]byte(`{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000,"data":{"object":` + tt.object + `}}`))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Refs, tt.want) {
				t.Errorf("Refs = %q, want %q", m.Refs, tt.want)
			}
		})
	}
}
