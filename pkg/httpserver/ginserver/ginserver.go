// Package ginserver is the Gin engine of stripeq's api and dashboard, with
// the middleware every one of their requests goes through first: request
// IDs, access logs and panics. It is apart from pkg/httpserver, on net/http
// alone, so that a program that serves no Gin route does not link Gin.
// Internal to this module: no compatibility promise.
package ginserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/logging"
)

// HeaderRequestID is the request ID header, read from the client when it
// sends one and always set on the answer.
const HeaderRequestID = "X-Request-Id"

// RequestID gives each request an ID, stored under logging.KeyRequestID.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if id == "" || len(id) > 64 {
			b := make([]byte, 8)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set(logging.KeyRequestID, id)
		c.Header(HeaderRequestID, id)
		c.Next()
	}
}

// AccessLog logs one line per request: method, path, status, duration,
// request ID, and any string values stored in the context under the given
// keys (such as the Stripe event ID). It never logs headers or bodies.
// Errors attached with c.Error are logged with it.
func AccessLog(log *slog.Logger, keys ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.String(logging.KeyRequestID, c.GetString(logging.KeyRequestID)),
		}
		for _, k := range keys {
			if v := c.GetString(k); v != "" {
				attrs = append(attrs, slog.String(k, v))
			}
		}
		level := slog.LevelInfo
		if len(c.Errors) > 0 {
			attrs = append(attrs, slog.String(logging.KeyErr, c.Errors.String()))
		}
		if status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "request", attrs...)
	}
}

// Recovery turns a panic in a handler into a logged 500.
func Recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, v any) {
		log.Error("panic in handler", "panic", fmt.Sprint(v), slog.String(logging.KeyRequestID, c.GetString(logging.KeyRequestID)))
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"message": "internal error"})
	})
}

// NewEngine returns a Gin engine in release mode with the middleware every
// stripeq server runs first: [RequestID], [AccessLog] with logKeys, and
// [Recovery]. It answers 405 to a known path with another method, and a
// handler's gin.Context falls back to its request's context.
func NewEngine(log *slog.Logger, logKeys ...string) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(RequestID(), AccessLog(log, logKeys...), Recovery(log))
	return r
}
