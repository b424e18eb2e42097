// Package logging builds the one *slog.Logger each command uses.
//
// LOG_FORMAT chooses "text" (human-readable) or "json"; when unset, text is
// used on a terminal and JSON otherwise. LOG_LEVEL is debug, info (the
// default), warn or error.
//
// Keys are snake_case and fixed across the project: task_id, task_type,
// queue, retry, stripe_event_id, stripe_event_type, request_id, err.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Keys used in log records across stripeq.
const (
	KeyTaskID    = "task_id"
	KeyTaskType  = "task_type"
	KeyQueue     = "queue"
	KeyRetry     = "retry"
	KeyEventID   = "stripe_event_id"
	KeyEventType = "stripe_event_type"
	KeyRequestID = "request_id"
	KeyErr       = "err"
)

// New returns a logger writing to w, configured by LOG_FORMAT and LOG_LEVEL
// read through getenv. It reports an invalid value by variable name.
func New(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	var level slog.Level
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", v)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := strings.ToLower(strings.TrimSpace(getenv("LOG_FORMAT"))); f {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("LOG_FORMAT must be text or json, got %q", f)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Err is a shorthand for the error attribute.
func Err(err error) slog.Attr { return slog.Any(KeyErr, err) }
