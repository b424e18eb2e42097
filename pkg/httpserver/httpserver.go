// Package httpserver holds what every HTTP server of stripeq shares, on
// net/http alone: an http.Server with every timeout set, a graceful Serve,
// and the loopback checks of listen addresses and URLs. The Gin engine of
// the api and the dashboard, with its middleware, is pkg/httpserver/ginserver,
// apart, so that what imports this package (the worker's metrics server,
// pkg/stripeq) does not link Gin. Internal to this module: no compatibility
// promise.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
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
