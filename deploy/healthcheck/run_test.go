package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/healthz", http.StatusFound) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for success
	}{
		{"2xx is healthy", []string{srv.URL + "/healthz"}, ""},
		{"503 is unhealthy", []string{srv.URL + "/readyz"}, "503"},
		{"404 is unhealthy", []string{srv.URL + "/nope"}, "404"},
		{"redirect is not followed", []string{srv.URL + "/moved"}, "302"},
		{"nothing listening", []string{closedURL + "/healthz"}, "connect"},
		{"timeout", []string{"-timeout", "100ms", srv.URL + "/slow"}, "deadline"},
		{"no argument", nil, "usage"},
		{"two arguments", []string{srv.URL, srv.URL}, "usage"},
		{"not a URL", []string{"127.0.0.1:8080/healthz"}, "usage"},
		{"bad timeout", []string{"-timeout", "0s", srv.URL + "/healthz"}, "usage"},
		{"unknown flag", []string{"-x", srv.URL + "/healthz"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run(%q) = %v, want nil", tt.args, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("run(%q) = nil, want an error containing %q", tt.args, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if tt.wantErr == "usage" && !errors.Is(err, errUsage) {
				t.Fatalf("run(%q) = %v, want errUsage", tt.args, err)
			}
		})
	}
}
