package eventsender

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// receiver is a webhook receiver that verifies each delivery, keeps it, and
// answers "ignored" to the types in ignore, "Received" to the others.
type receiver struct {
	ignore []string

	mu     sync.Mutex
	events []map[string]any
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := webhook.ValidatePayload(body, req.Header.Get("Stripe-Signature"), stripetest.Secret); err != nil {
		http.Error(w, `{"message":"bad signature"}`, http.StatusBadRequest)
		return
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		http.Error(w, `{"message":"not JSON"}`, http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if slices.Contains(r.ignore, e["type"].(string)) {
		io.WriteString(w, `{"message":"ignored"}`)
		return
	}
	io.WriteString(w, `{"message":"Received"}`)
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func setup(t *testing.T, ignore ...string) (*receiver, Sender) {
	t.Helper()
	r := &receiver{ignore: ignore}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, Sender{URL: srv.URL, Secret: stripetest.Secret}
}

func TestSendAtEachVersion(t *testing.T) {
	tests := []struct {
		version string
		want    string // api_version of what is sent
	}{
		{"", stripetest.APIVersion20231016},
		{stripetest.APIVersion20231016, stripetest.APIVersion20231016},
		{stripetest.APIVersionBasil, stripetest.APIVersionBasil},
		{stripetest.APIVersionDahlia, stripetest.APIVersionDahlia},
	}
	for _, tc := range tests {
		t.Run("version "+tc.version, func(t *testing.T) {
			r, s := setup(t)
			s.APIVersion = tc.version
			created := time.Now().Add(-time.Minute).Truncate(time.Second)
			id, err := s.Send(context.Background(), "invoice.paid", created, Delivery{Objects: "t1"})
			if err != nil {
				t.Fatal(err)
			}
			got := r.received()
			if len(got) != 1 {
				t.Fatalf("%d deliveries, want 1", len(got))
			}
			e := got[0]
			if e["id"] != id || e["api_version"] != tc.want || e["created"] != float64(created.Unix()) {
				t.Errorf("sent id %v api_version %v created %v, want %s %s %d", e["id"], e["api_version"], e["created"], id, tc.want, created.Unix())
			}
			// The object is the version's fixture's, relabeled.
			var fixture map[string]any
			if err := json.Unmarshal(stripetest.Relabel(stripetest.FixtureAt(tc.want, "invoice.paid"), "t1"), &fixture); err != nil {
				t.Fatal(err)
			}
			gotObj, _ := json.Marshal(e["data"])
			wantObj, _ := json.Marshal(fixture["data"])
			if string(gotObj) != string(wantObj) {
				t.Errorf("data is not the %s fixture's, relabeled", tc.want)
			}
		})
	}
}

func TestUnknownAPIVersion(t *testing.T) {
	r, s := setup(t)
	s.APIVersion = "2024-06-20"
	_, sendErr := s.Send(context.Background(), "invoice.paid", time.Now(), Delivery{})
	_, scenarioErr := s.Scenario(context.Background(), Delivery{}, false)
	for name, err := range map[string]error{"Send": sendErr, "Scenario": scenarioErr} {
		if err == nil || !strings.Contains(err.Error(), `"2024-06-20"`) || !strings.Contains(err.Error(), stripetest.APIVersionDahlia) {
			t.Errorf("%s: error %v, want one naming the version and the known ones", name, err)
		}
	}
	if n := len(r.received()); n != 0 {
		t.Errorf("%d deliveries, want none", n)
	}
}

// TestScenario checks that Scenario delivers the Lifecycle at the version,
// created in its order, and returns the IDs of the events the receiver
// took, not of those it ignored.
func TestScenario(t *testing.T) {
	tests := []struct {
		version string
		shuffle bool
		ignore  []string
	}{
		{stripetest.APIVersion20231016, false, nil},
		{stripetest.APIVersionDahlia, true, nil},
		{stripetest.APIVersionBasil, true, []string{"charge.failed", "invoice.upcoming"}},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			r, s := setup(t, tc.ignore...)
			s.APIVersion = tc.version
			ids, err := s.Scenario(context.Background(), Delivery{Objects: "sc"}, tc.shuffle)
			if err != nil {
				t.Fatal(err)
			}
			got := r.received()
			if len(got) != len(Lifecycle) {
				t.Fatalf("%d deliveries, want %d", len(got), len(Lifecycle))
			}
			created := map[string]float64{}
			var took []string
			for _, e := range got {
				typ := e["type"].(string)
				created[typ] = e["created"].(float64)
				if e["api_version"] != tc.version {
					t.Errorf("%s sent at %v", typ, e["api_version"])
				}
				if !slices.Contains(tc.ignore, typ) {
					took = append(took, e["id"].(string))
				}
			}
			if !slices.Equal(ids, took) {
				t.Errorf("Scenario returned %q, want the IDs the receiver took: %q", ids, took)
			}
			for i := 1; i < len(Lifecycle); i++ {
				if created[Lifecycle[i]] <= created[Lifecycle[i-1]] {
					t.Errorf("%s created %v, not after %s (%v)", Lifecycle[i], created[Lifecycle[i]], Lifecycle[i-1], created[Lifecycle[i-1]])
				}
			}
		})
	}
}

// TestLifecycleFollowsTheStory checks that Scenario's Lifecycle is part of
// stripetest's story, in its order.
func TestLifecycleFollowsTheStory(t *testing.T) {
	story := stripetest.Lifecycle()
	last := -1
	for _, typ := range Lifecycle {
		i := slices.Index(story, typ)
		if i <= last {
			t.Errorf("%s is at %d of stripetest.Lifecycle, not after the type before it (%d)", typ, i, last)
		}
		last = i
	}
}
