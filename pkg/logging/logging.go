// Package logging builds the one *slog.Logger each command uses.
//
// LOG_FORMAT chooses "text" (human-readable) or "json"; when unset, text is
// used on a terminal and JSON otherwise. LOG_LEVEL is debug, info (the
// default), warn or error.
//
// Keys are snake_case and fixed across the project: task_id, task_type,
// queue, retry, stripe_event_id, stripe_event_type, request_id, err.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/stripeq/stripeq/pkg/envconfig"
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
	l, name, reason := build(w, getenv)
	if name != "" {
		return nil, fmt.Errorf("%s %s", name, reason)
	}
	return l, nil
}

// Read is New for settings read through env (envconfig): an invalid
// LOG_FORMAT or LOG_LEVEL is recorded on env, with the others, and the
// logger returned then has the defaults.
func Read(env *envconfig.Reader, w io.Writer) *slog.Logger {
	l, name, reason := build(w, env.Lookup)
	if name != "" {
		env.Fail(name, reason)
		l, _, _ = build(w, func(string) string { return "" })
	}
	return l
}

// build returns the logger of New, or the variable that is invalid and
// why.
func build(w io.Writer, getenv func(string) string) (l *slog.Logger, name, reason string) {
	var level slog.Level
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, "LOG_LEVEL", fmt.Sprintf("must be debug, info, warn or error, got %q", v)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := strings.ToLower(strings.TrimSpace(getenv("LOG_FORMAT"))); f {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), "", ""
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), "", ""
	case "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), "", ""
		}
		return slog.New(slog.NewJSONHandler(w, opts)), "", ""
	default:
		return nil, "LOG_FORMAT", fmt.Sprintf("must be text or json, got %q", f)
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

// Err is the error attribute, with the URLs it quotes redacted: see
// [RedactError].
func Err(err error) slog.Attr {
	if err == nil {
		return slog.Any(KeyErr, nil)
	}
	return slog.String(KeyErr, RedactError(err))
}

// RedactError returns err's message with the URL of every *url.Error in
// its chain cut by [RedactURL]. An HTTP client's error quotes the whole
// URL it called ("Post \"https://hooks.example.com/T1/secret\": …"), and
// such a URL can be a credential, as a chat webhook's is.
func RedactError(err error) string {
	msg := err.Error()
	for _, ue := range urlErrors(err, nil) {
		if ue.URL == "" {
			continue
		}
		r := RedactURL(ue.URL)
		msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(r))
		msg = strings.ReplaceAll(msg, ue.URL, r)
	}
	return msg
}

// urlErrors appends every *url.Error in err's chain (through Unwrap() error
// and Unwrap() []error) to found.
func urlErrors(err error, found []*url.Error) []*url.Error {
	for err != nil {
		if ue, ok := err.(*url.Error); ok {
			found = append(found, ue)
		}
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				found = urlErrors(inner, found)
			}
			return found
		default:
			return found
		}
	}
	return found
}

// RedactURL returns raw cut to its scheme and host, for logs: the
// user-info, path, query and fragment, any of which may hold a secret, are
// dropped; "/…" marks a dropped path or query. An unparsable raw gives
// "(unparsable URL)".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		s += "/…"
	}
	return s
}
