package audit

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Chip is one readable part of what an entry acted on: a filter's
// parameter ("type: invoice.*"), an execution, a delivery or a recovery,
// with the page it opens when it has one.
type Chip struct {
	Label string `json:"label,omitempty"` // "type", "from"; "" for an ID
	Value string `json:"value"`
	URL   string `json:"url,omitempty"`
}

// maxChips is how many IDs an entry shows as chips; the rest are counted.
const maxChips = 12

// filterOrder is the order of a bulk re-run's filter parameters as chips;
// others follow in their order.
var filterOrder = []string{"state", "type", "livemode", "customer", "account", "api_version", "q", "id", "from", "to", "since"}

// chipsOf reads an entry's target (and detail) as chips, each with its
// page: a bulk re-run's filter, the executions of a re-run, cancel,
// delete, discard or a re-run of those selected, a delivery, a recovery.
func chipsOf(e Entry) []Chip {
	switch e.Action {
	case Rerun, Cancel, Delete, Discard:
		cs := []Chip{execChip(e.Target)}
		if e.Action == Rerun && strings.Contains(e.Detail, ":rerun:") {
			c := execChip(e.Detail)
			c.Label = "copy"
			cs = append(cs, c)
		}
		return cs
	case RerunSelected:
		return idChips(e.Target, execChip)
	case BulkRerun:
		return filterChips(e.Target, "/")
	case DeliveryBulkRerun:
		return filterChips(e.Target, "/deliveries")
	case DeliveryRerunSelected:
		return idChips(e.Target, func(id string) Chip { return Chip{Value: id, URL: "/deliveries/" + url.PathEscape(id)} })
	case DeliveryRerun:
		cs := []Chip{{Label: "delivery", Value: e.Target, URL: "/deliveries/" + url.PathEscape(e.Target)}}
		if strings.Contains(e.Detail, ":rerun:") {
			cs = append(cs, Chip{Label: "copy", Value: e.Detail, URL: "/deliveries/" + url.PathEscape(e.Detail)})
		}
		return cs
	case Recovery:
		cs := []Chip{{Label: "window", Value: e.Target}}
		// "recovery rec_…", and for a run bound to a dry run "… of the
		// N events previewed by rec_…".
		if rest, ok := strings.CutPrefix(e.Detail, "recovery "); ok {
			id, rest, _ := strings.Cut(rest, " ")
			cs = append(cs, Chip{Label: "recovery", Value: id, URL: "/recoveries#recovery-" + url.PathEscape(id)})
			if _, prev, ok := strings.Cut(rest, "previewed by "); ok {
				cs = append(cs, Chip{Label: "preview", Value: prev, URL: "/recoveries#recovery-" + url.PathEscape(prev)})
			}
		}
		return cs
	}
	return nil
}

// idChips reads a list of IDs (NamedIDs) as chips, the first maxChips
// each made by chip, the rest counted.
func idChips(target string, chip func(id string) Chip) []Chip {
	if target == "" || strings.Contains(target, "too many to name") {
		return []Chip{{Value: target}}
	}
	var cs []Chip
	ids := strings.Split(target, ",")
	for _, id := range ids[:min(len(ids), maxChips)] {
		cs = append(cs, chip(id))
	}
	if len(ids) > maxChips {
		cs = append(cs, Chip{Value: "and " + strconv.Itoa(len(ids)-maxChips) + " more"})
	}
	return cs
}

// execChip is an execution's chip, linked to its page.
func execChip(id string) Chip {
	return Chip{Value: id, URL: "/executions/" + url.PathEscape(id)}
}

// filterChips reads a bulk re-run's filter (a URL query) as one chip per
// parameter, times as UTC, each linked to the list at page filtered by it
// alone.
func filterChips(target, page string) []Chip {
	v, err := url.ParseQuery(target)
	if err != nil || len(v) == 0 {
		return []Chip{{Label: "filter", Value: "none: every execution"}}
	}
	var keys []string
	for _, k := range filterOrder {
		if _, ok := v[k]; ok {
			keys = append(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var cs []Chip
	for _, k := range keys {
		val := v.Get(k)
		shown := val
		if k == "from" || k == "to" {
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				shown = time.Unix(n, 0).UTC().Format("2006-01-02 15:04:05 UTC")
			}
		}
		cs = append(cs, Chip{Label: k, Value: shown, URL: page + "?" + url.Values{k: {val}}.Encode()})
	}
	return cs
}
