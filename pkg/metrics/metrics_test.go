package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeq/stripeq/pkg/envconfig"
)

func TestServe(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "stripeq_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, reg, l) }()
	for path, want := range map[string]string{"/metrics": "stripeq_test_total 3", "/healthz": `{"status":"ok"}`} {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(b), "go_goroutines") {
			t.Errorf("GET /metrics lacks the Go collector's metrics")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after its context ended", err)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr  string
		fails bool
		warns bool
	}{
		{"127.0.0.1:8083", false, false},
		{"localhost:8083", false, false},
		{":8083", false, true},
		{"0.0.0.0:8083", false, true},
		{"8083", true, false},
	}
	for _, tt := range tests {
		env := envconfig.New(func(string) string { return "" })
		CheckAddr(env, tt.addr)
		if (env.Err() != nil) != tt.fails || (len(env.Warnings()) > 0) != tt.warns {
			t.Errorf("CheckAddr(%q): err %v, warnings %q; want failure %v, warning %v", tt.addr, env.Err(), env.Warnings(), tt.fails, tt.warns)
		}
	}
}
