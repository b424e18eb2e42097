// Package delivery is the task of a delivery: one Stripe event forwarded
// to one destination (an HTTP endpoint of the operator's own app), an
// asynq task of its own, in the destination's own queue, so that a slow or
// failing destination delays nothing else. The worker enqueues one per
// (event execution, destination) when it takes the event's task, and
// processes each destination's queue with a server of its own; the Console
// lists them and their attempts. Its type and queue prefixes, header names
// and ID scheme are permanent once deployed. Internal to this module: no
// compatibility promise for its Go API.
package delivery

import (
	"maps"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// TypePrefix starts the asynq task type of a delivery: "deliver:"
// + the event type, for example "deliver:invoice.paid".
const TypePrefix = "deliver:"

// QueuePrefix starts a destination's queue: "dest-" + the
// destination's name, for example "dest-billing".
const QueuePrefix = "dest-"

// HeaderDestination names a delivery's destination. A delivery also
// carries its event's headers ([stripetask.Metadata.Headers]) and [HeaderEventID].
const HeaderDestination = "destination"

// HeaderEventID is the Stripe event ID of a delivery: its webhook-id.
const HeaderEventID = "eventId"

// deliveryMark separates an event task's ID from a destination's name in
// a delivery's task ID: "<event task ID>:dest:<name>".
const deliveryMark = ":dest:"

// MaxName is the longest destination name, in bytes.
const MaxName = 40

// ValidName reports whether name can name a destination: 1 to
// MaxName lowercase ASCII letters, digits, "_" and "-". A name
// is part of a queue name and a task ID, so it is permanent once deployed.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxName {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// Queue returns the queue of destination name's deliveries.
func Queue(name string) string { return QueuePrefix + name }

// ID returns the task ID of the delivery of the event task
// eventTaskID (an event ID, or a re-run copy's "<id>:rerun:<n>") to
// destination name: "<eventTaskID>:dest:<name>". Its stability makes
// asynq refuse a second delivery task for the same execution.
func ID(eventTaskID, name string) string { return eventTaskID + deliveryMark + name }

// Is reports whether taskType is a delivery's task type.
func Is(taskType string) bool { return strings.HasPrefix(taskType, TypePrefix) }

// New builds the delivery of the event task t (as stored by the
// api: its payload, compressed or not, and headers) to destination name.
// taskID is t's ID. The delivery keeps t's payload as it is; [stripetask.Body] gives
// the event JSON back byte for byte. It gets [stripetask.MaxRetry] retries and
// retention.
func New(t *asynq.Task, taskID, name string, retention time.Duration) *asynq.Task {
	m := Message(t, taskID, name, retention)
	return asynq.NewTaskWithHeaders(m.Type, m.Payload, m.Headers,
		asynq.TaskID(m.ID),
		asynq.Queue(m.Queue),
		asynq.MaxRetry(m.MaxRetry),
		asynq.Retention(m.Retention),
	)
}

// Message is the task New builds, as pkg/taskstore writes it: for a
// delivery the worker made at once, in the event's own task, and stores
// as completed (asynq's layout, with the Timeout asynq's Client gives it).
// A retention of zero or less is [stripetask.DefaultRetention].
func Message(t *asynq.Task, taskID, name string, retention time.Duration) taskstore.Task {
	if retention <= 0 {
		retention = stripetask.DefaultRetention
	}
	eventType, _ := stripetask.EventType(t.Type())
	h := maps.Clone(t.Headers())
	if h == nil {
		h = map[string]string{}
	}
	delete(h, stripetask.HeaderRerunOf)
	if h[stripetask.HeaderType] == "" {
		h[stripetask.HeaderType] = eventType
	}
	h[HeaderDestination] = name
	h[HeaderEventID] = stripetask.EventID(taskID)
	return taskstore.Task{
		ID: ID(taskID, name), Type: TypePrefix + eventType, Queue: Queue(name),
		Payload: t.Payload(), Headers: h, MaxRetry: stripetask.MaxRetry, Retention: retention,
	}
}

// The HTTP request of every attempt: a POST of the event JSON with these
// headers, Standard Webhooks' three and the event's type. The
// webhook-timestamp is the attempt's start in unix seconds, and the
// signature is keyed with the destination's secret.
const (
	SentWebhookID        = "webhook-id"
	SentWebhookTimestamp = "webhook-timestamp"
	SentWebhookSignature = "webhook-signature"
	SentEventType        = "stripe-event-type"
	SentContentType      = "application/json"
	SentUserAgent        = "stripeq"
)

// MaxAttemptResponse is how much of a destination's response body an
// [Attempt] keeps, in bytes.
const MaxAttemptResponse = 1024

// AttemptField is the field of a delivery's task hash that holds its one
// attempt, as JSON ([Attempt]), when the worker made the delivery inline,
// in its event's task: such a delivery has no attempts list
// (keyspace.DeliveryAttempts).
const AttemptField = "stripeq_attempt"

// Attempt is one POST of a delivery to its destination, as the Console
// shows it.
type Attempt struct {
	// At is when the POST started; its unix seconds are the
	// webhook-timestamp.
	At time.Time `json:"at"`
	// Status is the HTTP status code; 0 when no response came.
	Status int `json:"status"`
	// LatencyMS is the time to the response's headers, or to the error.
	LatencyMS int64 `json:"latency_ms"`
	// Response is the first MaxAttemptResponse bytes of the response body,
	// as received (the Console escapes it).
	Response string `json:"response,omitempty"`
	// Error is why no response came (timeout, refused connection), or why
	// the status is not a success.
	Error string `json:"error,omitempty"`
}

// DestinationOf returns the destination a delivery's task ID (see
// [ID], or a re-run copy of one) names, and false when taskID is
// not a delivery's.
func DestinationOf(taskID string) (string, bool) {
	i := strings.LastIndex(taskID, deliveryMark)
	if i < 0 {
		return "", false
	}
	name, _, _ := strings.Cut(taskID[i+len(deliveryMark):], ":")
	return name, ValidName(name)
}

// WebhookID returns the webhook-id of the delivery whose task ID is taskID
// and headers h: the Stripe event ID, from HeaderEventID, or for a
// delivery stored without it, from the task ID. It is the same on every
// attempt and on every re-run copy of the delivery, which is what a
// destination dedupes on.
func WebhookID(taskID string, h map[string]string) string {
	if id := h[HeaderEventID]; id != "" {
		return id
	}
	id, _, _ := strings.Cut(stripetask.EventID(taskID), ":")
	return id
}
