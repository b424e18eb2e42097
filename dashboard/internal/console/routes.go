package console

import (
	"net/http"

	"github.com/stripeq/stripeq/dashboard/internal/monitoring"

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
	op.POST("/deliveries/rerun", s.handleDeliveriesRerun())
	op.POST("/deliveries/rerun-selected", s.handleDeliveriesRerunSelected())
	op.POST("/deliveries/:id/rerun", s.handleDeliveryRerun())

	authed.Any(monitoringPath, gin.WrapH(http.RedirectHandler(monitoringPath+"/", http.StatusMovedPermanently)))
	// asynqmon: its icons and manifest are open, the rest as authed.
	mon := monitoring.NewHandler(s.monitoring, s.monitoringRO, s.tasks, s.index.Queues, s.audit)
	r.Any(monitoringPath+"/*any", mon.PublicAssets(), s.authenticate, s.auth.CSRF(), s.throttleMonitoringAPI(), mon.Serve())

	r.NoRoute(s.authenticate, func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"message": "not found"})
	})
	r.NoMethod(s.authenticate, func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"message": "method not allowed"})
	})
}
