package stripeq

import (
	"context"
	"fmt"
	"os"
	"sync"

	taskoutcome "github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// Outcome is what one execution did: the records it wrote or left alone,
// each notification sent or skipped and why, whether Stripe's copy was
// fetched, and an optional one-line summary. The worker keeps it as the
// task's result when the handler succeeds, in the same Redis round trip as
// the attempt's history: the Console lists its one-line form and shows
// all of it. See [Meta.SetOutcome], [Meta.RecordChanged] and
// [Meta.Notified].
type Outcome = taskoutcome.Outcome

// Notice is one notification an execution sent or skipped, for
// [Meta.Notified]. Its Status is one of taskoutcome.NoticeQueued,
// NoticeEmailed or NoticeSkipped.
type Notice = taskoutcome.Notice

// RecordChange is one record an execution wrote or left alone.
type RecordChange = taskoutcome.RecordChange

// The statuses of a [Notice].
const (
	NoticeQueued  = taskoutcome.NoticeQueued
	NoticeEmailed = taskoutcome.NoticeEmailed
	NoticeSkipped = taskoutcome.NoticeSkipped
)

// outcome collects an execution's Outcome while its handler runs. The
// Meta of the execution, and every copy of it, share one.
type outcome struct {
	mu sync.Mutex
	o  Outcome
}

type outcomeKey struct{}

// withOutcome returns ctx carrying a new outcome, for the handler below.
func withOutcome(ctx context.Context) (context.Context, *outcome) {
	o := &outcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

// outcomeOf returns the outcome ctx carries, or a new one that nothing
// will store (outside the server, as in Worker.ProcessTask).
func outcomeOf(ctx context.Context) *outcome {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		return o
	}
	return &outcome{}
}

func (o *outcome) update(f func(*Outcome)) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f(&o.o)
}

// get returns a copy of what was collected.
func (o *outcome) get() Outcome {
	if o == nil {
		return Outcome{}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.o
	c.Records = append([]RecordChange(nil), c.Records...)
	c.Notices = append([]Notice(nil), c.Notices...)
	c.Unknown = append([]taskoutcome.Unknown(nil), c.Unknown...)
	return c
}

// SetOutcome sets the one-line summary of this execution's [Outcome],
// such as "granted to cus_1"; "" lets the Console build one from the
// records and notices noted. A later call replaces it. The outcome is
// written when the handler returns nil, with the attempt's history, in
// one Redis round trip; a failed attempt's outcome is kept with its
// error in the attempt history only. It returns nil (its error is kept
// for callers written when it wrote at once).
func (m Meta) SetOutcome(summary string) error {
	m.outcome.update(func(o *Outcome) { o.Summary = summary })
	return nil
}

// RecordChanged notes in this execution's [Outcome] that the record at key
// was written (changed) or left alone, and why (e.g. "older than the
// record").
func (m Meta) RecordChanged(key string, changed bool, why string) {
	m.outcome.update(func(o *Outcome) {
		o.Records = append(o.Records, RecordChange{Key: key, Changed: changed, Why: why})
	})
}

// Notified notes in this execution's [Outcome] a notification sent or
// skipped, with its reason.
func (m Meta) Notified(n Notice) {
	m.outcome.update(func(o *Outcome) { o.Notices = append(o.Notices, n) })
}

// Unknown notes in this execution's [Outcome] a value the handler needed
// that the event does not carry at its API version (field, e.g.
// "current_period_end"), and why, with what the handler did instead. The
// Console shows it; a handler that notes one writes no zero or empty
// value that would look real.
func (m Meta) Unknown(field, reason string) {
	m.outcome.update(func(o *Outcome) {
		o.Unknown = append(o.Unknown, taskoutcome.Unknown{Field: field, Reason: reason})
	})
}

// Outcome returns what this execution noted so far.
func (m Meta) Outcome() Outcome { return m.outcome.get() }

// workerName is this process in the attempt history: "hostname:pid".
var workerName = func() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s:%d", h, os.Getpid())
}()
