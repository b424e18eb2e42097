package console

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
)

// audit records e, done by the request's user, with err as its result;
// the reason is the request's reason parameter unless e has one. A
// failure to record is logged, not returned: the action has happened.
func (s *server) audit(c *gin.Context, e audit.Entry, err error) {
	e.User = c.GetString(auth.KeyUser)
	if e.Reason == "" {
		e.Reason = audit.CleanReason(c.Query("reason"))
	}
	if werr := s.auditLog.Record(context.WithoutCancel(c.Request.Context()), e, err); werr != nil {
		c.Error(werr)
	}
}

// handleAudit is GET /api/audit?before=<id>&limit=N&user=&action=&from=&to=:
// the audit log, newest first, with every action's count in the range.
func (s *server) handleAudit() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := audit.ParseQuery(c.Request.URL.Query())
		if err != nil {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
			return
		}
		p, err := s.auditLog.Read(c.Request.Context(), q)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, p)
	}
}

// handleAuditPage is GET /audit: the audit log as a page.
func (s *server) handleAuditPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		q, err := audit.ParseQuery(v)
		if err != nil {
			s.render(c, http.StatusBadRequest, "error", map[string]any{"Title": "Bad request", "Message": err.Error()})
			return
		}
		p, err := s.auditLog.Read(c.Request.Context(), q)
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the audit log; see the dashboard's log."})
			return
		}
		data := map[string]any{"Title": "Audit log", "P": p, "Q": q, "Tabs": auditTabs(v, p.Counts), "Users": valueCounts(p.Users)}
		if p.Next != "" {
			data["NextURL"] = "/audit?" + withValue(v, "before", p.Next).Encode()
		}
		s.render(c, http.StatusOK, "audit", data)
	}
}

// auditTabs are the action filters above the log, each with its count in
// the range: "All", then every action.
func auditTabs(v url.Values, counts map[string]int) []stateTab {
	total := 0
	for _, n := range counts {
		total += n
	}
	cur := v.Get("action")
	tabs := []stateTab{{Label: "All", Count: total, Active: cur == ""}}
	for _, a := range audit.Actions {
		tabs = append(tabs, stateTab{Label: strings.ReplaceAll(a, "_", " "), Param: a, Count: counts[a], Active: cur == a})
	}
	for i := range tabs {
		tabs[i].URL = "/audit"
		if q := withValue(v, "action", tabs[i].Param); len(q) > 0 {
			tabs[i].URL += "?" + q.Encode()
		}
	}
	return tabs
}

// withValue is v with key set to value ("": removed), and without
// before: a new filter starts at the newest entry.
func withValue(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		if k != "before" {
			out[k] = vs
		}
	}
	if value == "" {
		out.Del(key)
	} else {
		out.Set(key, value)
	}
	return out
}

// valueCounts is m sorted by name.
func valueCounts(m map[string]int) []execindex.ValueCount {
	out := make([]execindex.ValueCount, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, execindex.ValueCount{Value: k, Count: int64(m[k])})
	}
	return out
}
