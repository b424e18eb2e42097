package tasklog

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLazyAttrsLogsAsWith: a logger whose attributes are added at the
// first line logs exactly what one made by With does.
func TestLazyAttrsLogsAsWith(t *testing.T) {
	attrs := []slog.Attr{slog.String("task_id", "evt_1"), slog.Int("retry", 2)}
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"a line", func(l *slog.Logger) { l.Info("done", "k", 1) }},
		{"below the level", func(l *slog.Logger) { l.Debug("hidden") }},
		{"with more attributes", func(l *slog.Logger) { l.With("a", "b").Warn("w") }},
		{"in a group", func(l *slog.Logger) { l.WithGroup("g").Error("e", "x", true) }},
		{"twice", func(l *slog.Logger) { l.Info("one"); l.Info("two") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}
			args := make([]any, len(attrs))
			for i, a := range attrs {
				args[i] = a
			}
			tt.log(slog.New(slog.NewJSONHandler(&want, opts)).With(args...))
			tt.log(slog.New(&lazyAttrs{h: slog.NewJSONHandler(&got, opts), attrs: attrs}))
			if got.String() != want.String() {
				t.Errorf("lazy:\n%s\nWith:\n%s", got.String(), want.String())
			}
		})
	}
}
