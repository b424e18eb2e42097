package main

import (
	"net/http"

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

	authed := r.Group("/", s.authenticate(), s.csrf())
	authed.POST("/logout", s.handleLogout())
	authed.GET("/", s.handleListPage())
	authed.GET("/executions/:id", s.handleDetailPage())

	api := authed.Group("/api")
	api.GET("/executions", s.handleList())
	api.GET("/executions/:id", s.handleDetail())
	api.GET("/facets", s.handleFacets())
	op := api.Group("/", requireOperator())
	op.POST("/executions/rerun", s.handleBulkRerun())
	op.POST("/executions/:id/rerun", s.handleRerun())
	op.POST("/executions/:id/cancel", s.handleCancel())
	op.DELETE("/executions/:id", s.handleDelete())

	authed.Any(monitoringPath, gin.WrapH(http.RedirectHandler(monitoringPath+"/", http.StatusMovedPermanently)))
	authed.Any(monitoringPath+"/*any", s.handleMonitoring())

	r.NoRoute(s.authenticate(), func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"message": "not found"})
	})
	r.NoMethod(s.authenticate(), func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"message": "method not allowed"})
	})
}

// handleMonitoring serves asynqmon: read-only for viewers, whose
// state-changing requests get 403 before they reach it.
func (s *server) handleMonitoring() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetString(ctxRole) != string(roleOperator) {
			if !isSafe(c.Request.Method) {
				c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "viewers may not change anything; sign in as an operator"})
				return
			}
			s.monitoringRO.ServeHTTP(c.Writer, c.Request)
			return
		}
		s.monitoring.ServeHTTP(c.Writer, c.Request)
	}
}
