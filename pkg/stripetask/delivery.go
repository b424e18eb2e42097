package stripetask

import (
	"maps"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// A delivery is one Stripe event forwarded to one destination (an HTTP
// endpoint of the operator's own app): an asynq task of its own, in the
// destination's own queue, so that a slow or failing destination delays
// nothing else. The worker enqueues one per (event execution, destination)
// when it takes the event's task, and processes each destination's queue
// with a server of its own.

// DeliveryTypePrefix starts the asynq task type of a delivery: "deliver:"
// + the event type, for example "deliver:invoice.paid".
const DeliveryTypePrefix = "deliver:"

// DeliveryQueuePrefix starts a destination's queue: "dest-" + the
// destination's name, for example "dest-billing".
const DeliveryQueuePrefix = "dest-"

// HeaderDestination names a delivery's destination. A delivery also
// carries its event's headers ([Metadata.Headers]) and [HeaderEventID].
const HeaderDestination = "destination"

// HeaderEventID is the Stripe event ID of a delivery: its webhook-id.
const HeaderEventID = "eventId"

// deliveryMark separates an event task's ID from a destination's name in
// a delivery's task ID: "<event task ID>:dest:<name>".
const deliveryMark = ":dest:"

// MaxDestinationName is the longest destination name, in bytes.
const MaxDestinationName = 40

// ValidDestinationName reports whether name can name a destination: 1 to
// MaxDestinationName lowercase ASCII letters, digits, "_" and "-". A name
// is part of a queue name and a task ID, so it is permanent once deployed.
func ValidDestinationName(name string) bool {
	if name == "" || len(name) > MaxDestinationName {
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

// DeliveryQueue returns the queue of destination name's deliveries.
func DeliveryQueue(name string) string { return DeliveryQueuePrefix + name }

// DeliveryID returns the task ID of the delivery of the event task
// eventTaskID (an event ID, or a re-run copy's "<id>:rerun:<n>") to
// destination name: "<eventTaskID>:dest:<name>". Its stability makes
// asynq refuse a second delivery task for the same execution.
func DeliveryID(eventTaskID, name string) string { return eventTaskID + deliveryMark + name }

// IsDelivery reports whether taskType is a delivery's task type.
func IsDelivery(taskType string) bool { return strings.HasPrefix(taskType, DeliveryTypePrefix) }

// NewDelivery builds the delivery of the event task t (as stored by the
// api: its payload, compressed or not, and headers) to destination name.
// taskID is t's ID. The delivery keeps t's payload as it is; [Body] gives
// the event JSON back byte for byte. It gets [MaxRetry] retries and
// retention.
func NewDelivery(t *asynq.Task, taskID, name string, retention time.Duration) *asynq.Task {
	if retention <= 0 {
		retention = DefaultRetention
	}
	eventType, _ := EventType(t.Type())
	h := maps.Clone(t.Headers())
	if h == nil {
		h = map[string]string{}
	}
	delete(h, HeaderRerunOf)
	if h[HeaderType] == "" {
		h[HeaderType] = eventType
	}
	h[HeaderDestination] = name
	h[HeaderEventID] = EventID(taskID)
	return asynq.NewTaskWithHeaders(DeliveryTypePrefix+eventType, t.Payload(), h,
		asynq.TaskID(DeliveryID(taskID, name)),
		asynq.Queue(DeliveryQueue(name)),
		asynq.MaxRetry(MaxRetry),
		asynq.Retention(retention),
	)
}

// AttemptsKey is the Redis list of a delivery's attempts, oldest first,
// each one [Attempt] as JSON. The worker expires it with the delivery's
// retention.
func AttemptsKey(deliveryTaskID string) string { return keyspace.DeliveryAttempts(deliveryTaskID) }

// MaxAttemptResponse is how much of a destination's response body an
// [Attempt] keeps, in bytes.
const MaxAttemptResponse = 1024

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
// [DeliveryID], or a re-run copy of one) names, and false when taskID is
// not a delivery's.
func DestinationOf(taskID string) (string, bool) {
	i := strings.LastIndex(taskID, deliveryMark)
	if i < 0 {
		return "", false
	}
	name, _, _ := strings.Cut(taskID[i+len(deliveryMark):], ":")
	return name, ValidDestinationName(name)
}

// DeliveryRerunsKey counts the re-run copies of a delivery made from the
// Console: the n-th is [RerunID](deliveryTaskID, n).
func DeliveryRerunsKey(deliveryTaskID string) string {
	return keyspace.DeliveryReruns(deliveryTaskID)
}

// OrderKey is the sorted set of the deliveries to destination name that
// wait on each other for customer, with DESTINATION_ORDER=customer:
// delivery task IDs scored by their event's creation time. A delivery
// is POSTed only while it is first; it leaves the set when delivered or
// archived.
func OrderKey(name, customer string) string { return keyspace.DeliveryOrder(name, customer) }
