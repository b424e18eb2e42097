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
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// The audit log records every operator action, in the Console or through
// asynqmon: who, when, what, on how many executions, why (an optional reason, such as an incident name) and
// how it ended. It is one Redis stream, whose entry IDs are the times of
// the actions; each write trims entries older than AUDIT_RETENTION, and
// reads never show them.
//
//	stripeq:audit  STREAM  user, action, target, count, reason, result, detail
//
// Field names are permanent once deployed.
const auditKey = keyspace.Audit

// defaultAuditRetention is AUDIT_RETENTION's default: 90 days.
const defaultAuditRetention = 90 * 24 * time.Hour

// maxReason is the longest reason kept, in characters.
const maxReason = 500

// The actions the audit log records.
const (
	actionRerun     = "rerun"
	actionBulkRerun = "bulk_rerun"
	// actionRerunSelected: the executions an operator ticked in the list.
	actionRerunSelected = "rerun_selected"
	actionCancel        = "cancel"
	actionDelete        = "delete"
	actionDiscard       = "discard"
	actionRecovery      = "recovery"
	actionAsynqmon      = "asynqmon" // a change made in asynqmon, by its API path
	// actionDeliveryRerun: a delivery to a destination re-run.
	actionDeliveryRerun = "delivery_rerun"
)

// maxAuditIDs is the most IDs one audit entry names. An action on more is
// recorded by what chose them (a filter, a queue and state) and how many.
const maxAuditIDs = 500

// namedIDs is how an audit entry names the IDs an action acted on: all of
// them, sorted and comma-separated, or, past maxAuditIDs, only how many.
// The list is never cut, since a cut list could hide the one that
// mattered.
func namedIDs(ids []string) string {
	if len(ids) > maxAuditIDs {
		return fmt.Sprintf("%d IDs, too many to name", len(ids))
	}
	return strings.Join(slices.Sorted(slices.Values(ids)), ",")
}

// countIf is 1 when err is nil: what a one-execution action acted on.
func countIf(err error) int {
	if err != nil {
		return 0
	}
	return 1
}

// auditEntry is one recorded action.
type auditEntry struct {
	ID     string    `json:"id"` // the stream entry's ID, for paging
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Action string    `json:"action"`
	// Target is what the action was on: a task ID, the IDs it acted on
	// (namedIDs), a filter ("state=failed&type=invoice.*"), an asynqmon
	// API path, or a recovery's window.
	Target string `json:"target"`
	// Count is how many executions or tasks it acted on: run, copied,
	// cancelled, deleted, archived. A refusal acts on none.
	Count  int    `json:"count"`
	Reason string `json:"reason,omitempty"`
	// Result is "ok", or the error that refused or failed it.
	Result string `json:"result"`
	// Detail is what the action made or saw: a copy's ID, a job, a
	// recovery, the counts of a re-run, the tasks an asynqmon action
	// named (namedIDs).
	Detail string `json:"detail,omitempty"`
	URL    string `json:"url,omitempty"` // the target's page, when it has one
}

// reasonOf is the request's reason parameter, cleaned: control characters
// dropped, at most maxReason characters.
func reasonOf(c *gin.Context) string {
	return cleanReason(c.Query("reason"))
}

func cleanReason(r string) string {
	r = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, r))
	if n := []rune(r); len(n) > maxReason {
		r = string(n[:maxReason]) + "…"
	}
	return r
}

// audit records e, done by the request's user, with err as its result.
// A failure to record is logged, not returned: the action has happened.
func (s *server) audit(c *gin.Context, e auditEntry, err error) {
	e.User = c.GetString(ctxUser)
	if e.Reason == "" {
		e.Reason = reasonOf(c)
	}
	if werr := s.record(context.WithoutCancel(c.Request.Context()), e, err); werr != nil {
		c.Error(werr)
	}
}

// record writes e, done now by e.User, with err as its result, and logs
// a failure to write it, which it also returns.
func (s *server) record(ctx context.Context, e auditEntry, err error) error {
	e.Result = "ok"
	if err != nil {
		e.Result = err.Error()
	}
	werr := s.writeAudit(ctx, time.Now(), e)
	if werr != nil {
		s.log.Error("audit log not written", "action", e.Action, "target", e.Target, "user", e.User, "err", werr.Error())
	}
	return werr
}

