// Package metrics holds what the commands that export Prometheus metrics
// share: a registry with the Go runtime and process collectors, the
// server of /metrics apart from any public listener, and the check of its
// address.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package metrics

import (
	"context"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
)

// NewRegistry returns a registry holding the Go runtime's and the
// process's collectors; a command registers its own metrics on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve serves GET /metrics from reg, and GET /healthz answering
// {"status":"ok"}, on l until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, reg *prometheus.Registry, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	return httpserver.Serve(ctx, httpserver.New(mux), l)
}

// CheckAddr checks METRICS_ADDR's value addr on env: an error when it is
// not host:port, a warning when it is not loopback, since /metrics has no
// authentication.
func CheckAddr(env *envconfig.Reader, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		env.Fail("METRICS_ADDR", "must be host:port, as 127.0.0.1:8083")
		return
	}
	if !httpserver.IsLoopback(addr) {
		env.Warn("METRICS_ADDR", "is not a loopback address: /metrics answers without authentication to whoever reaches it; keep it on a network only Prometheus reaches")
	}
}
