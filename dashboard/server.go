package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/httpserver"
)

// monitoringPath is where asynqmon is mounted.
const monitoringPath = "/monitoring"

// server is the dashboard with every dependency it uses.
type server struct {
	log        *slog.Logger
	cfg        config
	monitoring http.Handler // asynqmon, rooted at monitoringPath
	ping       func(context.Context) error
}

// handler returns the Gin engine serving every route in routes.
func (s *server) handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(httpserver.RequestID(), httpserver.AccessLog(s.log), httpserver.Recovery(s.log))
	s.routes(r)
	return r
}
