// Package stripetest makes signed, real-shaped Stripe webhook deliveries for
// tests, benchmarks and the local event sender.
//
// The events under testdata/events are Stripe API 2023-10-16 events built
// from stripe-mock v0.180.0's fixtures, one per handled type, whose IDs link
// to one customer, subscription, invoice, charge and dispute.
package stripetest

import (
	"bytes"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Secret is the webhook signing secret tests use.
const Secret = "whsec_stripeq_test_secret_0123456789abcdef"

//go:embed testdata/events/*.json
var events embed.FS

// Fixture returns the stored event of the given Stripe event type, as Stripe
// would send it. It panics when there is none: that is a bug in the caller.
func Fixture(eventType string) []byte {
	b, err := events.ReadFile("testdata/events/" + eventType + ".json")
	if err != nil {
		panic(fmt.Sprintf("stripetest: no fixture for %q", eventType))
	}
	return b
}

// FixtureTypes returns the event types that have a fixture.
func FixtureTypes() []string {
	entries, _ := fs.ReadDir(events, "testdata/events")
	var types []string
	for _, e := range entries {
		types = append(types, strings.TrimSuffix(e.Name(), ".json"))
	}
	return types
}

// Edit decodes an event body, lets fn change it, and encodes it again.
func Edit(body []byte, fn func(e map[string]any)) []byte {
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		panic(fmt.Sprintf("stripetest: Edit of a body that is not JSON: %v", err))
	}
	fn(e)
	out, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return out
}

// Object returns data.object of a decoded event, for use inside Edit.
func Object(e map[string]any) map[string]any {
	return e["data"].(map[string]any)["object"].(map[string]any)
}

// Event returns the fixture of eventType with its ID and created time
// replaced, the usual way to make distinct events of one type.
func Event(eventType, id string, created time.Time) []byte {
	return Edit(Fixture(eventType), func(e map[string]any) {
		e["id"] = id
		e["created"] = created.Unix()
	})
}

// Sign returns a Stripe-Signature header for body, signed at ts with each of
// secrets, as Stripe does while a secret is being rotated.
func Sign(body []byte, ts time.Time, secrets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%d", ts.Unix())
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(webhook.ComputeSignature(ts, body, s)))
	}
	return b.String()
}

// demoIDs are the object IDs the fixtures share.
var demoIDs = []string{
	"cus_stripeq_demo", "sub_stripeq_demo", "in_stripeq_demo", "pi_stripeq_demo",
	"ch_stripeq_demo", "dp_stripeq_demo", "cs_stripeq_demo",
}

// Relabel replaces the fixtures' shared object IDs (cus_stripeq_demo,
// sub_stripeq_demo, …) in body with the same IDs carrying suffix, so that
// the events of one run describe their own customer, subscription,
// invoice, charge and dispute, still linked to each other.
func Relabel(body []byte, suffix string) []byte {
	for _, id := range demoIDs {
		body = bytes.ReplaceAll(body, []byte(`"`+id+`"`), []byte(`"`+id+"_"+suffix+`"`))
	}
	return body
}

// CustomerID is the customer of the fixtures after Relabel with suffix; an
// empty suffix gives the fixtures' own.
func CustomerID(suffix string) string {
	if suffix == "" {
		return "cus_stripeq_demo"
	}
	return "cus_stripeq_demo_" + suffix
}
