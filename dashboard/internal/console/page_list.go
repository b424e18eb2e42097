package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/chart"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// stateTab is one state filter above the table.
type stateTab struct {
	Label, Param, URL string
	Count             int
	Active            bool
}

// handleListPage is the Console: the filter bar, the counts per state and
// one page of executions.
func (s *server) handleListPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		now := time.Now()
		q, err := parseQuery(v, now)
		data := map[string]any{"Title": "Executions", "Params": v, "Q": q}
		status := http.StatusOK
		ctx := c.Request.Context()
		var l listing
		if err == nil {
			l, err = s.list(ctx, q)
		}
		if err != nil {
			// An invalid filter lists nothing: rows under its error would
			// look like its answer.
			status = http.StatusBadRequest
			if !errors.Is(err, execindex.ErrInvalidFilter) {
				c.Error(err)
				status = http.StatusInternalServerError
			}
			data["Error"] = err.Error()
			l = listing{}
		}
		data["L"] = l
		facets := s.facets(ctx)
		data["Facets"] = facets
		if err == nil {
			// The chart is an extra: the list stands without it.
			if ch, cerr := s.chart(ctx, q.Filter, facets.Types, now); cerr != nil {
				c.Error(cerr)
			} else {
				fig := ch.Draw()
				fig.Link(func(from, to string) string { return narrowTime(v, from, to) })
				data["Chart"] = fig
			}
		}
		data["Tabs"] = stateTabs(v, l.Counts)
		data["From"] = q.Offset + 1
		data["To"] = q.Offset + len(l.Executions)
		if q.Offset > 0 {
			data["PrevURL"] = withParam(v, "page", strconv.Itoa(q.Offset/q.Limit))
		}
		if q.Offset+len(l.Items) < l.Total && q.Offset+q.Limit <= execindex.MaxOffset {
			data["NextURL"] = withParam(v, "page", strconv.Itoa(q.Offset/q.Limit+2))
		}
		data["Filtered"] = narrowed(q) || q.State != ""
		if n := rerunnable(l.Counts, q.Filter.States); n > 0 && data["Error"] == nil && !l.Capped {
			// The whole URL, so that html/template treats it as one URL
			// and does not escape the query's "=" and "&" as data.
			run, cp, skip := bulkCounts(l.Counts, l.KeptOnly, q.Filter.States)
			bulk := map[string]any{"Count": l.Total, "Text": describe(q, l.Total), "Run": run, "Copy": cp, "Skip": skip,
				"URL": "/api/executions/rerun?" + bulkQuery(v, now) + "&expect=" + strconv.Itoa(l.Total)}
			if !narrowed(q) {
				// Everything, or every execution in a state: the operator
				// types the count in to confirm.
				bulk["TypeCount"] = l.Total
			}
			data["Bulk"] = bulk
		}
		s.render(c, status, "list", data)
	}
}

// narrowed reports whether q narrows the list beyond a state tab: by an
// ID, a search, a type, a mode, an API version, a customer, an account, a
// source or a time.
func narrowed(q query) bool {
	f := q.Filter
	return f.ID != "" || q.Type != "" || f.Livemode != "" || f.APIVersion != "" || f.Customer != "" || f.Account != "" || f.Ref != "" || f.Source != "" ||
		!f.From.IsZero() || !f.To.IsZero()
}

// bulkCounts splits what a bulk re-run of states (none: all) acts on by
// what happens to each: run now (scheduled, retry, archived), copied
// (completed, and the keptOnly archived ones only the failure store
// keeps), or skipped (pending, active).
func bulkCounts(counts map[string]int, keptOnly int, states []string) (run, copied, skipped int) {
	in := func(st string) int {
		if len(states) == 0 || slices.Contains(states, st) {
			return counts[st]
		}
		return 0
	}
	kept := 0
	if in(execindex.StateArchived) > 0 {
		kept = min(keptOnly, counts[execindex.StateArchived])
	}
	run = in(execindex.StateScheduled) + in(execindex.StateRetry) + in(execindex.StateArchived) - kept
	return run, in(execindex.StateCompleted) + kept, in(execindex.StatePending) + in(execindex.StateActive)
}

// rerunnable counts the executions a bulk re-run would act on.
func rerunnable(counts map[string]int, states []string) int {
	run, copied, _ := bulkCounts(counts, 0, states)
	return run + copied
}

