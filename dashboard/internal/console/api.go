package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/stripeq/stripeq/dashboard/internal/jobs"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
)

// apiError answers err as JSON with the status its kind calls for.
func apiError(c *gin.Context, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, execindex.ErrInvalidFilter):
		status = http.StatusBadRequest
	case errors.Is(err, errNotFound) || errors.Is(err, jobs.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, errConflict):
		status = http.StatusConflict
	default:
		c.Error(err)
		c.AbortWithStatusJSON(status, gin.H{"message": "internal error; see the dashboard's log"})
		return
	}
	c.AbortWithStatusJSON(status, gin.H{"message": err.Error()})
}

// handleList is GET /api/executions: one page of executions matching the
// filter parameters of parseQuery, newest first, with counts per state.
func (s *server) handleList() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseQuery(c.Request.URL.Query(), time.Now())
		if err != nil {
			apiError(c, err)
			return
		}
		l, err := s.list(c.Request.Context(), q)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, l)
	}
}

// handleDetail is GET /api/executions/:id.
func (s *server) handleDetail() gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.detail(c.Request.Context(), c.Param("id"))
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, d)
	}
}

// handleFacets is GET /api/facets: the event types, API versions and
// accounts seen, with their counts, for filter menus.
func (s *server) handleFacets() gin.HandlerFunc {
	return func(c *gin.Context) {
		out := gin.H{}
		for _, f := range []string{execindex.FieldType, execindex.FieldAPIVersion, execindex.FieldAccount} {
			v, err := s.index.Values(c.Request.Context(), f)
			if err != nil {
				apiError(c, err)
				return
			}
			list := make([]gin.H, 0, len(v))
			for _, x := range v {
				list = append(list, gin.H{"value": x.Value, "count": x.Count})
			}
			out[f] = list
		}
		c.JSON(http.StatusOK, out)
	}
}

// handleRerun is POST /api/executions/:id/rerun.
func (s *server) handleRerun() gin.HandlerFunc {
	return func(c *gin.Context) {
		by := audit.Entry{Action: audit.Rerun, User: c.GetString(auth.KeyUser), Reason: audit.CleanReason(c.Query("reason"))}
		r, err := s.rerun(c.Request.Context(), c.Param("id"), by)
		s.audit(c, audit.Entry{Action: audit.Rerun, Target: c.Param("id"), Count: audit.CountIf(err), Detail: rerunDetail(r)}, err)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

// handleCancel is POST /api/executions/:id/cancel.
func (s *server) handleCancel() gin.HandlerFunc {
	return func(c *gin.Context) {
		err := s.cancel(c.Param("id"))
		s.audit(c, audit.Entry{Action: audit.Cancel, Target: c.Param("id"), Count: audit.CountIf(err)}, err)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "message": "cancellation sent; the task moves to retry"})
	}
}

// handleDelete is DELETE /api/executions/:id.
func (s *server) handleDelete() gin.HandlerFunc {
	return func(c *gin.Context) {
		err := s.remove(c.Request.Context(), c.Param("id"))
		s.audit(c, audit.Entry{Action: audit.Delete, Target: c.Param("id"), Count: audit.CountIf(err)}, err)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "message": "deleted"})
	}
}

