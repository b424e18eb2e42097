// Package envconfig reads a command's settings from environment variables
// and reports every missing or invalid one at once, by name.
//
// Settings fail closed: a value that would weaken authentication or expose
// something is an error ([Reader.Fail]) that stops the command at start.
// Only where refusing would break a sane deployment (TLS ended by an
// ingress in front of a plain-HTTP listener, say) does a command record a
// warning instead ([Reader.Warn]), which it logs at start.
//
// A command reads all its variables through one Reader, then checks Err:
//
//	env := envconfig.New(getenv)
//	addr := env.String("API_ADDR", ":8080")
//	n := env.Int("WORKER_CONCURRENCY", 5, 1) // default 5, at least 1
//	if err := env.Err(); err != nil { … }
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package envconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ErrInvalid is wrapped by every error a Reader reports.
var ErrInvalid = errors.New("invalid configuration")

// Reader reads variables through a getenv function and collects errors.
type Reader struct {
	getenv   func(string) string
	errs     []error
	warnings []string
	names    *strings.Replacer // nil: problems are named by variable
}

// New returns a Reader over getenv, usually os.Getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Named returns a Reader that reads nothing and names each problem it
// records by names[variable] in place of the variable's name, in the name
// and in the reason: for the checks of settings a program gives in code,
// whose problems are named by its Go fields ("Config.RedisURL") rather
// than by the variables that a command reads them from.
func Named(names map[string]string) *Reader {
	pairs := make([]string, 0, 2*len(names))
	for v, n := range names {
		pairs = append(pairs, v, n)
	}
	return &Reader{getenv: func(string) string { return "" }, names: strings.NewReplacer(pairs...)}
}

// rename names s as r's problems are named.
func (r *Reader) rename(s string) string {
	if r.names == nil {
		return s
	}
	return r.names.Replace(s)
}

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

// Credential returns the value of name, a user name or password, exactly
// as set. It records an error when the value is set but blank, or starts
// or ends with white space or holds a control character: such a value is
// a copy-and-paste accident, and trimming it silently would make the
// credential differ from the one its owner typed. The error names the
// variable, never its value. It returns "" when name is unset.
func (r *Reader) Credential(name string) string {
	v := r.getenv(name)
	switch {
	case v == "":
	case strings.TrimSpace(v) == "":
		r.Fail(name, "is set but blank")
		return ""
	case strings.TrimSpace(v) != v:
		r.Fail(name, "starts or ends with white space")
	case strings.ContainsFunc(v, unicode.IsControl):
		r.Fail(name, "holds a control character")
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

// Bool returns the value of name, "true" or "false", or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	switch v := r.Lookup(name); v {
	case "":
		return def
	case "true", "false":
		return v == "true"
	default:
		r.Fail(name, fmt.Sprintf("must be true or false, got %q", v))
		return def
	}
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
	r.errs = append(r.errs, fmt.Errorf("%s %s", r.rename(name), r.rename(reason)))
}

// Warn records that name is set in a way that is safe only in some
// deployments; the command logs it at start. The reason must not quote a
// secret.
func (r *Reader) Warn(name, reason string) {
	r.warnings = append(r.warnings, r.rename(name)+" "+r.rename(reason))
}

// Warnings returns what [Reader.Warn] recorded, each starting with the
// variable's name.
func (r *Reader) Warnings() []string { return r.warnings }

// Err returns every recorded problem as one error wrapping ErrInvalid, or
// nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %w", ErrInvalid, errors.Join(r.errs...))
}
