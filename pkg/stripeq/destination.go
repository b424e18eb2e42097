package stripeq

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/destinations"
)

// Destination is an HTTP endpoint of your own app that the worker forwards
// Stripe events to, signed as Standard Webhooks
// (https://www.standardwebhooks.com): each event is a POST of its JSON,
// byte for byte as Stripe sent it, with webhook-id (the event ID),
// webhook-timestamp, webhook-signature and stripe-event-type headers.
// Each destination has its own asynq queue ("dest-<Name>") and its own
// server in the worker, so a slow or failing one delays neither the
// built-in handlers nor another destination.
type Destination struct {
	// Name names the destination in its queue, its deliveries' task IDs
	// and the Console: lowercase letters, digits, "_" and "-", at most 40.
	// It is permanent once deployed. DESTINATION_URL's is "default".
	Name string
	// URL is where deliveries are POSTed (DESTINATION_URL): http:// or
	// https://; user information in it is sent as basic authentication.
	// Plain http:// to a host that is not loopback is warned of at start.
	URL string
	// Secret is the Standard Webhooks signing secret (DESTINATION_SECRET):
	// "whsec_" followed by the base64 of at least 16 random bytes. Required.
	Secret string
	// Events are the event types forwarded (DESTINATION_EVENTS); an entry
	// ending in ".*" matches a prefix, as "invoice.*". If empty, every type
	// the api stores (STRIPE_EVENTS).
	Events []string
	// Timeout bounds one POST, to the end of its response's first
	// kilobyte (DESTINATION_TIMEOUT). If zero, 10s.
	Timeout time.Duration
	// Concurrency is how many POSTs each worker process has in flight to
	// this destination at once (DESTINATION_CONCURRENCY). If zero, 5.
	Concurrency int
	// Rate is the most POSTs per second each worker process sends to this
	// destination (DESTINATION_RATE). If zero, unlimited.
	Rate float64
	// Order is DESTINATION_ORDER: [OrderCustomer] delivers an event of a
	// customer only after that customer's earlier events (by creation
	// time) have been delivered to this destination or archived. If
	// empty, deliveries run in any order.
	Order string
	// NoInline is DESTINATION_INLINE=false: every delivery is a task of
	// the destination's queue, never made in its event's own task. By
	// default a healthy destination is delivered to inline (see the
	// worker's README, "Inline while healthy"), which holds the event's
	// worker and global slots for the POST.
	NoInline bool
}

// OrderCustomer is the value of [Destination.Order] that orders each
// customer's deliveries.
const OrderCustomer = destinations.OrderCustomer

// config is d for the engine.
func (d Destination) config() destinations.Config {
	return destinations.Config{Name: d.Name, URL: d.URL, Secret: d.Secret, Events: d.Events, Timeout: d.Timeout,
		Concurrency: d.Concurrency, Rate: d.Rate, Order: d.Order, NoInline: d.NoInline}
}

// fileDestination is one destination of DESTINATIONS_FILE, a JSON array:
// the fields of Destination, lowercase, with "timeout" a Go duration
// string such as "10s".
type fileDestination struct {
	Name        string       `json:"name"`
	URL         string       `json:"url"`
	Secret      string       `json:"secret"`
	Events      []string     `json:"events,omitempty"`
	Timeout     fileDuration `json:"timeout,omitempty"`
	Concurrency int          `json:"concurrency,omitempty"`
	Rate        float64      `json:"rate,omitempty"`
	Order       string       `json:"order,omitempty"`
	Inline      *bool        `json:"inline,omitempty"` // if absent, true
}

// fileDuration reads as JSON from a Go duration string such as "10s".
type fileDuration time.Duration

func (d *fileDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration", s)
	}
	*d = fileDuration(v)
	return nil
}

// readDestinations reads DESTINATION_URL and its settings (a destination
// named "default") and DESTINATIONS_FILE, a JSON array of destinations.
func readDestinations(env *envconfig.Reader) []Destination {
	var ds []Destination
	if u := env.Lookup("DESTINATION_URL"); u != "" || env.Lookup("DESTINATION_SECRET") != "" {
		rate := 0.0
		if s := env.Lookup("DESTINATION_RATE"); s != "" {
			if _, err := fmt.Sscanf(s, "%g", &rate); err != nil || rate < 0 {
				env.Fail("DESTINATION_RATE", fmt.Sprintf("must be a number of POSTs per second ≥ 0, got %q", s))
			}
		}
		ds = append(ds, Destination{
			Name:        destinations.DefaultName,
			URL:         u,
			Secret:      env.Lookup("DESTINATION_SECRET"),
			Events:      env.List("DESTINATION_EVENTS", nil),
			Timeout:     env.Duration("DESTINATION_TIMEOUT", destinations.DefaultTimeout),
			Concurrency: env.Int("DESTINATION_CONCURRENCY", destinations.DefaultConcurrency, 1),
			Rate:        rate,
			Order:       env.Lookup("DESTINATION_ORDER"),
			NoInline:    !env.Bool("DESTINATION_INLINE", true),
		})
	}
	if path := env.Lookup("DESTINATIONS_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			env.Fail("DESTINATIONS_FILE", "cannot be read: "+err.Error())
			return ds
		}
		var more []fileDestination
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&more); err != nil {
			// encoding/json's errors name fields and types, never values.
			env.Fail("DESTINATIONS_FILE", "is not a JSON array of destinations: "+err.Error())
			return ds
		}
		for _, f := range more {
			ds = append(ds, Destination{Name: f.Name, URL: f.URL, Secret: f.Secret, Events: f.Events, Timeout: time.Duration(f.Timeout),
				Concurrency: f.Concurrency, Rate: f.Rate, Order: f.Order, NoInline: f.Inline != nil && !*f.Inline})
		}
	}
	return ds
}

// destinationVariables are the variables of DESTINATION_URL's destination,
// by the name of the setting (destinations.Namer).
var destinationVariables = map[string]string{
	"Name": "DESTINATIONS_FILE", "URL": "DESTINATION_URL", "Secret": "DESTINATION_SECRET", "Events": "DESTINATION_EVENTS",
	"Order": "DESTINATION_ORDER", "Concurrency": "DESTINATION_CONCURRENCY", "AllowLinkLocal": "DESTINATION_ALLOW_LINK_LOCAL=true",
}

// destinationVariable names a destination's setting by its variable:
// DESTINATION_URL's by the variable, one of DESTINATIONS_FILE's as
// "DESTINATIONS_FILE destination <name> <setting>".
func destinationVariable(_ int, d destinations.Config, field string) string {
	v := destinationVariables[field]
	if d.Name == destinations.DefaultName || field == "Name" || field == "AllowLinkLocal" {
		return v
	}
	return "DESTINATIONS_FILE destination " + d.Name + " " + strings.ToLower(strings.TrimPrefix(v, "DESTINATION_"))
}

// destinationField names a destination's setting by its Go field:
// "Config.Destinations[1].Secret".
func destinationField(i int, _ destinations.Config, field string) string {
	if field == "AllowLinkLocal" {
		return "Config.AllowLinkLocalDestinations=true"
	}
	return fmt.Sprintf("Config.Destinations[%d].%s", i, field)
}
