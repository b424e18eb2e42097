package logging_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/logging"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://hooks.slack.com/services/T000/B000/hunter2", "https://hooks.slack.com/…"},
		{"https://user:hunter2@alerts.example.com:8443", "https://alerts.example.com:8443"},
		{"http://alerts.example.com?token=hunter2", "http://alerts.example.com/…"},
		{"http://alerts.example.com#hunter2", "http://alerts.example.com/…"},
		{"smtp://mailer:hunter2@mail.example.com:587", "smtp://mail.example.com:587"},
		{"not a URL hunter2", "(unparsable URL)"},
		{"http://h\x7fhunter2", "(unparsable URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := logging.RedactURL(tt.url); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

// TestErrRedactsURLs logs the error of a failed POST to a webhook URL that
// is a credential, as the worker's alerter does, and finds no part of the
// URL but its scheme and host.
func TestErrRedactsURLs(t *testing.T) {
	const secretURL = "http://127.0.0.1:1/services/T000/B000/hunter2?token=hunter3"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, secretURL, nil)
	_, postErr := http.DefaultClient.Do(req)
	if postErr == nil {
		t.Fatal("the POST to port 1 succeeded")
	}
	tests := []struct {
		name string
		err  error
	}{
		{"the client's error", postErr},
		{"wrapped", fmt.Errorf("alert: %w", postErr)},
		{"joined", errors.Join(errors.New("first"), fmt.Errorf("second: %w", postErr))},
		{"a url.Error built by hand", &url.Error{Op: "Get", URL: "https://u:hunter2@h/x", Err: errors.New("boom")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Error("alert webhook failed", logging.Err(tt.err))
			if out := buf.String(); strings.Contains(out, "hunter") || strings.Contains(out, "T000") || !strings.Contains(out, `"err":`) {
				t.Errorf("log line holds the URL's secret: %s", out)
			}
		})
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("ok", logging.Err(nil))
	if !strings.Contains(buf.String(), `"err":null`) {
		t.Errorf("a nil error logs as %s", buf.String())
	}
}
