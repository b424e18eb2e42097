package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// fakeStripe serves stored events at /v1/events/{id} and charges at
// /v1/charges/{id}, as Stripe's API does, with Stripe's error shape for
// unknown IDs and for rate limits.
type fakeStripe struct {
	*httptest.Server
	mu        sync.Mutex
	events    map[string][]byte
	charges   map[string]string // charge ID → customer ID
	limited   map[string]int    // event ID → 429 answers left
	requests  map[string]int    // path → count
	authValid bool
}

func newFakeStripe(t *testing.T) *fakeStripe {
	f := &fakeStripe{events: map[string][]byte{}, charges: map[string]string{}, limited: map[string]int{}, requests: map[string]int{}, authValid: true}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[r.URL.Path]++
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer sk_test_stripeq" {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/events/"); ok {
		if f.limited[id] > 0 {
			f.limited[id]--
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
			return
		}
		if body, ok := f.events[id]; ok {
			w.Write(body)
			return
		}
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/charges/"); ok {
		if cus, ok := f.charges[id]; ok {
			json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "charge", "customer": cus})
			return
		}
	}
	w.WriteHeader(404)
	io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such object"}}`)
}

func (f *fakeStripe) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

func TestRefetchFromStripe(t *testing.T) {
	api := newFakeStripe(t)
	alerts := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		json.NewDecoder(r.Body).Decode(&m)
		alerts <- m.Text
	}))
	t.Cleanup(hook.Close)

	w, db := setupWith(t, stripeq.Config{
		StripeSecretKey: "sk_test_stripeq", StripeAPIBase: api.URL,
		AlertWebhookURL: hook.URL, DashboardURL: "http://dash.example",
	}, Options{})
	runServer(t, w)
	client := asynq.NewClientFromRedisClient(db.Client)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	enqueue := func(body []byte) {
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}

	// Stripe's copy wins over the payload.
	payload := stripetest.Event("customer.created", "evt_refetch_ok", time.Unix(1767225600, 0))
	api.events["evt_refetch_ok"] = stripetest.Edit(payload, func(e map[string]any) { stripetest.Object(e)["email"] = "from-stripe@example.com" })
	// Rate limited twice, then served.
	api.events["evt_refetch_429"] = stripetest.Event("customer.updated", "evt_refetch_429", time.Unix(1767225700, 0))
	api.limited["evt_refetch_429"] = 2
	enqueue(payload)
	enqueue(stripetest.Event("customer.updated", "evt_refetch_429", time.Unix(1767225700, 0)))
	// Unknown to Stripe: a forged or foreign event.
	enqueue(stripetest.Edit(stripetest.Event("invoice.paid", "evt_refetch_404", time.Unix(1767225800, 0)), func(map[string]any) {}))

	poll.Check(t, 20*time.Second, "2 completed and 1 archived", func() error {
		info, err := redistest.QueueCompleted(insp, "stripe", 2)
		if err == nil && info.Archived != 1 {
			err = fmt.Errorf("%d archived, want 1", info.Archived)
		}
		return err
	})
	if email, _ := db.Client.HGet(context.Background(), records.CustomerKey("cus_stripeq_demo"), "email").Result(); email != "jenny.rosen@example.com" {
		// evt_refetch_429 (newer, the fixture's email) was applied last.
		t.Errorf("email = %q", email)
	}
	ok, _ := insp.GetTaskInfo("stripe", "evt_refetch_ok")
	limited, _ := insp.GetTaskInfo("stripe", "evt_refetch_429")
	missing, _ := insp.GetTaskInfo("stripe", "evt_refetch_404")
	if o, _ := outcome.Parse(ok.Result); !o.Fetched {
		t.Errorf("outcome %s does not say Stripe's copy was fetched", ok.Result)
	}
	if limited.Retried != 0 || api.count("/v1/events/evt_refetch_429") != 3 {
		t.Errorf("429 twice: retried %d times counted, %d requests; want 0 counted, 3 requests", limited.Retried, api.count("/v1/events/evt_refetch_429"))
	}
	if missing.Retried != 0 || api.count("/v1/events/evt_refetch_404") != 1 || !strings.Contains(missing.LastErr, "404") {
		t.Errorf("404: retried %d, %d requests, last error %q; want archived at once", missing.Retried, api.count("/v1/events/evt_refetch_404"), missing.LastErr)
	}
	if ok.Retried != 0 {
		t.Errorf("evt_refetch_ok retried %d times", ok.Retried)
	}
	select {
	case text := <-alerts:
		for _, want := range []string{"evt_refetch_404", "invoice.paid", "cus_stripeq_demo", "404", "http://dash.example/executions/evt_refetch_404"} {
			if !strings.Contains(text, want) {
				t.Errorf("alert lacks %q: %s", want, text)
			}
		}
	case <-time.After(5 * time.Second):
		t.Error("no alert for the archived task")
	}
}

// TestRefetchUsesStripesCopy checks, handler by handler, that the copy from
// Stripe replaces the payload.
func TestRefetchUsesStripesCopy(t *testing.T) {
	api := newFakeStripe(t)
	w, db := setupWith(t, stripeq.Config{StripeSecretKey: "sk_test_stripeq", StripeAPIBase: api.URL}, Options{})
	payload := stripetest.Fixture("customer.created")
	api.events["evt_stripeq_customer_created"] = stripetest.Edit(payload, func(e map[string]any) { stripetest.Object(e)["email"] = "from-stripe@example.com" })
	if err := process(t, w, payload); err != nil {
		t.Fatal(err)
	}
	if email := hash(t, db.Client, records.CustomerKey("cus_stripeq_demo"))["email"]; email != "from-stripe@example.com" {
		t.Errorf("email = %q, want Stripe's copy", email)
	}

	// A dispute whose charge no event named: its customer comes from Stripe.
	api.events["evt_stripeq_charge_dispute_created"] = stripetest.Fixture("charge.dispute.created")
	api.charges["ch_stripeq_demo"] = "cus_from_api"
	if err := process(t, w, stripetest.Fixture("charge.dispute.created")); err != nil {
		t.Fatal(err)
	}
	if d := hash(t, db.Client, records.DisputeKey("dp_stripeq_demo")); d["customer"] != "cus_from_api" {
		t.Errorf("dispute customer = %q, want cus_from_api", d["customer"])
	}
	if h := hash(t, db.Client, records.CustomerKey("cus_from_api")); h["on_hold"] != "true" {
		t.Errorf("on_hold = %q, want true", h["on_hold"])
	}
}

// TestUnhandledTypesAreNotFetched: with an API key, an event of a type no
// handler is registered for is completed without asking Stripe for it.
func TestUnhandledTypesAreNotFetched(t *testing.T) {
	api := newFakeStripe(t)
	w, _ := setupWith(t, stripeq.Config{StripeSecretKey: "sk_test_stripeq", StripeAPIBase: api.URL}, Options{})
	body := stripetest.Edit(stripetest.Event("customer.created", "evt_product", time.Unix(1767225600, 0)), func(e map[string]any) {
		e["type"] = "product.created"
	})
	if err := process(t, w, body); err != nil {
		t.Fatal(err)
	}
	if n := api.count("/v1/events/evt_product"); n != 0 {
		t.Errorf("%d requests to Stripe for an unhandled type, want 0", n)
	}
}
