// Package apiversion reads Stripe API versions ("2023-10-16",
// "2025-03-31.basil") and says which ones stripeq's built-in handlers are
// tested with. It is internal to stripeq: no compatibility promise.
//
// Stripe renders every event at one API version: the webhook endpoint's,
// or for an endpoint created without one, the account's default when the
// event was created. Since 2024-09-30.acacia, breaking changes come twice a
// year in a named release, and the monthly versions between two releases
// carry the name of the one before and add features only
// ("2025-04-30.basil" reads as "2025-03-31.basil" does). Versions before
// acacia have no name, and each may break.
package apiversion

import (
	"slices"
	"strings"
)

// The Stripe API versions stripeq names.
const (
	// Pinned is stripe-go v76's version, the one its structs decode.
	Pinned = "2023-10-16"
	// Basil is the release that moved several fields the built-ins read:
	// invoice.subscription into invoice.parent, a subscription's period
	// onto its items, and the ties between an invoice and its charge or
	// payment intent into InvoicePayment objects.
	Basil = "2025-03-31.basil"
	// Dahlia is the newest release the built-ins are tested with, and the
	// default of a Stripe account opened in late 2026.
	Dahlia = "2026-08-26.dahlia"
)

// tested are the versions of the fixtures the built-ins' tests play,
// oldest first (pkg/stripetest).
var tested = []string{Pinned, Basil, Dahlia}

// Tested returns the versions the built-in handlers are tested with,
// oldest first. The caller may modify the returned slice.
func Tested() []string { return slices.Clone(tested) }

// Version is a parsed API version.
type Version struct {
	// Date is the version's date, "2025-03-31".
	Date string
	// Release is its release name, "basil"; "" before acacia.
	Release string
}

// Parse reads v as Stripe writes a version: a date YYYY-MM-DD, then, since
// acacia, "." and a release name of lower-case letters. ok is false for
// anything else.
func Parse(v string) (Version, bool) {
	date, release, named := strings.Cut(v, ".")
	if !validDate(date) || named && !validRelease(release) {
		return Version{}, false
	}
	return Version{Date: date, Release: release}, true
}

func validDate(d string) bool {
	if len(d) != len("2006-01-02") || d[4] != '-' || d[7] != '-' {
		return false
	}
	for i := range len(d) {
		if i != 4 && i != 7 && (d[i] < '0' || d[i] > '9') {
			return false
		}
	}
	return true
}

func validRelease(r string) bool {
	if r == "" || len(r) > 32 {
		return false
	}
	for i := range len(r) {
		if r[i] < 'a' || r[i] > 'z' {
			return false
		}
	}
	return true
}

// Before reports whether v is older than w: by date, which orders every
// version Stripe has published.
func (v Version) Before(w Version) bool { return v.Date < w.Date }

// String returns the version as Stripe writes it.
func (v Version) String() string {
	if v.Release == "" {
		return v.Date
	}
	return v.Date + "." + v.Release
}

// Covers reports whether a handler tested at the versions of list reads
// events at v correctly: v is one of them, or a later monthly version of
// a release in list (the same release name, a later date), which adds
// features only. An unnamed version (before acacia) matches only itself.
func Covers(list []string, v string) bool {
	if slices.Contains(list, v) {
		return true
	}
	pv, ok := Parse(v)
	if !ok || pv.Release == "" {
		return false
	}
	for _, l := range list {
		if pl, ok := Parse(l); ok && pl.Release == pv.Release && !pv.Before(pl) {
			return true
		}
	}
	return false
}

// BuiltinsCover reports whether the built-in handlers are tested for
// events at v: any version from Pinned to Dahlia, or a later monthly
// version of the dahlia release. Versions between two tested ones break
// nothing the built-ins read (Stripe's changelog; the fields that moved
// moved in basil). An empty or unparsable version is not covered.
func BuiltinsCover(v string) bool {
	pv, ok := Parse(v)
	if !ok {
		return false
	}
	first, _ := Parse(Pinned)
	last, _ := Parse(Dahlia)
	if pv.Before(first) {
		return false
	}
	return !last.Before(pv) || pv.Release == last.Release
}
