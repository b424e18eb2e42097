// Package outcome is what one execution of a Stripe event's task did, as
// the worker keeps it in Redis (the task's result, JSON) and the Console
// and the attempt history read it. Its JSON field names are permanent once
// deployed: results already in Redis carry them. Internal to this module:
// no compatibility promise for its Go API (pkg/stripeq re-exports the
// types a handler uses).
package outcome

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Outcome is what one execution did, as the worker keeps it: the task's
// result (asynq's ResultWriter, field "result" of the task hash), as
// JSON, kept with the task for its retention. The Console lists its
// [Outcome.Line] and shows all of it; asynqmon shows the JSON. Field
// names are permanent once deployed.
type Outcome struct {
	// Summary is the handler's own one-line summary; "" lets Line build
	// one from the rest.
	Summary string `json:"summary,omitempty"`
	// Fetched is true when the handler read Stripe's copy of the event
	// (STRIPE_SECRET_KEY) instead of the payload the api stored.
	Fetched bool `json:"fetched,omitempty"`
	// Records are the records the handler wrote, or left alone.
	Records []RecordChange `json:"records,omitempty"`
	// Notices are the notifications the handler sent, or skipped.
	Notices []Notice `json:"notices,omitempty"`
	// Unknown are the values the handler needed that the event did not
	// carry at its API version, each with what the handler did instead.
	Unknown []Unknown `json:"unknown,omitempty"`
	// Handlers are, for an event type with more than one handler, each
	// one's part, in the order they run; nil with one handler. The fields
	// above then hold all of theirs together (Records, Notices and Unknown
	// in handler order, Summary each handler's Line, "name: line", joined
	// by "; "), as an execution of one handler holds its own.
	Handlers []Handler `json:"handlers,omitempty"`
}

// The statuses of a [Handler].
const (
	// HandlerDone: the handler succeeded in this attempt.
	HandlerDone = "done"
	// HandlerDoneBefore: it succeeded in an earlier attempt of the same
	// execution, and was not run again.
	HandlerDoneBefore = "done_before"
	// HandlerFailed: it returned an error (see Permanent).
	HandlerFailed = "failed"
	// HandlerWaiting: it asked to be run again later without using up a
	// retry (a rate limit, or Once's claim held by another execution).
	HandlerWaiting = "waiting"
)

// Handler is one handler's part of an execution of an event type that has
// several: its name, what became of it, and the outcome it noted.
type Handler struct {
	// Name is the handler's name (stripeq.Name), unique for its type.
	Name string `json:"name"`
	// Status is HandlerDone, HandlerDoneBefore, HandlerFailed or
	// HandlerWaiting.
	Status string `json:"status"`
	// Error is the handler's error, without asynq's "skip retry for the
	// task: ".
	Error string `json:"error,omitempty"`
	// Permanent is true when Error is permanent: no retry runs the handler
	// again.
	Permanent bool `json:"permanent,omitempty"`
	// MS is how long the handler ran, in milliseconds.
	MS int64 `json:"ms,omitempty"`
	// Summary, Records, Notices and Unknown are what the handler noted, as
	// in Outcome.
	Summary string         `json:"summary,omitempty"`
	Records []RecordChange `json:"records,omitempty"`
	Notices []Notice       `json:"notices,omitempty"`
	Unknown []Unknown      `json:"unknown,omitempty"`
}

// Outcome returns what h noted, as an Outcome of its own.
func (h Handler) Outcome() Outcome {
	return Outcome{Summary: h.Summary, Records: h.Records, Notices: h.Notices, Unknown: h.Unknown}
}

// Noted reports whether o notes anything.
func (o Outcome) Noted() bool {
	return o.Summary != "" || o.Fetched || len(o.Records) > 0 || len(o.Notices) > 0 || len(o.Unknown) > 0 || len(o.Handlers) > 0
}

