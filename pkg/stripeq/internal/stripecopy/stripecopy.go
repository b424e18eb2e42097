// Package stripecopy is the worker's Stripe API client: it retrieves
// Stripe's own copy of each event (STRIPE_SECRET_KEY), and is the client
// stripeq.Worker.Stripe hands to handlers, with stripe-go's retries off
// and its log lines redacted. Part of pkg/stripeq's engine: internal, no
// compatibility promise.
package stripecopy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeq/stripeq/pkg/logging"
)

// Client fetches authoritative copies from Stripe's API. The worker has
// none when STRIPE_SECRET_KEY is unset; the handlers then use the verified
// payload. Handlers reach API through stripeq.Worker.Stripe.
type Client struct {
	API *client.API
}

// New returns a client for key. A non-empty base URL points it at
// another backend (stripe-mock, a test server). stripe-go's own retries are
// off: asynq retries, and a 429 must come back to RetryDelayFunc. It keeps
// up to conns idle connections to Stripe, one per handler of
// WORKER_CONCURRENCY; Go's default of 2 would close and reopen a
// connection for most requests. stripe-go's own log lines go to log, at
// debug level and redacted (Logger), through this client's backends only:
// stripe.DefaultLeveledLogger, which is process-wide, is left alone.
func New(key, base string, conns int, log *slog.Logger) *Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(conns, 2)
	transport.MaxIdleConns = max(transport.MaxIdleConns, conns)
	cfg := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(0),
		HTTPClient:        &http.Client{Timeout: 20 * time.Second, Transport: transport},
		LeveledLogger:     Logger{log},
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	api := client.New(key, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	})
	return &Client{API: api}
}

// Event retrieves an event by ID, on the Connect account when one is given,
// and returns its JSON undecoded: the handler decodes it once, into only
// what it reads (decodeCopy). stripe-go sends the request and turns an
// error answer into a *stripe.Error; its streaming call leaves the body of
// a success to us, so that it is not decoded twice. A Stripe error is
// returned as stripe-go gives it, for the caller to classify.
func (s *Client) Event(ctx context.Context, id, account string) ([]byte, error) {
	p := &stripe.EventParams{}
	p.Context = ctx
	if account != "" {
		p.SetStripeAccount(account)
	}
	var res streamedBody
	events := s.API.Events
	if err := events.B.CallStreaming(http.MethodGet, stripe.FormatURLPath("/v1/events/%s", id), events.Key, p, &res); err != nil {
		return nil, err
	}
	defer res.body.Close()
	var buf bytes.Buffer
	if n, err := strconv.Atoi(res.header.Get("Content-Length")); err == nil && n > 0 && n <= maxEventSize {
		buf.Grow(n + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(res.body, maxEventSize+1)); err != nil {
		return nil, fmt.Errorf("retrieve event %s: read the answer: %w", id, err)
	}
	if buf.Len() > maxEventSize {
		return nil, fmt.Errorf("retrieve event %s: the answer is larger than %d bytes", id, maxEventSize)
	}
	return buf.Bytes(), nil
}

// maxEventSize bounds the copy of an event read from Stripe. Stripe's
// events are a few KB, and the api takes deliveries of up to 1 MB.
const maxEventSize = 4 << 20

// streamedBody receives the answer of a stripe-go streaming call.
type streamedBody struct {
	header http.Header
	body   io.ReadCloser
}

func (b *streamedBody) SetLastResponse(r *stripe.StreamingAPIResponse) {
	b.header, b.body = r.Header, r.Body
}

// Logger sends stripe-go's own log lines to slog, its info lines at
// debug level, with every error and URL argument redacted: stripe-go logs
// the URL it calls and a failed request's error, which quotes that URL
// (STRIPE_API_BASE may carry credentials for a proxy). A line below the
// logger's level is not formatted: stripe-go logs every request it sends,
// at info level.
type Logger struct{ Log *slog.Logger }

func (l Logger) Debugf(format string, v ...any) {
	if l.Log.Enabled(context.Background(), slog.LevelDebug) {
		l.Log.Debug("stripe: " + redactedf(format, v))
	}
}

// Infof logs at debug level, as Debugf: stripe-go's info lines are one per
// request.
func (l Logger) Infof(format string, v ...any) { l.Debugf(format, v...) }

func (l Logger) Warnf(format string, v ...any)  { l.Log.Warn("stripe: " + redactedf(format, v)) }
func (l Logger) Errorf(format string, v ...any) { l.Log.Warn("stripe: " + redactedf(format, v)) }

func redactedf(format string, v []any) string {
	for i, a := range v {
		switch a := a.(type) {
		case error:
			v[i] = logging.RedactError(a)
		case string:
			if strings.Contains(a, "://") {
				v[i] = logging.RedactURL(a)
			}
		}
	}
	return fmt.Sprintf(format, v...)
}
