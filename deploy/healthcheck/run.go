package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultTimeout bounds the whole request. Docker's own --timeout kills a
// check that hangs longer, but reports it less clearly.
const defaultTimeout = 3 * time.Second

// errUsage is returned for a missing or malformed argument.
var errUsage = errors.New("usage: healthcheck [-timeout 3s] http://host:port/path")

// run GETs the URL in args and returns nil only for a 2xx answer.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", defaultTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		return errUsage
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http:// or https:// URL", errUsage, fs.Arg(0))
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	client := &http.Client{
		// A redirect from a health endpoint means it is the wrong URL
		// (e.g. a login page), not health.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	return nil
}