// Clone returns a copy of o that shares no slice with it.
func (o Outcome) Clone() Outcome {
	o.Records = slices.Clone(o.Records)
	o.Notices = slices.Clone(o.Notices)
	o.Unknown = slices.Clone(o.Unknown)
	o.Handlers = slices.Clone(o.Handlers)
	return o
}

// Unknown is one value an execution needed that its event did not carry
// at its API version, such as a subscription's current_period_end or the
// invoice of a failed payment since 2025-03-31.basil.
type Unknown struct {
	// Field names the value, e.g. "current_period_end".
	Field string `json:"field"`
	// Reason says why it is unknown and what the handler did instead
	// (left the record's field unset, sent no notice).
	Reason string `json:"reason"`
}

// RecordChange is one record an execution wrote, or left alone.
type RecordChange struct {
	// Key is the record's Redis key, e.g. "stripeq:customer:{cus_1}".
	Key string `json:"key"`
	// Changed is false when the record was left alone, e.g. because it
	// already holds a newer event.
	Changed bool `json:"changed"`
	// Why says why a record was left alone.
	Why string `json:"why,omitempty"`
}

// The statuses of a [Notice].
const (
	// NoticeQueued: appended to the notifications stream, not emailed (no
	// SMTP_URL, or no address).
	NoticeQueued = "queued"
	// NoticeEmailed: emailed, by this execution or an earlier one.
	NoticeEmailed = "emailed"
	// NoticeSkipped: not sent; Reason says why.
	NoticeSkipped = "skipped"
)

// Notice is one notification an execution sent, or skipped.
type Notice struct {
	Kind     string `json:"kind"` // e.g. "payment_failed"
	Customer string `json:"customer,omitempty"`
	Email    string `json:"email,omitempty"`
	// Status is NoticeQueued, NoticeEmailed or NoticeSkipped.
	Status string `json:"status"`
	// Reason says why it was skipped, or not emailed.
	Reason string `json:"reason,omitempty"`
}

// Line is the outcome in one line, as the Console's list shows it: the
// handler's Summary, else the notices, then how many records changed. A
// notice emailed by an earlier execution (Status NoticeEmailed with a
// Reason) reads "not sent again", never as sent by this one.
func (o Outcome) Line() string {
	if o.Summary != "" {
		return o.Summary
	}
	var parts []string
	for _, n := range o.Notices {
		s := n.Kind + " " + n.Status
		switch {
		case n.Status == NoticeEmailed && n.Reason != "":
			// Emailed before (by an earlier execution): this one sent nothing.
			s = n.Kind + " not sent again (already emailed " + n.Reason + ")"
		case n.Status == NoticeEmailed && n.Email != "":
			s += " to " + n.Email
		case n.Reason != "":
			s += ": " + n.Reason
		}
		parts = append(parts, s)
	}
	for _, u := range o.Unknown {
		parts = append(parts, u.Field+" unknown")
	}
	changed, kept := 0, 0
	why := ""
	for _, r := range o.Records {
		if r.Changed {
			changed++
		} else {
			kept++
			why = r.Why
		}
	}
	switch {
	case changed == 1:
		parts = append(parts, "1 record updated")
	case changed > 1:
		parts = append(parts, fmt.Sprintf("%d records updated", changed))
	}
	if kept > 0 && changed == 0 {
		s := "records unchanged"
		if why != "" {
			s += ": " + why
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		if o.Fetched {
			return "read Stripe's copy; nothing else noted"
		}
		return "nothing noted"
	}
	return strings.Join(parts, "; ")
}

// Parse reads a task's result: an Outcome as the worker writes it,
// or, for a result written otherwise (a handler's own ResultWriter, an
// older worker's text), that text as the Summary. An empty result is the
// zero Outcome and ok false.
func Parse(result []byte) (o Outcome, ok bool) {
	if len(result) == 0 {
		return Outcome{}, false
	}
	if result[0] == '{' && json.Unmarshal(result, &o) == nil {
		return o, true
	}
	return Outcome{Summary: string(result)}, true
}
