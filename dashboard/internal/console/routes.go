package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
)

// routes is the dashboard's whole HTTP surface. Everything but /healthz,
// the login form and the Console's own static files needs a signed-in
// user; every state-changing route is CSRF-protected and for operators
// only.
func (s *server) routes(r *gin.Engine) {
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/login", s.handleLoginPage())
	r.POST("/login", s.handleLogin())
	r.GET("/static/*file", handleStatic())
	r.HEAD("/static/*file", handleStatic())
	r.GET("/favicon.ico", handleFavicon())

	authed := r.Group("/", s.authenticate, s.auth.CSRF())
	authed.POST("/logout", s.handleLogout())
	authed.GET("/", s.throttle(), s.handleListPage())
	authed.GET("/executions/:id", s.throttle(), s.handleDetailPage())
	authed.GET("/deliveries", s.throttle(), s.handleDeliveriesPage())
	authed.GET("/deliveries/:id", s.throttle(), s.handleDeliveryPage())
	authed.POST("/deliveries/:id/rerun", s.throttle(), auth.RequireOperator(), s.handleDeliveryRerunForm())
	authed.GET("/recoveries", s.throttle(), s.handleRecoveriesPage())
	authed.GET("/audit", s.throttle(), s.handleAuditPage())

	api := authed.Group("/api", s.throttle())
	api.GET("/executions", s.handleList())
	api.GET("/executions.ndjson", s.handleExport())
	api.GET("/jobs/:id", s.handleJob())
	api.GET("/executions/:id", s.handleDetail())
	api.GET("/facets", s.handleFacets())
	api.GET("/chart", s.handleChart())
	api.GET("/deliveries", s.handleDeliveries())
	api.GET("/deliveries/:id", s.handleDelivery())
	api.GET("/audit", s.handleAudit())
	op := api.Group("/", auth.RequireOperator())
	op.POST("/executions/rerun", s.handleBulkRerun())
	op.POST("/executions/rerun-selected", s.handleRerunSelected())
	op.POST("/executions/:id/rerun", s.handleRerun())
	op.POST("/executions/:id/cancel", s.handleCancel())
	op.DELETE("/executions/:id", s.handleDelete())
	op.POST("/executions/:id/discard", s.handleDiscard())
	s.recoveryRoutes(api, op)
	op.POST("/deliveries/:id/rerun", s.handleDeliveryRerun())

	authed.Any(monitoringPath, gin.WrapH(http.RedirectHandler(monitoringPath+"/", http.StatusMovedPermanently)))
	// asynqmon: its icons and manifest are open, the rest as authed.
	r.Any(monitoringPath+"/*any", s.serveMonitoringPublicAssets(), s.authenticate, s.auth.CSRF(), s.throttleMonitoringAPI(), s.handleMonitoring())

	r.NoRoute(s.authenticate, func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"message": "not found"})
	})
	r.NoMethod(s.authenticate, func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"message": "method not allowed"})
	})
}

// handleMonitoring serves asynqmon: read-only for viewers, whose
// state-changing requests get 403 before they reach it. Its lists take
// only bounded pages (checkMonitoringPage), and the queues parameter of
// its metrics API, which asynqmon pastes into PromQL unescaped, may only
// name known queues; 400 otherwise.
func (s *server) handleMonitoring() gin.HandlerFunc {
	return func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, monitoringPath+"/api/") {
			v := c.Request.URL.Query()
			err := checkMonitoringPage(v)
			if err == nil && c.Request.URL.Path == monitoringPath+"/api/metrics" {
				err = s.checkMetricsQueues(v)
			}
			if err != nil {
				c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
				return
			}
		}
		mon := s.monitoring
		if c.GetString(auth.KeyRole) != string(auth.Operator) {
			if !auth.IsSafe(c.Request.Method) {
				c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "viewers may not change anything; sign in as an operator"})
				return
			}
			mon = s.monitoringRO
		}
		if auth.IsSafe(c.Request.Method) {
			w := &htmlRewriter{ResponseWriter: c.Writer}
			mon.ServeHTTP(w, c.Request)
			w.flush()
			return
		}
		// An operator's change goes to the audit log too, by its API path
		// ("POST queues/stripe/archived_tasks/evt_1:run") with what it
		// changed (monitoring_audit.go).
		if q, ok := cancelAllQueue(c.Request.Method, c.Request.URL.Path); ok {
			s.cancelAll(c, q)
			return
		}
		w := &htmlRewriter{ResponseWriter: c.Writer, answer: &limitedBuffer{max: maxAuditAnswer}}
		mon.ServeHTTP(w, c.Request)
		w.flush()
		s.auditMonitoring(c, c.Writer.Status(), w.answer.Bytes())
	}
}

// checkMetricsQueues accepts the queues parameter of asynqmon's metrics
// API only when every comma-separated name is a queue of this deployment
// or one asynq knows, and is made of letters, digits, "_", "-", "." and
// ":" alone.
func (s *server) checkMetricsQueues(v url.Values) error {
	if len(v["queues"]) > 1 {
		return errors.New("queues may be given once")
	}
	raw := v.Get("queues")
	if raw == "" {
		return nil
	}
	known := s.index.Queues()
	if more, err := s.tasks.Queues(); err == nil {
		known = append(slices.Clone(known), more...)
	}
	for q := range strings.SplitSeq(raw, ",") {
		if !queueName.MatchString(q) || !slices.Contains(known, q) {
			return fmt.Errorf("queues: %q is not a known queue", q)
		}
	}
	return nil
}

// queueName is the shape of a queue name the metrics API accepts.
var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)
