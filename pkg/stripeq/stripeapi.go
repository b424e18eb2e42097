package stripeq

import (
	"bytes"
	"context"
	"errors"
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

// defaultRetryAfter is the wait after a Stripe 429 that has no Retry-After.
const defaultRetryAfter = 5 * time.Second

// stripeAPI fetches authoritative copies from Stripe's API. It is nil when
// STRIPE_SECRET_KEY is unset; the handlers then use the verified payload.
// Handlers reach its client through Worker.Stripe.
type stripeAPI struct {
	client *client.API
}

// newStripeAPI returns a client for key. A non-empty base URL points it at
// another backend (stripe-mock, a test server). stripe-go's own retries are
// off: asynq retries, and a 429 must come back to RetryDelayFunc. It keeps
// up to conns idle connections to Stripe, one per handler of
// WORKER_CONCURRENCY; Go's default of 2 would close and reopen a
// connection for most requests.
func newStripeAPI(key, base string, conns int) *stripeAPI {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = max(conns, 2)
	transport.MaxIdleConns = max(transport.MaxIdleConns, conns)
	cfg := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(0),
		HTTPClient:        &http.Client{Timeout: 20 * time.Second, Transport: transport},
	}
	if base != "" {
		cfg.URL = stripe.String(base)
	}
	api := client.New(key, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	})
	return &stripeAPI{client: api}
}

// event retrieves an event by ID, on the Connect account when one is given,
// and returns its JSON undecoded: the handler decodes it once, into only
// what it reads (decodeCopy). stripe-go sends the request and turns an
// error answer into a *stripe.Error; its streaming call leaves the body of
// a success to us, so that it is not decoded twice.
func (s *stripeAPI) event(ctx context.Context, id, account string) ([]byte, error) {
	p := &stripe.EventParams{}
	p.Context = ctx
	if account != "" {
		p.SetStripeAccount(account)
	}
	var res streamedBody
	events := s.client.Events
	if err := events.B.CallStreaming(http.MethodGet, stripe.FormatURLPath("/v1/events/%s", id), events.Key, p, &res); err != nil {
		return nil, ClassifyStripe("retrieve event "+id, err)
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

// ClassifyStripe turns an error of a stripe-go call into what the worker
// should do with the task, wrapped with what (e.g. "retrieve charge
// ch_1"): a 429 waits for its Retry-After (5 s when absent) without using
// up a retry ([RateLimitError]); any other 4xx, which no retry can fix, is
// permanent ([ErrPermanent]); a 5xx or network error is retried with
// backoff. A handler needs it only for the 4xx: a 429 it returns as is is
// recognised anyway.
func ClassifyStripe(what string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch code := se.HTTPStatusCode; {
	case code == http.StatusTooManyRequests:
		return rateLimited(fmt.Errorf("%s: %w", what, err))
	case code >= 400 && code < 500:
		return fmt.Errorf("%w: %s: Stripe answered %d: %w", ErrPermanent, what, code, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// stripeLogger sends stripe-go's own log lines to slog, its info lines at
// debug level, with every error and URL argument redacted: stripe-go logs
// the URL it calls and a failed request's error, which quotes that URL
// (STRIPE_API_BASE may carry credentials for a proxy).
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) Debugf(format string, v ...any) { l.log.Debug("stripe: " + redactedf(format, v)) }
func (l stripeLogger) Infof(format string, v ...any)  { l.log.Debug("stripe: " + redactedf(format, v)) }
func (l stripeLogger) Warnf(format string, v ...any)  { l.log.Warn("stripe: " + redactedf(format, v)) }
func (l stripeLogger) Errorf(format string, v ...any) { l.log.Warn("stripe: " + redactedf(format, v)) }

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
