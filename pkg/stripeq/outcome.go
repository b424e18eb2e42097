package stripeq

import (
	"github.com/stripeq/stripeq/pkg/stripeq/internal/execution"
	taskoutcome "github.com/stripeq/stripeq/pkg/stripetask/outcome"
)

// Outcome is what one execution did: the records it wrote or left alone,
// each notification sent or skipped and why, whether Stripe's copy was
// fetched, an optional one-line summary and, for an event type with
// several handlers, each handler's part (Handlers). The worker keeps it as
// the task's result when the handlers succeed, in the same Redis round trip
// as the attempt's history: the Console lists its one-line form and shows
// all of it. See [Meta.SetOutcome], [Meta.RecordChanged] and
// [Meta.Notified].
type Outcome = taskoutcome.Outcome

// Notice is one notification an execution sent or skipped, for
// [Meta.Notified]. Its Status is one of [NoticeQueued], [NoticeEmailed]
// or [NoticeSkipped].
type Notice = taskoutcome.Notice

// RecordChange is one record an execution wrote or left alone.
type RecordChange = taskoutcome.RecordChange

// HandlerOutcome is one handler's part of an execution of an event type
// that has several handlers ([Outcome].Handlers): its name, its status
// (done, done_before, failed, waiting), its error, and what it noted.
type HandlerOutcome = taskoutcome.Handler

// The statuses of a [Notice].
const (
	NoticeQueued  = taskoutcome.NoticeQueued
	NoticeEmailed = taskoutcome.NoticeEmailed
	NoticeSkipped = taskoutcome.NoticeSkipped
)

// SetOutcome sets the one-line summary of this handler's part of the
// execution's [Outcome], such as "granted to cus_1"; "" lets the Console
// build one from the records and notices noted. A later call replaces it.
// The outcome is written when the handlers return nil, with the attempt's
// history, in one Redis round trip; a failed attempt's outcome is kept
// with its error in the attempt history only.
func (m Meta) SetOutcome(summary string) {
	m.outcome.Update(func(o *Outcome) { o.Summary = summary })
}

// RecordChanged notes in this execution's [Outcome] that the record at key
// was written (changed) or left alone, and why (e.g. "older than the
// record").
func (m Meta) RecordChanged(key string, changed bool, why string) {
	m.outcome.Update(func(o *Outcome) {
		o.Records = append(o.Records, RecordChange{Key: key, Changed: changed, Why: why})
	})
}

// Notified notes in this execution's [Outcome] a notification sent or
// skipped, with its reason.
func (m Meta) Notified(n Notice) {
	m.outcome.Update(func(o *Outcome) { o.Notices = append(o.Notices, n) })
}

// Unknown notes in this execution's [Outcome] a value the handler needed
// that the event does not carry at its API version (field, e.g.
// "current_period_end"), and why, with what the handler did instead. The
// Console shows it; a handler that notes one writes no zero or empty
// value that would look real.
func (m Meta) Unknown(field, reason string) {
	m.outcome.Update(func(o *Outcome) {
		o.Unknown = append(o.Unknown, taskoutcome.Unknown{Field: field, Reason: reason})
	})
}

// Outcome returns what this handler noted so far.
func (m Meta) Outcome() Outcome { return m.outcome.Get() }

// notes is the collector a Meta notes into.
type notes = execution.Notes
