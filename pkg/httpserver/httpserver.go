// Package httpserver holds what the api's and the dashboard's HTTP servers
// share: an http.Server with every timeout set, a graceful Serve, and the
// Gin middleware for request IDs, access logs and panics.
package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/logging"
)

// Timeouts of every server. Stripe gives up on a delivery after 30 s, so no
// request needs longer; the header timeout stops slow-loris clients.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 20 * time.Second
	IdleTimeout       = 90 * time.Second
	MaxHeaderBytes    = 64 << 10
	// ShutdownTimeout is how long Serve waits for in-flight requests after
	// its context ends.
	ShutdownTimeout = 20 * time.Second
)

// New returns a server for h with the timeouts above.
func New(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Serve serves srv on l until ctx ends, then shuts it down gracefully,
// letting in-flight requests finish for up to ShutdownTimeout.
func Serve(ctx context.Context, srv *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

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

// IsLoopback reports whether addr (host:port, as a listener takes it)
// listens only on loopback. An empty host means every interface, which is
// not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return IsLoopbackHost(host)
}

// IsLoopbackHost reports whether host, a name or an IP address without a
// port, is "localhost" or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
