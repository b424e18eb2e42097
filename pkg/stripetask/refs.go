package stripetask

import (
	"bytes"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxRefs is the most [Metadata.Refs] an event gets.
const MaxRefs = 8

// refs collects Metadata.Refs, each once.
type refs []string

func (r *refs) add(v string) {
	if v != "" && len(*r) < MaxRefs && !slices.Contains(*r, v) {
		*r = append(*r, v)
	}
}

// id adds a related object's ID, unless it is the object or the customer.
func (r *refs) id(id, objectID, customer string) {
	if id != objectID && id != customer && ValidID(id) {
		r.add(id)
	}
}

// email adds an email address, lower-cased, when raw is one: a string of
// at most 254 bytes with an "@" and no space, comma or control character.
func (r *refs) email(raw jsontext.Value) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || Unmarshal(raw, &s) != nil {
		return
	}
	if NormalizeEmail(s) == "" {
		return
	}
	r.add(NormalizeEmail(s))
}

// NormalizeEmail returns s as [Metadata.Refs] holds an email address:
// trimmed and lower-cased; "" when s is not one (no "@", more than 254
// bytes, or a space, comma or control character).
func NormalizeEmail(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 || len(s) > 254 || strings.Count(s, "@") != 1 || s[0] == '@' || s[len(s)-1] == '@' {
		return ""
	}
	for _, c := range s {
		if c <= ' ' || c == ',' || c == 0x7f {
			return ""
		}
	}
	return s
}

// expandableID reads an expandable field: an ID, or an object with one.
func expandableID(raw jsontext.Value) string { return customerID("", "", raw) }

// parentSubscription returns the raw subscription of an invoice's parent
// (parent.subscription_details.subscription, since basil); nil when raw
// is not an object that has one.
func parentSubscription(raw jsontext.Value) jsontext.Value {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var p struct {
		SubscriptionDetails *struct {
			Subscription jsontext.Value `json:"subscription"`
		} `json:"subscription_details"`
	}
	if Unmarshal(raw, &p) != nil || p.SubscriptionDetails == nil {
		return nil
	}
	return p.SubscriptionDetails.Subscription
}

// emailOf returns the raw value of the email field of the object raw
// (customer_details, billing_details); nil when raw is not an object.
func emailOf(raw jsontext.Value) jsontext.Value {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var o struct {
		Email jsontext.Value `json:"email"`
	}
	if Unmarshal(raw, &o) != nil {
		return nil
	}
	return o.Email
}
