// Package stripetask is the contract between the api and the worker: the
// asynq task that carries one Stripe event, its type name, headers,
// options (queue, shards, retention, compression) and ID scheme, and
// [New] and [Parse]. What else concerns tasks lives beside it:
// pkg/stripetask/outcome (an execution's result), pkg/stripetask/delivery
// (a delivery to a destination), pkg/stripetask/rerun (the Console's
// re-run copies), pkg/stripetask/compress (PAYLOAD_COMPRESSION) and
// pkg/stripetask/taskenv (the api's storage settings); the built-in event
// types are pkg/stripeq/builtin/events. Internal to this module: no
// compatibility promise for its Go API.
//
// Every name in this package is permanent once deployed. Tasks already in
// Redis carry these type names and header keys, so renaming one strands
// them; a rename is a two-release change (handle both names, then drop the
// old one).
//
// A task is built by [New] from the raw, verified event body and read back
// by [Body] (the event JSON) or [Parse] (a full stripe.Event; the worker
// instead decodes, per handler, only the fields it reads). The payload is the event JSON exactly as Stripe sent it
// (optionally compressed, see [Options.Compression] and [Body]); the
// event's metadata travels as asynq task headers so that it can be listed
// and filtered without decoding payloads.
package stripetask

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/hibiken/asynq"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
)

// TypePrefix starts the asynq task type of every Stripe event:
// "stripe:" + the event type, for example "stripe:invoice.payment_failed".
const TypePrefix = "stripe:"

// DefaultQueue is the asynq queue events go to unless configured otherwise.
const DefaultQueue = "stripe"

// MaxRetry is the number of retries a task gets before it is archived.
const MaxRetry = 7

// DefaultRetention is how long a finished task is kept in Redis: 72 hours,
// Stripe's three days of redelivery. While it is kept, its ID (the event
// ID) makes asynq refuse a second task for the event; after that the api's
// duplicate marker (pkg/dedupe, DEDUPE_WINDOW) still catches a redelivery.
const DefaultRetention = 72 * time.Hour

// Header keys of a Stripe task. Values are always strings.
const (
	HeaderType       = "type"       // event type, e.g. "customer.created"
	HeaderLivemode   = "livemode"   // "true" or "false"
	HeaderAPIVersion = "apiVersion" // e.g. "2023-10-16"; empty when absent
	HeaderAccount    = "account"    // Connect account ID, only when present
	HeaderCustomer   = "customer"   // customer ID of data.object, only when present
	HeaderObjectID   = "objectId"   // data.object.id, only when present
	HeaderCreated    = "created"    // event creation time, unix seconds
	// HeaderRefs lists, comma-separated, the objects data.object names
	// (its invoice, charge, payment intent, subscription) and the
	// customer's email, lower-cased, as [Metadata.Refs]; only when any.
	HeaderRefs = "refs"
	// HeaderRerunOf is set only on a copy of a completed execution that an
	// operator re-ran from the dashboard: the task ID of the original.
	HeaderRerunOf = "rerunOf"
	// HeaderSource is set only on an event that did not come as a webhook
	// delivery: [SourceRecovery] for one a recovery listed from Stripe's
	// Events API (pkg/recovery).
	HeaderSource = "source"
	// HeaderRecoveryID is set with [HeaderSource] on an event a recovery
	// of the dashboard stored: the recovery's ID ("rec_…"), whose record
	// the Console links to. Absent when the recovery kept no record.
	HeaderRecoveryID = "recoveryId"
)

// SourceRecovery is the [HeaderSource] value of an event stored by a
// recovery rather than by a webhook delivery.
const SourceRecovery = "recovery"

// Errors returned by [Decode], [New] and [Parse]. Each reads well with the
// package name: stripetask.ErrNotEvent.
var (
	// ErrNotEvent means the body is JSON but not a Stripe event: it lacks an
	// "evt_" ID, a type, a creation time or a data.object.
	ErrNotEvent = errors.New("not a Stripe event")
	// ErrMalformed means the body is not valid JSON.
	ErrMalformed = errors.New("malformed event JSON")
	// ErrNotStripeTask means a task's type does not start with TypePrefix.
	ErrNotStripeTask = errors.New("not a stripe task")
)

