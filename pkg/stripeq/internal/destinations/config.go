package destinations

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
)

// Config is one destination, as stripeq.Destination configures it.
type Config struct {
	Name        string
	URL         string
	Secret      string
	Events      []string
	Timeout     time.Duration // if zero, DefaultTimeout
	Concurrency int           // if zero, DefaultConcurrency
	Rate        float64       // if zero, unlimited
	Order       string        // OrderCustomer, or "" for none
	NoInline    bool          // every delivery a task (see inline.go)
}

// OrderCustomer is the Order that orders each customer's deliveries.
const OrderCustomer = "customer"

// Destination defaults, each written once.
const (
	// DefaultName is the name of DESTINATION_URL's destination.
	DefaultName        = "default"
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 5
	minSecret          = 16 // bytes, decoded
)

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

// Namer names the setting field (Name, URL, Secret, Events, Order,
// Concurrency, AllowLinkLocal) of destination i, d, in an error: by its
// environment variable for stripeq.ConfigFromEnv, by its Go field for a
// Config built in code.
type Namer func(i int, d Config, field string) string

// Check records on env the destinations' invalid or unsafe settings, each
// named by name, never quoting a secret or a URL: a URL may hold a
// credential.
func Check(env *envconfig.Reader, ds []Config, allowLinkLocal bool, name Namer) {
	seen := map[string]bool{}
	for i, d := range ds {
		if !delivery.ValidName(d.Name) {
			env.Fail(name(i, d, "Name"), fmt.Sprintf("destination name %q must be 1 to %d lowercase letters, digits, _ or -", d.Name, delivery.MaxName))
			continue
		}
		if seen[d.Name] {
			env.Fail(name(i, d, "Name"), "names destination "+d.Name+" twice (DESTINATION_URL's is named "+DefaultName+")")
		}
		seen[d.Name] = true
		if _, err := secretKey(d.Secret); err != nil {
			env.Fail(name(i, d, "Secret"), err.Error())
		}
		for _, e := range d.Events {
			if !stripetask.ValidType(strings.TrimSuffix(e, ".*")) {
				env.Fail(name(i, d, "Events"), fmt.Sprintf("%q is not an event type or a prefix such as invoice.*", e))
			}
		}
		if d.Order != "" && d.Order != OrderCustomer {
			env.Fail(name(i, d, "Order"), fmt.Sprintf("must be customer or unset, got %q", d.Order))
		}
		if d.Concurrency < 0 || d.Rate < 0 || d.Timeout < 0 {
			env.Fail(name(i, d, "Concurrency"), "concurrency, rate and timeout must not be negative")
		}
		checkURL(env, name(i, d, "URL"), d.URL, allowLinkLocal, name(i, d, "AllowLinkLocal"))
	}
}

// secretKey returns the HMAC key of a Standard Webhooks secret:
// the base64-decoded part after "whsec_".
func secretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fmt.Errorf("must be a Standard Webhooks secret: whsec_ followed by base64")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("must be a Standard Webhooks secret: whsec_ followed by base64 (the part after whsec_ is not base64)")
	}
	if len(key) < minSecret {
		return nil, fmt.Errorf("must be a Standard Webhooks secret of at least %d random bytes after whsec_ (openssl rand -base64 32)", minSecret)
	}
	return key, nil
}

// checkURL fails a URL that is not http(s), or whose host is or
// resolves to a link-local or metadata address (unless allowLinkLocal),
// and warns of plain http:// to a host that is not loopback. A host that
// does not resolve at start is warned of: every connection is checked
// again when it is dialled. allow names the setting that allows link-local
// addresses.
func checkURL(env *envconfig.Reader, name, raw string, allowLinkLocal bool, allow string) {
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
			env.Fail(name, "resolves to "+ip.String()+", a link-local or cloud metadata address: refused ("+allow+" allows it)")
			return
		}
	}
}

// matches reports whether the destination takes events of eventType.
func (d Config) matches(eventType string) bool {
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
