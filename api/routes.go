package main

import "github.com/gin-gonic/gin"

// routes is the api's whole HTTP surface on API_ADDR. Its Prometheus
// metrics are served apart, on METRICS_ADDR (metrics.serve).
func (s *server) routes(r gin.IRouter) {
	r.POST("/webhooks/stripe", s.metrics.countOutcome(), s.handleWebhook())
	r.GET("/healthz", handleHealthz())
	r.GET("/readyz", s.handleReadyz())
}
