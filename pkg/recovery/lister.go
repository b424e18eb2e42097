package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// MaxTypes is the most event types Stripe's GET /v1/events takes in one
// types[] filter.
const MaxTypes = 20

// PageSize is the largest page of GET /v1/events and GET /v1/accounts.
const PageSize = 100

// Lister lists events and connected accounts with Stripe's API, a page of
// PageSize at a time. A 429 is retried after its Retry-After (or, without
// one, a backoff from 1 s doubling to 30 s), and so are a 5xx and a
// network error, up to MaxAttempts times per page.
type Lister struct {
	// Backend is the stripe-go backend (pkg/stripeapi.NewBackend), with
	// its own retries off.
	Backend stripe.Backend
	// Key is STRIPE_SECRET_KEY.
	Key string
	// MaxAttempts bounds the attempts at one page. If zero, 8.
	MaxAttempts int
	// Sleep waits d or until ctx ends. If nil, a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, when set, is told of each retried failure.
	OnRetry func(err error, wait time.Duration)
}

// page is one page of a Stripe list, its objects left undecoded: an
// event is stored as the JSON Stripe sent.
type page struct {
	stripe.APIResource
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// Accounts returns the IDs of the connected accounts GET /v1/accounts
// lists.
func (l *Lister) Accounts(ctx context.Context) ([]string, error) {
	var ids []string
	after := ""
	for {
		p := &stripe.AccountListParams{}
		p.Limit = stripe.Int64(PageSize)
		if after != "" {
			p.StartingAfter = stripe.String(after)
		}
		p.Context = ctx
		pg, err := l.get(ctx, "/v1/accounts", p)
		if err != nil {
			return nil, fmt.Errorf("list connected accounts: %w", err)
		}
		for _, raw := range pg.Data {
			var a struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
				return nil, fmt.Errorf("list connected accounts: an account without an ID")
			}
			ids = append(ids, a.ID)
			after = a.ID
		}
		if !pg.HasMore || len(pg.Data) == 0 {
			return ids, nil
		}
	}
}

// Events lists the events of account ("" for the platform, else through
// the Stripe-Account header) created from since to until (unix seconds,
// both included), of types (at most MaxTypes; none lists every type),
// newest first, and calls fn with each page. It stops at fn's first error.
func (l *Lister) Events(ctx context.Context, account string, types []string, since, until int64, fn func([]json.RawMessage) error) error {
	if len(types) > MaxTypes {
		return fmt.Errorf("list events: %d types, Stripe takes at most %d", len(types), MaxTypes)
	}
	after := ""
	for {
		p := &stripe.EventListParams{
			CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since, LesserThanOrEqual: until},
		}
		if len(types) > 0 {
			p.Types = stripe.StringSlice(types)
		}
		p.Limit = stripe.Int64(PageSize)
		if after != "" {
			p.StartingAfter = stripe.String(after)
		}
		if account != "" {
			p.SetStripeAccount(account)
		}
		p.Context = ctx
		pg, err := l.get(ctx, "/v1/events", p)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		if len(pg.Data) > 0 {
			var last struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(pg.Data[len(pg.Data)-1], &last); err != nil || last.ID == "" {
				return fmt.Errorf("list events: an event without an ID")
			}
			after = last.ID
			if err := fn(pg.Data); err != nil {
				return err
			}
		}
		if !pg.HasMore || len(pg.Data) == 0 {
			return nil
		}
	}
}

// get fetches one page, retrying what may pass.
func (l *Lister) get(ctx context.Context, path string, params stripe.ListParamsContainer) (*page, error) {
	// As stripe-go's list iterators call: the parameters as a query, the
	// Stripe-Account header and context from ListParams.
	query := &form.Values{}
	form.AppendTo(query, params)
	attempts := l.MaxAttempts
	if attempts <= 0 {
		attempts = 8
	}
	for n := 0; ; n++ {
		var pg page
		err := l.Backend.CallRaw(http.MethodGet, path, l.Key, query, params.GetListParams().ToParams(), &pg)
		if err == nil {
			return &pg, nil
		}
		wait, retry := retryAfter(err, n)
		if !retry || n+1 >= attempts || ctx.Err() != nil {
			return nil, describe(err)
		}
		if l.OnRetry != nil {
			l.OnRetry(describe(err), wait)
		}
		if err := l.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (l *Lister) sleep(ctx context.Context, d time.Duration) error {
	if l.Sleep != nil {
		return l.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxWait caps one wait, a Retry-After's included.
const maxWait = time.Minute

// retryAfter tells whether err, the n-th failure (from 0) of a page, may
// pass on a retry, and after how long: a 429's Retry-After, else 1 s
// doubling to 30 s. A 4xx other than 429 will not pass.
func retryAfter(err error, n int) (time.Duration, bool) {
	backoff := min(time.Second<<min(n, 5), 30*time.Second)
	var se *stripe.Error
	if !errors.As(err, &se) {
		return backoff, true // a network error
	}
	switch code := se.HTTPStatusCode; {
	case code == http.StatusTooManyRequests:
		if se.LastResponse != nil {
			if s, err := strconv.Atoi(se.LastResponse.Header.Get("Retry-After")); err == nil && s >= 0 {
				return min(time.Duration(s)*time.Second, maxWait), true
			}
		}
		return backoff, true
	case code >= 500:
		return backoff, true
	default:
		return 0, false
	}
}

// describe turns a stripe-go error into a short message: Stripe's status
// and message, without the JSON stripe-go's Error method prints.
func describe(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		return fmt.Errorf("stripe answered %d: %s", se.HTTPStatusCode, se.Msg)
	}
	return err
}
