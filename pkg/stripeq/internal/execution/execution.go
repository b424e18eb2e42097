// Package execution is the state one execution of a task shares between
// pkg/stripeq's handlers and the middleware that records its attempt
// (pkg/stripeq/internal/attempts), through the context: the outcome the
// handlers note, each handler's part when an event type has several, and
// which of them have succeeded. Part of pkg/stripeq's engine: internal, no
// compatibility promise.
package execution

import (
	"context"
	"slices"
	"sync"

	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// Notes collects one outcome while a handler runs. Its methods are safe
// for concurrent use, and do nothing on a nil Notes.
type Notes struct {
	mu sync.Mutex
	o  outcome.Outcome
}

// Update changes the outcome with f.
func (n *Notes) Update(f func(*outcome.Outcome)) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.o)
}

// Get returns a copy of what was noted.
func (n *Notes) Get() outcome.Outcome {
	if n == nil {
		return outcome.Outcome{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.o.Clone()
}

// Execution is the state of one attempt of a task: its outcome, and with
// several handlers each one's part.
type Execution struct {
	Notes

	mu       sync.Mutex
	handlers []outcome.Handler
}

type key struct{}

// With returns ctx carrying a new Execution, for the handler below.
func With(ctx context.Context) (context.Context, *Execution) {
	e := &Execution{}
	return context.WithValue(ctx, key{}, e), e
}

// From returns the Execution ctx carries, or a new one that nothing will
// store (outside the server, as in Worker.ProcessTask).
func From(ctx context.Context) *Execution {
	if e, ok := ctx.Value(key{}).(*Execution); ok {
		return e
	}
	return &Execution{}
}

// SetHandlers records each handler's part of this attempt, in order: the
// parts of those that succeeded in an earlier attempt have the status
// outcome.HandlerDoneBefore.
func (e *Execution) SetHandlers(parts []outcome.Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers = parts
}

// Handlers returns each handler's part of this attempt; nil for an event
// type with one handler.
func (e *Execution) Handlers() []outcome.Handler {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.handlers)
}

// Progress returns the parts of the handlers that succeeded in this
// execution, this attempt or an earlier one, each with the status
// outcome.HandlerDone, and whether this attempt added any to what an
// earlier one recorded (so that it must be recorded again), and whether
// an earlier one recorded any.
func (e *Execution) Progress() (done []outcome.Handler, changed, before bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.handlers {
		switch h.Status {
		case outcome.HandlerDone:
			changed = true
		case outcome.HandlerDoneBefore:
			before = true
			h.Status = outcome.HandlerDone
		default:
			continue
		}
		done = append(done, h)
	}
	return done, changed, before
}