// handleBulkRerun is POST /api/executions/rerun?<filter>&expect=N: re-run
// everything the filter matches, if it matches exactly N (the count the
// operator confirmed); otherwise 409 with the current count. The filter
// may also come as a JSON body {"query": "type=…&state=…", "expect": N}.
func (s *server) handleBulkRerun() gin.HandlerFunc {
	return func(c *gin.Context) {
		params := c.Request.URL.Query()
		if c.ContentType() == "application/json" {
			var body struct {
				Query  string `json:"query"`
				Expect *int   `json:"expect"`
				Reason string `json:"reason"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)).Decode(&body); err != nil {
				c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": "body must be JSON: {\"query\": \"…\", \"expect\": N}"})
				return
			}
			if p, err := url.ParseQuery(body.Query); err == nil {
				params = p
			} else {
				c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": "query is not a URL query string"})
				return
			}
			if body.Expect != nil {
				params.Set("expect", strconv.Itoa(*body.Expect))
			}
			if body.Reason != "" {
				params.Set("reason", body.Reason)
			}
		}
		expect, err := strconv.Atoi(params.Get("expect"))
		if err != nil || expect < 0 {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": "expect must be the number of executions you confirmed (see total in GET /api/executions)"})
			return
		}
		reason := audit.CleanReason(params.Get("reason"))
		q, err := parseQuery(params, time.Now(), "expect", "reason")
		if err != nil {
			apiError(c, err)
			return
		}
		filter := url.Values{}
		for k, v := range params {
			if k != "expect" && k != "reason" {
				filter[k] = v
			}
		}
		e := audit.Entry{Action: audit.BulkRerun, Target: filter.Encode(), Reason: reason}
		jobEnd := e
		jobEnd.User = c.GetString(auth.KeyUser)
		res, err := s.bulkRerun(c.Request.Context(), q, expect, jobEnd)
		e.Count = len(res.acted)
		switch {
		case res.Job != nil:
			e.Detail = fmt.Sprintf("job %s started: %d matched; its end is audited too", res.Job.ID, res.Matched)
		case err == nil:
			e.Detail = res.counts() + fmt.Sprintf(", of %d matched", res.Matched)
		default:
			e.Detail = fmt.Sprintf("%d matched", res.Matched)
		}
		s.audit(c, e, err)
		if err != nil {
			if errors.Is(err, errConflict) {
				c.AbortWithStatusJSON(http.StatusConflict, gin.H{"message": err.Error(), "matched": res.Matched})
				return
			}
			apiError(c, err)
			return
		}
		if res.Job != nil {
			c.JSON(http.StatusAccepted, res)
			return
		}
		c.JSON(http.StatusOK, res)
	}
}

// handleRerunSelected is POST /api/executions/rerun-selected with a JSON
// body {"ids": ["evt_…", …], "reason": "…"}: re-run each execution named
// (at most 500), as its own re-run would; pending, active and unknown ones
// are skipped.
func (s *server) handleRerunSelected() gin.HandlerFunc {
	return func(c *gin.Context) {
		body, ids, ok := readSelected(c, maxSelected, "evt_…", "executions", "re-run")
		if !ok {
			return
		}
		res := s.rerunSelected(c.Request.Context(), ids, audit.Entry{Action: audit.RerunSelected, User: c.GetString(auth.KeyUser), Reason: audit.CleanReason(body.Reason)})
		// The entry names what was re-run, not what was asked for: made-up
		// IDs beside a real one must not hide it.
		e := audit.Entry{Action: audit.RerunSelected, Target: audit.NamedIDs(res.acted), Count: len(res.acted), Reason: audit.CleanReason(body.Reason),
			Detail: res.counts() + fmt.Sprintf(", of %d asked", len(ids))}
		s.audit(c, e, nil)
		c.JSON(http.StatusOK, res)
	}
}

// selected is the body of a "re-run selected" request.
type selected struct {
	IDs    []string `json:"ids"`
	Reason string   `json:"reason"`
}

// readSelected reads the body of a "re-run selected" request: at least
// one ID and at most limit, examples of which look like example; it
// returns the body and its IDs sorted without repeats. When the body is
// wrong it answers 400, saying what it takes, and returns false.
func readSelected(c *gin.Context, limit int, example, what, verb string) (selected, []string, bool) {
	var body selected
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)).Decode(&body); err != nil || len(body.IDs) == 0 {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": `body must be JSON: {"ids": ["` + example + `", …], "reason": "…"}, with at least one ID`})
		return body, nil, false
	}
	if len(body.IDs) > limit {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": fmt.Sprintf("at most %d %s at once; %s a filter for more", limit, what, verb)})
		return body, nil, false
	}
	return body, slices.Compact(slices.Sorted(slices.Values(body.IDs))), true
}

// handleJob is GET /api/jobs/:id: the progress of a bulk re-run.
func (s *server) handleJob() gin.HandlerFunc {
	return func(c *gin.Context) {
		j, err := s.jobs.Status(c.Request.Context(), c.Param("id"))
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, j)
	}
}

// handleDiscard is POST /api/executions/:id/discard: remove an event
// that should never run, from asynq, the failure store and the index. The
// Console asks the operator to confirm first; it cannot be undone.
func (s *server) handleDiscard() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		err := s.remove(c.Request.Context(), id)
		s.audit(c, audit.Entry{Action: audit.Discard, Target: id, Count: audit.CountIf(err)}, err)
		if err != nil {
			apiError(c, err)
			return
		}
		s.log.Info("execution discarded", "task_id", id, "user", c.GetString(auth.KeyUser))
		c.JSON(http.StatusOK, gin.H{"id": id, "message": "discarded: it will never run"})
	}
}
