package stripetask_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/klauspost/compress/zstd"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestCompressedRoundTrip stores every handled type's fixture with
// PAYLOAD_COMPRESSION=zstd: the payload is a smaller zstd frame, Body gives
// the body back byte for byte, Parse reads it as from an uncompressed
// task, and a re-run copy of it is not compressed twice.
func TestCompressedRoundTrip(t *testing.T) {
	opts := stripetask.Options{Compression: compress.Zstd}
	total, stored := 0, 0
	for _, typ := range events.Handled() {
		body := stripetest.Fixture(typ)
		task, meta, err := stripetask.New(body, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !compress.IsCompressed(task.Payload()) || len(task.Payload()) >= len(body) {
			t.Errorf("%s: payload of %d bytes for a %d-byte body is not a smaller zstd frame", typ, len(task.Payload()), len(body))
		}
		total, stored = total+len(body), stored+len(task.Payload())
		got, err := stripetask.Body(task.Payload())
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: Body = %d bytes, %v; want the body as received", typ, len(got), err)
		}
		event, parsed, err := stripetask.Parse(asynq.NewTaskWithHeaders(task.Type(), task.Payload(), task.Headers()))
		if err != nil || !reflect.DeepEqual(parsed, meta) || string(event.Type) != typ {
			t.Errorf("%s: Parse = %s, %+v, %v", typ, event.Type, parsed, err)
		}
		again := stripetask.NewFromMetadata(task.Payload(), meta, opts)
		if !bytes.Equal(again.Payload(), task.Payload()) {
			t.Errorf("%s: a re-run copy of a compressed payload was compressed again", typ)
		}
	}
	t.Logf("%d fixtures: %d bytes of JSON stored in %d (%.0f%%)", len(events.Handled()), total, stored, 100*float64(stored)/float64(total))
}

func TestBody(t *testing.T) {
	corrupt := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, "not really zstd"...)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	// 3 MiB of JSON in a few hundred bytes: more than any body the api takes.
	bomb := enc.EncodeAll(append(append([]byte(`{"id":"`), bytes.Repeat([]byte("a"), 3<<20)...), `"}`...), nil)
	tests := []struct {
		name    string
		payload []byte
		want    []byte
		wantErr error
	}{
		{"plain JSON is returned as it is", []byte(`{"id":"evt_1"}`), []byte(`{"id":"evt_1"}`), nil},
		{"empty", nil, nil, nil},
		{"a corrupt frame", corrupt, nil, compress.ErrCorrupt},
		{"a frame of more than 2 MiB", bomb, nil, compress.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stripetask.Body(tt.payload)
			if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
				t.Errorf("Body = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	// A corrupt frame makes Parse fail for good, as a malformed payload does.
	if _, _, err := stripetask.Parse(asynq.NewTask("stripe:customer.created", corrupt)); !errors.Is(err, compress.ErrCorrupt) {
		t.Errorf("Parse of a corrupt frame = %v, want ErrCorrupt", err)
	}
}
