package auth

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// KeyClient is the Gin context key of the client's address, as
// ClientAddr reads it; the access log records it as client_ip.
const KeyClient = "client_ip"

// proxies are the reverse Proxies of TRUSTED_PROXIES.
type Proxies []netip.Prefix

// trusts reports whether a is one of the Proxies.
func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address the request came from. It is the direct peer,
// unless the peer is a trusted proxy: then it is the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left-most when
// all are), or else X-Real-IP. A header that does not parse is ignored.
// With no trusted Proxies, headers are never read: a client could name
// any address and dodge the sign-in limits.
func (p Proxies) ClientAddr(r *http.Request) string {
	peer := peerAddr(r)
	if len(p) == 0 || !peer.IsValid() || !p.trusts(peer) {
		if !peer.IsValid() {
			return r.RemoteAddr
		}
		return peer.String()
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		var hops []netip.Addr
		for _, v := range xff {
			for s := range strings.SplitSeq(v, ",") {
				a, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return peer.String() // a forged or broken list: trust none of it
				}
				hops = append(hops, a.Unmap())
			}
		}
		for _, a := range slices.Backward(hops) {
			if !p.trusts(a) {
				return a.String()
			}
		}
		if len(hops) > 0 {
			return hops[0].String()
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return a.Unmap().String()
	}
	return peer.String()
}

// peerAddr is the address of the direct peer, or the zero Addr.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// RecordClient stores the client's address, as p reads it, in the
// context for the sign-in limits and the access log.
func RecordClient(p Proxies) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(KeyClient, p.ClientAddr(c.Request))
		c.Next()
	}
}

// Client returns the address RecordClient stored.
func Client(c *gin.Context) string { return c.GetString(KeyClient) }

// AllowHosts refuses, with 421 Misdirected Request, a request whose Host
// is not one of hosts, so that a page on another site whose name was made
// to resolve to this dashboard (DNS rebinding) cannot talk to it. A host
// without a port in hosts matches any port. No hosts allows any Host.
// /healthz answers whatever the Host, for health checks by address.
func AllowHosts(hosts []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if len(hosts) == 0 || c.Request.URL.Path == "/healthz" || hostAllowed(hosts, c.Request.Host) {
			c.Next()
			return
		}
		c.AbortWithStatusJSON(http.StatusMisdirectedRequest, gin.H{"message": "this Host is not one of DASHBOARD_HOSTS"})
	}
}

func hostAllowed(hosts []string, host string) bool {
	host = strings.ToLower(host)
	if slices.Contains(hosts, host) {
		return true
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		return false
	}
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	return slices.Contains(hosts, name)
}