// Metadata is what the headers of a task say about its event.
type Metadata struct {
	ID         string // event ID, also the task ID
	Type       string // event type
	Livemode   bool
	APIVersion string
	Account    string // Connect account, "" when absent
	Customer   string // customer of data.object, "" when absent
	ObjectID   string // data.object.id, "" when absent
	Created    int64  // unix seconds
	Source     string // HeaderSource: "" for a webhook delivery, else e.g. SourceRecovery
	RecoveryID string // HeaderRecoveryID: the recovery that stored the event, "" when none
	// Refs are what else the event is about, for search: the IDs of the
	// invoice, charge, payment intent, subscription (an invoice's own, or
	// since 2025-03-31.basil its parent's) and checkout session
	// data.object names (in_…, ch_…, pi_…, sub_…, cs_…), and the
	// customer's email (lower-cased) when the object carries it. It
	// holds neither ObjectID nor Customer, which have their own headers.
	Refs []string
}

// TaskType returns the asynq task type for a Stripe event type.
func TaskType(eventType string) string { return TypePrefix + eventType }

// EventType returns the Stripe event type of an asynq task type, and false
// when taskType is not a Stripe task type.
func EventType(taskType string) (string, bool) {
	t, ok := strings.CutPrefix(taskType, TypePrefix)
	return t, ok && t != ""
}

// envelope holds the few fields of an event that the receiver needs. Decoding
// only these skips the cost of building a full stripe.Event on the request
// path; the worker decodes what each handler reads.
type envelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Account    string `json:"account"`
	Created    int64  `json:"created"`
	Data       *struct {
		Object *struct {
			ID       string         `json:"id"`
			Object   string         `json:"object"`
			Customer jsontext.Value `json:"customer"`
			// What Refs reads. Each is a raw value, read leniently: an
			// unexpected shape is left out of Refs, never refused.
			Invoice       jsontext.Value `json:"invoice"`
			Charge        jsontext.Value `json:"charge"`
			PaymentIntent jsontext.Value `json:"payment_intent"`
			LatestCharge  jsontext.Value `json:"latest_charge"`
			Subscription  jsontext.Value `json:"subscription"`
			// Since 2025-03-31.basil an invoice's subscription is
			// parent.subscription_details.subscription.
			Parent          jsontext.Value `json:"parent"`
			CheckoutSession jsontext.Value `json:"checkout_session"`
			Email           jsontext.Value `json:"email"`
			CustomerEmail   jsontext.Value `json:"customer_email"`
			ReceiptEmail    jsontext.Value `json:"receipt_email"`
			CustomerDetails jsontext.Value `json:"customer_details"`
			BillingDetails  jsontext.Value `json:"billing_details"`
		} `json:"object"`
	} `json:"data"`
}

// jsonOptions are how every reader of an event decodes its JSON, the api
// and the worker alike ([Unmarshal]): object member names match exactly,
// as Stripe writes them (encoding/json would also match "ID" or "cuſtomer"
// to "id" or "customer"), and a duplicate member name or invalid UTF-8 is
// an error. So no body can mean one thing to the api's headers and the
// Console and another to the worker's handlers.
var jsonOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Unmarshal decodes data, an event's JSON or a part of it, into v as both
// the api and the worker must: names match exactly and case-sensitively,
// and a duplicate name or invalid UTF-8 is an error. v's fields use
// encoding/json's struct tags; a type's UnmarshalJSON method is called as
// encoding/json would call it. An error for a value of the wrong type is
// a *jsonv2.SemanticError (github.com/go-json-experiment/json) naming it
// by its JSON pointer; any other is a syntax error.
func Unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v, jsonOptions) }

