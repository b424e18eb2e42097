package stripeq

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// event is a Stripe event decoded for one handler: the few fields of the
// envelope the worker reads, and data.object into an O, a small struct of
// the fields that handler reads. One decode of the JSON gives both;
// stripe-go's stripe.Event would build a map of every field of the object
// and keep a copy of its JSON, several times the CPU.
type event[O any] struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       *struct {
		Object *O `json:"object"`
	} `json:"data"`
}

// skipped is a JSON value that is checked for syntax but not decoded.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// parse checks a task and decodes its payload into e, and returns the
// metadata of its headers (of the payload, for a task written without
// headers). It makes stripetask.Parse's checks (stripetask.Open and
// Check) without building a stripe.Event. Its errors are permanent:
// stripetask.ErrNotStripeTask, compress.ErrCorrupt, ErrMalformed or ErrNotEvent,
// or a data.object that does not decode into O.
func parse[O any](t *asynq.Task, e *event[O]) (stripetask.Metadata, []byte, error) {
	eventType, body, err := stripetask.Open(t) // decompressed when stored with PAYLOAD_COMPRESSION
	if err != nil {
		return stripetask.Metadata{}, nil, err
	}
	if err := decodeEvent(body, eventType, e); err != nil {
		return stripetask.Metadata{}, nil, err
	}
	m, err := stripetask.Check(t, body, e.ID, e.Type, e.Data != nil && e.Data.Object != nil)
	return m, body, err
}

// errNoObjectInCopy is the permanent error of a copy of an event, from
// Stripe, without a data.object.
var errNoObjectInCopy = errors.New("stripe's copy of the event has no data.object")

// decodeCopy decodes Stripe's copy of an event of type eventType into e.
// A data.object that is missing or does not decode is permanent; an
// envelope that does not decode is retried, as any unexpected answer from
// Stripe.
func decodeCopy[O any](raw []byte, eventType string, e *event[O]) error {
	if err := decodeEvent(raw, eventType, e); err != nil {
		if errors.Is(err, stripetask.ErrMalformed) {
			return fmt.Errorf("the copy of the event retrieved from Stripe: %w", err)
		}
		return Permanent(err)
	}
	if e.Data == nil || e.Data.Object == nil {
		return Permanent(errNoObjectInCopy)
	}
	return nil
}

// decodeEvent decodes raw, an event of type eventType, into e, a new
// value, with stripetask.UnmarshalNew (Unmarshal's result): names match
// exactly and a duplicate name is an error, as in the api, so the handler
// reads the customer the api wrote in the task's headers. A data.object
// whose fields do not decode returns an error that says so, naming the
// field by its JSON pointer ("decode data.object of charge.failed: …
// within \"/data/object/amount\""); any other failure wraps
// stripetask.ErrMalformed.
func decodeEvent[O any](raw []byte, eventType string, e *event[O]) error {
	err := stripetask.UnmarshalNew(raw, e)
	if err == nil {
		return nil
	}
	var semErr *jsonv2.SemanticError
	if errors.As(err, &semErr) {
		if strings.HasPrefix(string(semErr.JSONPointer), "/data/object/") {
			return fmt.Errorf("decode data.object of %s: %w", eventType, err)
		}
	}
	return fmt.Errorf("%w: %v", stripetask.ErrMalformed, err)
}

// ExpandableID is the ID of an expandable field, such as a charge's
// customer, for a struct of your own: Stripe sends the ID, or the object
// when it is expanded; null or absent is "". Any other JSON value is an
// error, which archives the task.
type ExpandableID string

// UnmarshalJSON implements json.Unmarshaler.
func (x *ExpandableID) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case '"':
		if bytes.IndexByte(b, '\\') < 0 {
			*x = ExpandableID(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := stripetask.Unmarshal(b, &s); err != nil {
			return err
		}
		*x = ExpandableID(s)
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := stripetask.Unmarshal(b, &o); err != nil {
			return err
		}
		*x = ExpandableID(o.ID)
	case 'n': // null
	default:
		kind := "number"
		switch b[0] {
		case '[':
			kind = "array"
		case 't', 'f':
			kind = "bool"
		}
		return fmt.Errorf("an expandable ID is a string or an object, not a %s", kind)
	}
	return nil
}
