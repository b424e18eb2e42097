// Package envconfig reads a command's settings from environment variables
// and reports every missing or invalid one at once, by name.
//
// A command reads all its variables through one Reader, then checks Err:
//
//	env := envconfig.New(getenv)
//	addr := env.String("API_ADDR", ":8080")
//	n := env.Int("WORKER_CONCURRENCY", 5)
//	if err := env.Err(); err != nil { … }
package envconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error a Reader reports.
var ErrInvalid = errors.New("invalid configuration")

// Reader reads variables through a getenv function and collects errors.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv, usually os.Getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Lookup returns the trimmed value of name, or "" when unset.
func (r *Reader) Lookup(name string) string { return strings.TrimSpace(r.getenv(name)) }

// String returns the value of name, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := r.Lookup(name); v != "" {
		return v
	}
	return def
}

// Required returns the value of name and records an error when it is empty.
// The error names the variable, never its value.
func (r *Reader) Required(name, hint string) string {
	v := r.Lookup(name)
	if v == "" {
		r.Fail(name, "is required: "+hint)
	}
	return v
}

// Int returns the value of name as an integer ≥ min, or def when unset.
func (r *Reader) Int(name string, def, min int) int {
	v := r.Lookup(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		r.Fail(name, fmt.Sprintf("must be a whole number ≥ %d, got %q", min, v))
		return def
	}
	return n
}

// IntRange returns the value of name as an integer from min to max, or def
// when unset.
func (r *Reader) IntRange(name string, def, min, max int) int {
	v := r.Lookup(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.Fail(name, fmt.Sprintf("must be a whole number from %d to %d, got %q", min, max, v))
		return def
	}
	return n
}

// Duration returns the value of name as a positive Go duration ("90s",
// "72h"), or def when unset.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.Lookup(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.Fail(name, fmt.Sprintf("must be a positive duration such as 30s or 72h, got %q", v))
		return def
	}
	return d
}

// List returns the comma-separated values of name, trimmed and without
// empty items, or def when unset.
func (r *Reader) List(name string, def []string) []string {
	v := r.Lookup(name)
	if v == "" {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Fail records that name is wrong, with a reason that must not quote a
// secret.
func (r *Reader) Fail(name, reason string) {
	r.errs = append(r.errs, fmt.Errorf("%s %s", name, reason))
}

// Err returns every recorded problem as one error wrapping ErrInvalid, or
// nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %w", ErrInvalid, errors.Join(r.errs...))
}
