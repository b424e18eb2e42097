package stripecopy

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
)

// TestLoggerLevels: stripe-go's info and debug lines are debug lines,
// redacted, and formatted only when the logger takes debug lines; its
// warnings and errors are warnings.
func TestLoggerLevels(t *testing.T) {
	const url = "https://user:secret@proxy.example/v1/events/evt_1"
	tests := []struct {
		name  string
		level slog.Level
		log   func(Logger)
		want  string // "": nothing logged
	}{
		{"info at debug", slog.LevelDebug, func(l Logger) { l.Infof("Requesting %v %v", "GET", url) }, "level=DEBUG msg=\"stripe: Requesting GET https://proxy.example/…\""},
		{"debug at debug", slog.LevelDebug, func(l Logger) { l.Debugf("%v", "x") }, "level=DEBUG msg=\"stripe: x\""},
		{"info at info", slog.LevelInfo, func(l Logger) { l.Infof("Requesting %v %v", "GET", url) }, ""},
		{"debug at info", slog.LevelInfo, func(l Logger) { l.Debugf("%v", "x") }, ""},
		{"error at info", slog.LevelInfo, func(l Logger) { l.Errorf("Request failed: %v", errors.New("boom")) }, "level=WARN msg=\"stripe: Request failed: boom\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			tt.log(Logger{log})
			if got := string(bytes.TrimSpace(buf.Bytes())); got != tt.want {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}
