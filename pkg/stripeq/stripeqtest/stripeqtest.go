// Package stripeqtest is the test kit of pkg/stripeq, as River's
// rivertest is River's: it runs your handlers on a Stripe event in one
// call and returns what the worker would make of it (the outcome they
// noted, their error, and whether the task completes, is retried, waits
// or is archived), without an asynq task, a server or a global
// concurrency slot. Events come from the stored fixtures (Fixture,
// FixtureAt: one customer's story, at three API versions) or are your own
// JSON.
//
//	w, _ := stripeq.NewWorker(cfg)
//	stripeq.Handle(w, "invoice.payment_failed", dunning, stripeq.Name("dunning"))
//	res, err := stripeqtest.Run(ctx, w, stripeqtest.Fixture("invoice.payment_failed"))
//	// res.Next == stripeqtest.Complete, res.Outcome.Line() == "dunning email queued"
//
// It is a supported public API, covered by the module's compatibility
// promise.
package stripeqtest

import (
	"context"
	"fmt"
	"time"

	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripeq/internal/kit"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// Next is what the worker does with an event's task after an attempt.
type Next int

// The values of Next.
const (
	// Complete: the handlers succeeded; the task completes with their
	// outcome as its result.
	Complete Next = Next(kit.Complete)
	// Retry: retried with backoff after After, using up one of its
	// retries; archived, and alerted, after the last.
	Retry Next = Next(kit.Retry)
	// Wait: retried after After without using up a retry (a rate limit,
	// a side effect another execution is doing).
	Wait Next = Next(kit.Wait)
	// Archive: archived at once, and alerted; an operator re-runs it from
	// the Console once the cause is fixed.
	Archive Next = Next(kit.Archive)
)

func (n Next) String() string {
	switch n {
	case Complete:
		return "complete"
	case Retry:
		return "retry"
	case Wait:
		return "wait"
	case Archive:
		return "archive"
	}
	return fmt.Sprintf("Next(%d)", int(n))
}

// Result is what one attempt at an event did.
type Result struct {
	// Outcome is what the handlers noted ([stripeq.Meta.SetOutcome],
	// RecordChanged, Notified, Unknown), as the Console would show it;
	// with several handlers for the type, Outcome.Handlers holds each
	// one's part.
	Outcome stripeq.Outcome
	// Err is the handlers' error as the worker sees it; nil when they
	// succeeded.
	Err error
	// Next is what the worker does with the task next.
	Next Next
	// After is how long the worker waits before the next attempt, for
	// Retry (the first retry's delay, jittered) and Wait.
	After time.Duration
}

// Run runs the handlers w has for the type of event, a Stripe event's
// JSON, on it: as the worker runs the first attempt of a delivery the api
// stored, reading Stripe's copy when w has a StripeSecretKey, but outside
// any server, without a global concurrency slot, retries or alerts. An
// event type without a handler completes with the outcome "no handler for
// <type>". It returns an error, and no Result, for JSON that is not a
// Stripe event.
func Run(ctx context.Context, w *stripeq.Worker, event []byte) (Result, error) {
	t, _, err := stripetask.New(event, stripetask.Options{})
	if err != nil {
		return Result{}, fmt.Errorf("stripeqtest: %w", err)
	}
	r := kit.Run(ctx, w, t)
	return Result{Outcome: r.Outcome, Err: r.Err, Next: Next(r.Next), After: r.After}, nil
}

// Handle runs h alone on event, as Run does, registered with opts for the
// event's type on a worker of its own with the default Config (its Redis,
// 127.0.0.1:6379, is reached only by a handler that uses it). For a
// handler that needs your worker (Worker.Redis, Worker.Stripe), register
// it on your worker and call Run. It panics, as stripeq.Handle does, when
// h is nil or an option is invalid (a bad Name): bugs in the test.
func Handle[O any](ctx context.Context, h stripeq.HandlerFunc[O], event []byte, opts ...stripeq.HandleOption) (Result, error) {
	m, err := stripetask.Decode(event)
	if err != nil {
		return Result{}, fmt.Errorf("stripeqtest: %w", err)
	}
	w, err := stripeq.NewWorker(stripeq.Config{GlobalConcurrency: stripeq.NoLimit})
	if err != nil {
		return Result{}, err
	}
	defer w.Redis().Close()
	stripeq.Handle(w, m.Type, h, opts...)
	return Run(ctx, w, event)
}

// Fixture returns the stored event of eventType, at API version
// 2023-10-16 (stripe-go v76's), from one customer's story: every type the
// built-in handlers handle has one. It panics when there is none.
func Fixture(eventType string) []byte { return stripetest.Fixture(eventType) }

// FixtureAt returns the stored event of eventType rendered at API version
// version: "2023-10-16", "2025-03-31.basil" or "2026-08-26.dahlia". It
// panics when there is none.
func FixtureAt(version, eventType string) []byte { return stripetest.FixtureAt(version, eventType) }