// Decode reads the metadata of a raw event body. It checks the event's shape
// (an "evt_" ID, a type, a creation time and a data.object) and the
// characters of its IDs and type ([ValidID], [ValidType]), and returns
// ErrMalformed or ErrNotEvent, wrapped with the detail, when it is wrong.
// The body is decoded by [Unmarshal]: a duplicate member name anywhere in
// it is ErrMalformed.
func Decode(body []byte) (Metadata, error) {
	var e envelope
	if err := Unmarshal(body, &e); err != nil {
		var semErr *jsonv2.SemanticError
		if errors.As(err, &semErr) {
			return Metadata{}, fmt.Errorf("%w: field %q has the wrong type", ErrNotEvent, strings.TrimPrefix(string(semErr.JSONPointer), "/"))
		}
		return Metadata{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case !strings.HasPrefix(e.ID, "evt_"):
		return Metadata{}, fmt.Errorf("%w: id %q does not start with evt_", ErrNotEvent, truncate(e.ID))
	case !ValidID(e.ID):
		return Metadata{}, fmt.Errorf("%w: id %q is not a Stripe ID (letters, digits and _, at most %d)", ErrNotEvent, truncate(e.ID), MaxIDLength)
	case e.Object != "" && e.Object != "event":
		return Metadata{}, fmt.Errorf("%w: object is %q", ErrNotEvent, truncate(e.Object))
	case e.Type == "":
		return Metadata{}, fmt.Errorf("%w: no type", ErrNotEvent)
	case !ValidType(e.Type):
		return Metadata{}, fmt.Errorf("%w: type %q is not a Stripe event type (letters, digits and _ in parts joined by ., at most %d)", ErrNotEvent, truncate(e.Type), MaxIDLength)
	case e.Created <= 0:
		return Metadata{}, fmt.Errorf("%w: no created time", ErrNotEvent)
	case e.Data == nil || e.Data.Object == nil:
		return Metadata{}, fmt.Errorf("%w: no data.object", ErrNotEvent)
	case e.Account != "" && !ValidID(e.Account):
		return Metadata{}, fmt.Errorf("%w: account %q is not a Stripe ID", ErrNotEvent, truncate(e.Account))
	case !validAPIVersion(e.APIVersion):
		return Metadata{}, fmt.Errorf("%w: api_version %q is not a Stripe API version", ErrNotEvent, truncate(e.APIVersion))
	}
	m := Metadata{
		ID:         e.ID,
		Type:       e.Type,
		Livemode:   e.Livemode,
		APIVersion: e.APIVersion,
		Account:    e.Account,
		Created:    e.Created,
		ObjectID:   e.Data.Object.ID,
		Customer:   customerID(e.Data.Object.Object, e.Data.Object.ID, e.Data.Object.Customer),
	}
	if m.Customer != "" && !ValidID(m.Customer) {
		return Metadata{}, fmt.Errorf("%w: customer %q is not a Stripe ID", ErrNotEvent, truncate(m.Customer))
	}
	o := e.Data.Object
	var r refs
	for _, v := range []jsontext.Value{o.Invoice, o.Charge, o.PaymentIntent, o.LatestCharge, o.Subscription, parentSubscription(o.Parent), o.CheckoutSession} {
		r.id(expandableID(v), m.ObjectID, m.Customer)
	}
	for _, v := range []jsontext.Value{o.Email, o.CustomerEmail, o.ReceiptEmail, emailOf(o.CustomerDetails), emailOf(o.BillingDetails)} {
		r.email(v)
	}
	m.Refs = r
	return m, nil
}

// MaxIDLength is the longest ID or event type [ValidID] and [ValidType]
// accept, in bytes.
const MaxIDLength = 255

// ValidID reports whether id is made of Stripe's ID characters: ASCII
// letters, digits and "_", 1 to MaxIDLength of them, as in "evt_1Oa2b",
// "cus_9s6XKzkNRiz8i3" or "acct_1032D82eZvKYlo2C". Event, customer and
// account IDs that are not are refused at the door, so that no ID holds a
// character that means something in a URL, a Redis key or a log line
// ("#", "?", "/", ":", a line break, NUL). A re-run copy's task ID
// ("<id>:rerun:<n>") is not an event ID and is never checked with it.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLength {
		return false
	}
	for i := range len(id) {
		if !idByte(id[i]) {
			return false
		}
	}
	return true
}

// ValidType reports whether t is a Stripe event type: parts of ID
// characters ([ValidID]) joined by ".", at most MaxIDLength bytes, as in
// "customer.subscription.trial_will_end".
func ValidType(t string) bool {
	if len(t) > MaxIDLength {
		return false
	}
	for part := range strings.SplitSeq(t, ".") {
		if !ValidID(part) {
			return false
		}
	}
	return true
}

// validAPIVersion reports whether v is empty or looks like a Stripe API
// version: ID characters, "-" and ".", as in "2023-10-16" or
// "2024-09-30.acacia".
func validAPIVersion(v string) bool {
	if len(v) > MaxIDLength {
		return false
	}
	for i := range len(v) {
		if !idByte(v[i]) && v[i] != '-' && v[i] != '.' {
			return false
		}
	}
	return true
}

func idByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// customerID finds the customer an event's object belongs to: the object
// itself when it is a customer, else its "customer" field, which Stripe
// sends as an ID or, when expanded, as an object with an ID.
func customerID(object, id string, raw jsontext.Value) string {
	if object == "customer" {
		return id
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return ""
	}
	var s string
	if Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	if Unmarshal(raw, &o) == nil {
		return o.ID
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Headers returns the task headers for m. Optional headers are left out
// when empty.
func (m Metadata) Headers() map[string]string {
	h := map[string]string{
		HeaderType:       m.Type,
		HeaderLivemode:   strconv.FormatBool(m.Livemode),
		HeaderAPIVersion: m.APIVersion,
		HeaderCreated:    strconv.FormatInt(m.Created, 10),
	}
	for k, v := range map[string]string{HeaderAccount: m.Account, HeaderCustomer: m.Customer, HeaderObjectID: m.ObjectID, HeaderSource: m.Source, HeaderRecoveryID: m.RecoveryID, HeaderRefs: strings.Join(m.Refs, ",")} {
		if v != "" {
			h[k] = v
		}
	}
	return h
}

// MetadataFromHeaders is the inverse of [Metadata.Headers]. The ID comes
// from the task ID, which headers do not carry.
func MetadataFromHeaders(id string, h map[string]string) Metadata {
	created, _ := strconv.ParseInt(h[HeaderCreated], 10, 64)
	return Metadata{
		ID:         id,
		Type:       h[HeaderType],
		Livemode:   h[HeaderLivemode] == "true",
		APIVersion: h[HeaderAPIVersion],
		Account:    h[HeaderAccount],
		Customer:   h[HeaderCustomer],
		ObjectID:   h[HeaderObjectID],
		Created:    created,
		Source:     h[HeaderSource],
		RecoveryID: h[HeaderRecoveryID],
		Refs:       splitRefs(h[HeaderRefs]),
	}
}

func splitRefs(h string) []string {
	if h == "" {
		return nil
	}
	return strings.Split(h, ",")
}

// Options are the enqueue settings of a Stripe task.
type Options struct {
	// Queue is the asynq queue, or with Shards > 1 the base name of the
	// shard queues. If empty, DefaultQueue.
	Queue string
	// Shards is the number of queues events are spread over (QUEUE_SHARDS).
	// asynq keeps a queue in one Redis Cluster slot, so one queue loads one
	// master; shards spread the load. If zero or one, every event goes to
	// Queue itself; else to "<Queue>-0" … "<Queue>-<Shards-1>", chosen by
	// [QueueFor].
	Shards int
	// Retention is how long the finished task stays in Redis, visible in the
	// Console and asynqmon. If zero, DefaultRetention.
	Retention time.Duration
	// Compression is PAYLOAD_COMPRESSION: "" (the default) stores the
	// event JSON as received; compress.Zstd stores it as a zstd frame,
	// about a third of its size. Readers need no setting: [Body] and
	// [Parse] recognise a frame by its first bytes.
	Compression string
}

// ReadOptions reads the settings every command shares into Options:
// QUEUE_NAME (default [DefaultQueue]) and QUEUE_SHARDS (1 to [MaxShards],
// default 1). Only the api stores tasks, so it alone reads Retention and
// Compression, into the same Options. A bad value is recorded on env,
// naming the variable.
func ReadOptions(env *envconfig.Reader) Options {
	return Options{
		Queue:  env.String("QUEUE_NAME", DefaultQueue),
		Shards: env.IntRange("QUEUE_SHARDS", 1, 1, MaxShards),
	}
}

// New builds the task for a raw, already verified event body. The payload is
// body exactly as given (or, with o.Compression, body compressed: [Body]
// gives it back byte for byte); the task ID is the event ID, so asynq rejects a
// second task for the same event with asynq.ErrTaskIDConflict. Its queue
// is [QueueFor] the event ID. It returns the errors of [Decode].
func New(body []byte, o Options) (*asynq.Task, Metadata, error) {
	m, err := Decode(body)
	if err != nil {
		return nil, Metadata{}, err
	}
	return NewFromMetadata(body, m, o), m, nil
}

// NewFromMetadata builds the task for body when its metadata is already
// known, as when the Console re-runs an execution. Its queue is [QueueFor]
// m.ID. A body that is already compressed is kept as it is. It is
// [SpecFromMetadata] as an asynq task.
func NewFromMetadata(body []byte, m Metadata, o Options) *asynq.Task {
	t := SpecFromMetadata(body, m, o)
	return asynq.NewTaskWithHeaders(t.Type, t.Payload, t.Headers,
		asynq.TaskID(t.ID),
		asynq.Queue(t.Queue),
		asynq.MaxRetry(t.MaxRetry),
		asynq.Retention(t.Retention),
	)
}

// Spec is the task of an event as plain data: what [New] gives asynq's
// Client, for the api's store (pkg/taskstore), which writes asynq's task
// layout itself.
type Spec struct {
	ID        string // the event ID
	Type      string // [TaskType] of the event type
	Queue     string // [QueueFor] the ID
	Payload   []byte // the event JSON, compressed with Options.Compression
	Headers   map[string]string
	MaxRetry  int
	Retention time.Duration
}

// NewSpec is [New] as a Spec. It returns the errors of [Decode].
func NewSpec(body []byte, o Options) (Spec, Metadata, error) {
	m, err := Decode(body)
	if err != nil {
		return Spec{}, Metadata{}, err
	}
	return SpecFromMetadata(body, m, o), m, nil
}

// SpecFromMetadata is [NewFromMetadata] as a Spec: type [TaskType], the
// payload (compressed with o.Compression, unless it already is), the
// [Metadata.Headers], task ID m.ID, queue [QueueFor] m.ID, [MaxRetry]
// retries and o.Retention (if zero, [DefaultRetention]).
func SpecFromMetadata(body []byte, m Metadata, o Options) Spec {
	retention := o.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	if o.Compression == compress.Zstd {
		body = compress.Compress(body)
	}
	return Spec{
		ID:        m.ID,
		Type:      TaskType(m.Type),
		Queue:     QueueFor(m.ID, o),
		Payload:   body,
		Headers:   m.Headers(),
		MaxRetry:  MaxRetry,
		Retention: retention,
	}
}

// Parse turns a task back into its full stripe-go event and its metadata.
// A task that is not a Stripe task returns ErrNotStripeTask; a payload that
// does not decode into a stripe.Event returns compress.ErrCorrupt,
// ErrMalformed or ErrNotEvent. These are permanent: retrying cannot fix them.
func Parse(t *asynq.Task) (stripe.Event, Metadata, error) {
	_, body, err := Open(t)
	if err != nil {
		return stripe.Event{}, Metadata{}, err
	}
	// stripe-go's types decode with encoding/json, which matches names
	// case-insensitively; a body must first pass Unmarshal's checks, as
	// the api's and the worker's do.
	if err := Unmarshal(body, new(jsontext.Value)); err != nil {
		return stripe.Event{}, Metadata{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var e stripe.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return stripe.Event{}, Metadata{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m, err := Check(t, body, e.ID, string(e.Type), e.Data != nil && e.Data.Object != nil)
	if err != nil {
		return stripe.Event{}, Metadata{}, err
	}
	return e, m, nil
}

// Open returns the Stripe event type of a task and its event JSON
// ([Body]), for a reader that decodes the JSON its own way and then calls
// [Check]. It returns ErrNotStripeTask or compress.ErrCorrupt.
func Open(t *asynq.Task) (eventType string, body []byte, err error) {
	eventType, ok := EventType(t.Type())
	if !ok {
		return "", nil, fmt.Errorf("%w: %q", ErrNotStripeTask, t.Type())
	}
	body, err = Body(t.Payload())
	if err != nil {
		return "", nil, err
	}
	return eventType, body, nil
}

// Check checks what a reader decoded from the body of task t (see [Open]),
// with [Unmarshal]: the event's id and type, and whether it has a
// data.object. The event must have a valid ID ([ValidID]) and an object,
// and its type must be the task's. It returns the task's metadata, from
// its headers, or from body for a task written without headers, or
// ErrNotEvent.
func Check(t *asynq.Task, body []byte, id, eventType string, hasObject bool) (Metadata, error) {
	if id == "" || !hasObject {
		return Metadata{}, fmt.Errorf("%w: no id or data.object", ErrNotEvent)
	}
	if !ValidID(id) {
		return Metadata{}, fmt.Errorf("%w: id %q is not a Stripe ID", ErrNotEvent, truncate(id))
	}
	if want, _ := EventType(t.Type()); eventType != want {
		return Metadata{}, fmt.Errorf("%w: payload type %q differs from task type %q", ErrNotEvent, eventType, t.Type())
	}
	m := MetadataFromHeaders(id, t.Headers())
	if m.Type == "" { // a task written without headers: fall back to the payload
		m, _ = Decode(body)
	}
	return m, nil
}

// Body returns the event JSON of a task's payload: the payload itself, or,
// when it is a zstd frame (PAYLOAD_COMPRESSION=zstd), the frame
// decompressed (pkg/stripetask/compress). It returns compress.ErrCorrupt
// when the frame is corrupt or decompresses to more than 2 MiB.
func Body(payload []byte) ([]byte, error) { return compress.Decompress(payload) }
