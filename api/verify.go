package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// errFutureTimestamp rejects a signature dated further ahead than the
// tolerance. Stripe's libraries accept any future timestamp; a delivery
// dated in the future is a clock fault or a replay being prepared.
var errFutureTimestamp = errors.New("timestamp is too far in the future")

// errNoSecret refuses every delivery to a verifier that was given no
// secret: with nothing to check against, the check fails closed.
var errNoSecret = errors.New("no signing secret is configured")

// verifier checks the Stripe-Signature header of a delivery: an HMAC-SHA256
// over "t.body" by one of the secrets, with t within the tolerance.
// It checks only the signature; the body's shape is checked by
// stripetask.Decode, and the full stripe-go decode happens in the worker.
type verifier struct {
	secrets   []string
	tolerance time.Duration
	now       func() time.Time
}

// verify returns nil when header carries a valid signature of body by any
// secret, or one of webhook.ErrNotSigned, ErrInvalidHeader, ErrTooOld,
// ErrNoValidSignature, errFutureTimestamp, or errNoSecret when it holds no
// secret at all.
func (v verifier) verify(body []byte, header string) error {
	if len(v.secrets) == 0 {
		return errNoSecret
	}
	var err error
	for _, s := range v.secrets {
		if err = webhook.ValidatePayloadWithTolerance(body, header, s, v.tolerance); err == nil {
			break
		}
		if !errors.Is(err, webhook.ErrNoValidSignature) {
			return err // not about the secret: the same for every one
		}
	}
	if err != nil {
		return err
	}
	if ts, ok := timestamp(header); ok && ts.Sub(v.now()) > v.tolerance {
		return errFutureTimestamp
	}
	return nil
}

// timestamp returns the t= value of a Stripe-Signature header: the last
// one, as stripe-go reads it, so that the time checked here is the time
// that was signed.
func timestamp(header string) (time.Time, bool) {
	var ts time.Time
	found := false
	for pair := range strings.SplitSeq(header, ",") {
		if v, ok := strings.CutPrefix(pair, "t="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			ts, found = time.Unix(n, 0), err == nil
		}
	}
	return ts, found
}
