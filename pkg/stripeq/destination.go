package stripeq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
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
	Name string `json:"name"`
	// URL is where deliveries are POSTed (DESTINATION_URL): http:// or
	// https://; user information in it is sent as basic authentication.
	// Plain http:// to a host that is not loopback is warned of at start.
	URL string `json:"url"`
	// Secret is the Standard Webhooks signing secret (DESTINATION_SECRET):
	// "whsec_" followed by the base64 of at least 16 random bytes. Required.
	Secret string `json:"secret"`
	// Events are the event types forwarded (DESTINATION_EVENTS); an entry
	// ending in ".*" matches a prefix, as "invoice.*". If empty, every type
	// the api stores (STRIPE_EVENTS).
	Events []string `json:"events,omitempty"`
	// Timeout bounds one POST, to the end of its response's first
	// kilobyte (DESTINATION_TIMEOUT). If zero, 10s.
	Timeout Duration `json:"timeout,omitempty"`
	// Concurrency is how many POSTs each worker process has in flight to
	// this destination at once (DESTINATION_CONCURRENCY). If zero, 5.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate is the most POSTs per second each worker process sends to this
	// destination (DESTINATION_RATE). If zero, unlimited.
	Rate float64 `json:"rate,omitempty"`
	// Order is DESTINATION_ORDER: "customer" delivers an event of a
	// customer only after that customer's earlier events (by creation
	// time) have been delivered to this destination or archived. If
	// empty, deliveries run in any order.
	Order string `json:"order,omitempty"`
}

// OrderCustomer is the value of [Destination.Order] that orders each
// customer's deliveries.
const OrderCustomer = "customer"

// Duration is a time.Duration that reads as JSON from a Go duration
// string such as "10s".
type Duration time.Duration

// UnmarshalJSON reads a duration string such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration", s)
	}
	*d = Duration(v)
	return nil
}

// Destination defaults, each written once.
const (
	defaultDestinationName        = "default"
	defaultDestinationTimeout     = 10 * time.Second
	defaultDestinationConcurrency = 5
	minDestinationSecret          = 16 // bytes, decoded
)

// readDestinations reads DESTINATION_URL and its settings (a destination
// named "default") and DESTINATIONS_FILE, a JSON array of [Destination]s.
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
			Name:        defaultDestinationName,
			URL:         u,
			Secret:      env.Lookup("DESTINATION_SECRET"),
			Events:      env.List("DESTINATION_EVENTS", nil),
			Timeout:     Duration(env.Duration("DESTINATION_TIMEOUT", defaultDestinationTimeout)),
			Concurrency: env.Int("DESTINATION_CONCURRENCY", defaultDestinationConcurrency, 1),
			Rate:        rate,
			Order:       env.Lookup("DESTINATION_ORDER"),
		})
	}
	if path := env.Lookup("DESTINATIONS_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			env.Fail("DESTINATIONS_FILE", "cannot be read: "+err.Error())
			return ds
		}
		var more []Destination
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&more); err != nil {
			// encoding/json's errors name fields and types, never values.
			env.Fail("DESTINATIONS_FILE", "is not a JSON array of destinations: "+err.Error())
			return ds
		}
		ds = append(ds, more...)
	}
	return ds
}

// forbiddenNets are link-local and cloud metadata addresses: a destination
// there would let whoever sets the URL read the host's cloud credentials
// through the Console's response excerpts.
var forbiddenNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local: AWS, GCP, Azure, OpenStack metadata
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("fd00:ec2::/32"),      // AWS metadata over IPv6 (fd00:ec2::254)
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("0.0.0.0/8"),          // "this host"
	netip.MustParsePrefix("::/128"),
}