// writeAudit appends e, done at now, and trims entries past the retention.
func (s *server) writeAudit(ctx context.Context, now time.Time, e auditEntry) error {
	minID := strconv.FormatInt(now.Add(-s.cfg.AuditRetention).UnixMilli(), 10)
	err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: auditKey, MinID: minID, ID: "*", // exact: a few entries at a time
		Values: []any{"user", e.User, "action", e.Action, "target", e.Target, "count", e.Count,
			"reason", e.Reason, "result", e.Result, "detail", e.Detail},
	}).Err()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// auditPage is one page of the audit log, newest first.
type auditPage struct {
	Entries []auditEntry `json:"entries"`
	// Next is the before= of the next page; "" on the last.
	Next      string `json:"next,omitempty"`
	Retention string `json:"retention"`
}

// readAudit returns up to limit entries before the entry ID before ("":
// the newest), within the retention.
func (s *server) readAudit(ctx context.Context, before string, limit int) (auditPage, error) {
	hi := "+"
	if before != "" {
		hi = "(" + before
	}
	lo := strconv.FormatInt(time.Now().Add(-s.cfg.AuditRetention).UnixMilli(), 10)
	msgs, err := s.rdb.XRevRangeN(ctx, auditKey, hi, lo, int64(limit)+1).Result()
	if err != nil {
		return auditPage{}, fmt.Errorf("audit: %w", err)
	}
	p := auditPage{Entries: []auditEntry{}, Retention: days(s.cfg.AuditRetention)}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		p.Next = msgs[limit-1].ID
	}
	for _, m := range msgs {
		e := auditEntry{ID: m.ID}
		ms, _, _ := strings.Cut(m.ID, "-")
		n, _ := strconv.ParseInt(ms, 10, 64)
		e.At = time.UnixMilli(n).UTC()
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		e.User, e.Action, e.Target, e.Reason, e.Result, e.Detail = str("user"), str("action"), str("target"), str("reason"), str("result"), str("detail")
		e.Count, _ = strconv.Atoi(str("count"))
		switch e.Action {
		case actionRerun, actionCancel:
			e.URL = "/executions/" + url.PathEscape(e.Target)
		case actionBulkRerun:
			e.URL = "/?" + e.Target
		case actionDeliveryRerun:
			e.URL = "/deliveries/" + url.PathEscape(e.Target)
		}
		p.Entries = append(p.Entries, e)
	}
	return p, nil
}

// days is d as "90 days" when it is whole days, else as Go writes it.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	return d.String()
}

// errBadBefore refuses a before= that is not a stream entry ID.
var errBadBefore = errors.New("before must be the id of an audit entry, such as 1764480000000-0")

// auditQuery reads before= and limit= (1–500, default 100).
func auditQuery(c *gin.Context) (before string, limit int, err error) {
	for k := range c.Request.URL.Query() {
		if k != "before" && k != "limit" {
			return "", 0, fmt.Errorf("unknown parameter %q (parameters are before, limit)", k)
		}
	}
	before = c.Query("before")
	if before != "" {
		ms, seq, ok := strings.Cut(before, "-")
		if _, err := strconv.ParseUint(ms, 10, 64); err != nil || !ok {
			return "", 0, errBadBefore
		}
		if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
			return "", 0, errBadBefore
		}
	}
	limit = 100
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			return "", 0, errors.New("limit must be 1 to 500")
		}
	}
	return before, limit, nil
}

// handleAudit is GET /api/audit?before=<id>&limit=N: the audit log,
// newest first.
func (s *server) handleAudit() gin.HandlerFunc {
	return func(c *gin.Context) {
		before, limit, err := auditQuery(c)
		if err != nil {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
			return
		}
		p, err := s.readAudit(c.Request.Context(), before, limit)
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
		before, limit, err := auditQuery(c)
		if err != nil {
			s.render(c, http.StatusBadRequest, "error", map[string]any{"Title": "Bad request", "Message": err.Error()})
			return
		}
		p, err := s.readAudit(c.Request.Context(), before, limit)
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the audit log; see the dashboard's log."})
			return
		}
		s.render(c, http.StatusOK, "audit", map[string]any{"Title": "Audit log", "P": p})
	}
}
