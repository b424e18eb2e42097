package main

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// routes is the dashboard's whole HTTP surface. Everything but /healthz
// needs authentication.
func (s *server) routes(r *gin.Engine) {
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })

	authed := r.Group("/", requireAuth(s.cfg.User, s.cfg.Password))
	authed.GET("/", s.handleConsole())
	authed.Any(monitoringPath, gin.WrapH(http.RedirectHandler(monitoringPath+"/", http.StatusMovedPermanently)))
	authed.Any(monitoringPath+"/*any", gin.WrapH(s.monitoring))
	r.NoRoute(requireAuth(s.cfg.User, s.cfg.Password), func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"message": "not found"})
	})
}

// handleConsole serves the Console page. Until the Console lands it points
// to asynqmon and says whether Redis answers.
func (s *server) handleConsole() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
		defer cancel()
		redisOK := s.ping(ctx) == nil
		c.Header("Content-Type", "text/html; charset=utf-8")
		c.Status(http.StatusOK)
		consolePage.Execute(c.Writer, map[string]any{"Monitoring": monitoringPath + "/", "RedisOK": redisOK, "Queue": s.cfg.Queue})
	}
}