// forbiddenAddr reports whether ip is a link-local or metadata address.
func forbiddenAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range forbiddenNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkDestinations records on env the destinations' invalid or unsafe
// settings, named by variable (or, for DESTINATIONS_FILE, by destination),
// never quoting a secret or a URL: a URL may hold a credential.
func checkDestinations(env *envconfig.Reader, ds []Destination, allowLinkLocal bool) {
	seen := map[string]bool{}
	for _, d := range ds {
		name := func(v string) string {
			if d.Name == defaultDestinationName {
				return v
			}
			return "DESTINATIONS_FILE destination " + d.Name + " " + strings.ToLower(strings.TrimPrefix(v, "DESTINATION_"))
		}
		if !delivery.ValidName(d.Name) {
			env.Fail("DESTINATIONS_FILE", fmt.Sprintf("destination name %q must be 1 to %d lowercase letters, digits, _ or -", d.Name, delivery.MaxName))
			continue
		}
		if seen[d.Name] {
			env.Fail("DESTINATIONS_FILE", "names destination "+d.Name+" twice (DESTINATION_URL's is named "+defaultDestinationName+")")
		}
		seen[d.Name] = true
		if _, err := destinationKey(d.Secret); err != nil {
			env.Fail(name("DESTINATION_SECRET"), err.Error())
		}
		for _, e := range d.Events {
			if !stripetask.ValidType(strings.TrimSuffix(e, ".*")) {
				env.Fail(name("DESTINATION_EVENTS"), fmt.Sprintf("%q is not an event type or a prefix such as invoice.*", e))
			}
		}
		if d.Order != "" && d.Order != OrderCustomer {
			env.Fail(name("DESTINATION_ORDER"), fmt.Sprintf("must be customer or unset, got %q", d.Order))
		}
		if d.Concurrency < 0 || d.Rate < 0 || d.Timeout < 0 {
			env.Fail(name("DESTINATION_CONCURRENCY"), "concurrency, rate and timeout must not be negative")
		}
		checkDestinationURL(env, name("DESTINATION_URL"), d.URL, allowLinkLocal)
	}
}

// destinationKey returns the HMAC key of a Standard Webhooks secret:
// the base64-decoded part after "whsec_".
func destinationKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fmt.Errorf("must be a Standard Webhooks secret: whsec_ followed by base64")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("must be a Standard Webhooks secret: whsec_ followed by base64 (the part after whsec_ is not base64)")
	}
	if len(key) < minDestinationSecret {
		return nil, fmt.Errorf("must be a Standard Webhooks secret of at least %d random bytes after whsec_ (openssl rand -base64 32)", minDestinationSecret)
	}
	return key, nil
}

// checkDestinationURL fails a URL that is not http(s), or whose host is or
// resolves to a link-local or metadata address (unless allowLinkLocal),
// and warns of plain http:// to a host that is not loopback. A host that
// does not resolve at start is warned of: every connection is checked
// again when it is dialled.
func checkDestinationURL(env *envconfig.Reader, name, raw string, allowLinkLocal bool) {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		env.Fail(name, "must be an http:// or https:// URL")
		return
	}
	host := u.Hostname()
	if u.Scheme == "http" && !httpserver.IsLoopbackHost(host) {
		env.Warn(name, "is plain http:// to a host that is not loopback: events and their signatures travel in the clear")
	}
	if allowLinkLocal {
		return
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			env.Warn(name, "host "+host+" does not resolve now; each connection to it is checked for link-local and metadata addresses")
		}
	}
	for _, ip := range addrs {
		if forbiddenAddr(ip) {
			env.Fail(name, "resolves to "+ip.String()+", a link-local or cloud metadata address: refused (DESTINATION_ALLOW_LINK_LOCAL=true allows it)")
			return
		}
	}
}

// matches reports whether the destination takes events of eventType.
func (d Destination) matches(eventType string) bool {
	if len(d.Events) == 0 {
		return true
	}
	for _, e := range d.Events {
		if e == eventType {
			return true
		}
		if p, ok := strings.CutSuffix(e, "*"); ok && strings.HasPrefix(eventType, p) {
			return true
		}
	}
	return false
}
