package console

import (
	"context"
	"net/http"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
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

// handleAudit is GET /api/audit?before=<id>&limit=N: the audit log,
// newest first.
func (s *server) handleAudit() gin.HandlerFunc {
	return func(c *gin.Context) {
		before, limit, err := audit.ParseQuery(c.Request.URL.Query())
		if err != nil {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
			return
		}
		p, err := s.auditLog.Read(c.Request.Context(), before, limit)
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
		before, limit, err := audit.ParseQuery(c.Request.URL.Query())
		if err != nil {
			s.render(c, http.StatusBadRequest, "error", map[string]any{"Title": "Bad request", "Message": err.Error()})
			return
		}
		p, err := s.auditLog.Read(c.Request.Context(), before, limit)
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the audit log; see the dashboard's log."})
			return
		}
		s.render(c, http.StatusOK, "audit", map[string]any{"Title": "Audit log", "P": p})
	}
}