// describe puts a filter in words for the bulk confirmation:
// "re-run all 42 archived invoice.payment_failed in live mode for cus_X".
func describe(q query, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Re-run all %s", chart.Thousands(n))
	if q.State != "" {
		b.WriteString(" " + strings.ReplaceAll(q.State, ",", " or "))
	}
	switch {
	case q.Filter.Type != "":
		b.WriteString(" " + q.Filter.Type)
	case q.Filter.TypePrefix != "":
		b.WriteString(" " + q.Filter.TypePrefix + ".*")
	}
	if n == 1 {
		b.WriteString(" execution")
	} else {
		b.WriteString(" executions")
	}
	switch q.Filter.Livemode {
	case "true":
		b.WriteString(" in live mode")
	case "false":
		b.WriteString(" in test mode")
	}
	if q.Filter.Customer != "" {
		b.WriteString(" for customer " + q.Filter.Customer)
	}
	if q.Filter.Account != "" {
		b.WriteString(" of account " + q.Filter.Account)
	}
	if q.Filter.APIVersion != "" {
		b.WriteString(" with API version " + q.Filter.APIVersion)
	}
	if q.Filter.Source != "" {
		b.WriteString(" stored by a " + q.Filter.Source)
	}
	if q.Filter.ID != "" {
		b.WriteString(" of event " + q.Filter.ID)
	}
	if q.Since != "" {
		b.WriteString(" received in the last " + q.Since)
	}
	b.WriteString("? Pending and active ones are skipped; completed ones are enqueued again as copies.")
	return b.String()
}

// bulkQuery is the list's query with "since" fixed to absolute times, so
// that the bulk re-run acts on the rows the operator counted.
func bulkQuery(v url.Values, now time.Time) string {
	out := url.Values{}
	for k, vs := range v {
		if k != "page" && k != "limit" && k != "since" {
			out[k] = vs
		}
	}
	if since := v.Get("since"); since != "" {
		if d, err := parseSince(since); err == nil {
			out.Set("from", strconv.FormatInt(now.Add(-d).Unix(), 10))
			if out.Get("to") == "" {
				out.Set("to", strconv.FormatInt(now.Unix(), 10))
			}
		}
	}
	return out.Encode()
}

// narrowTime is the list of v narrowed to the time [from, to] (the
// chart's bucket, drag or range): its other filters kept, since and page
// dropped.
func narrowTime(v url.Values, from, to string) string {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	out.Del("since")
	out.Del("page")
	out.Set("from", from)
	out.Set("to", to)
	return "/?" + out.Encode()
}

// withParam is the list's URL with its query v, key set to value (or
// removed when value is empty).
func withParam(v url.Values, key, value string) string { return paramURL("/", v, key, value) }

// paramURL is the URL of the page at path with query v, key set to value
// (or removed when value is empty); a change of anything but the page
// goes back to the first page. v is not changed.
func paramURL(path string, v url.Values, key, value string) string {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = vs
	}
	if value == "" {
		out.Del(key)
	} else {
		out.Set(key, value)
	}
	if key != "page" {
		out.Del("page")
	}
	if len(out) == 0 {
		return path
	}
	return path + "?" + out.Encode()
}

func stateTabs(v url.Values, counts map[string]int) []stateTab {
	total := 0
	for _, n := range counts {
		total += n
	}
	cur := v.Get("state")
	tabs := []stateTab{{Label: "All", Param: "", Count: total, Active: cur == ""}}
	tabs = append(tabs, stateTab{Label: "Failed", Param: "failed", Count: counts[execindex.StateRetry] + counts[execindex.StateArchived], Active: cur == "failed"})
	for _, st := range execindex.States {
		tabs = append(tabs, stateTab{Label: strings.ToUpper(st[:1]) + st[1:], Param: st, Count: counts[st], Active: cur == st})
	}
	for i := range tabs {
		tabs[i].URL = withParam(v, "state", tabs[i].Param)
	}
	return tabs
}

// facetData is what the filter menus offer.
type facetData struct {
	Prefixes    []execindex.ValueCount
	Types       []execindex.ValueCount
	APIVersions []execindex.ValueCount
	Accounts    []execindex.ValueCount
}

func (s *server) facets(ctx context.Context) facetData {
	var f facetData
	f.Types, _ = s.index.Values(ctx, execindex.FieldType)
	f.APIVersions, _ = s.index.Values(ctx, execindex.FieldAPIVersion)
	f.Accounts, _ = s.index.Values(ctx, execindex.FieldAccount)
	byPrefix := map[string]int64{}
	for _, t := range f.Types {
		if p, _, ok := strings.Cut(t.Value, "."); ok {
			byPrefix[p] += t.Count
		}
	}
	for p, n := range byPrefix {
		f.Prefixes = append(f.Prefixes, execindex.ValueCount{Value: p, Count: n})
	}
	slices.SortFunc(f.Prefixes, func(a, b execindex.ValueCount) int { return strings.Compare(a.Value, b.Value) })
	return f
}
