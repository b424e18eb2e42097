// Package compress is how a Stripe event's payload is stored compressed
// (PAYLOAD_COMPRESSION=zstd): a zstd frame, recognised by its first bytes,
// so that no reader needs the setting. Internal to this module: no
// compatibility promise.
package compress

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Zstd is the value of stripetask.Options.Compression (PAYLOAD_COMPRESSION)
// that stores payloads as zstd frames.
const Zstd = "zstd"

// ErrCorrupt means a compressed payload could not be decompressed.
var ErrCorrupt = errors.New("payload does not decompress")

// zstdMagic starts every zstd frame (RFC 8878). A JSON body never starts
// with it, so a payload that does is compressed, whatever the setting of
// the process that reads it.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// maxBody bounds a decompressed payload: the api refuses bodies over
// 1 MiB, so anything larger was not written by it.
const maxBody = 2 << 20

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// codec returns the process's zstd encoder and decoder. Both are safe for
// concurrent EncodeAll and DecodeAll calls.
func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBody))
	})
	return zstdEnc, zstdDec, zstdErr
}

// IsCompressed reports whether payload is a zstd frame rather than JSON.
func IsCompressed(payload []byte) bool { return bytes.HasPrefix(payload, zstdMagic) }

// Compress returns body as a zstd frame, or body itself when it already is
// one (a re-run copies its original's payload as stored).
func Compress(body []byte) []byte {
	if IsCompressed(body) {
		return body
	}
	enc, _, err := codec()
	if err != nil {
		return body // not reachable with the options above; JSON is always readable
	}
	return enc.EncodeAll(body, make([]byte, 0, len(body)/2))
}

// Decompress returns the event JSON of a payload: the payload itself, or,
// when it is a zstd frame (PAYLOAD_COMPRESSION=zstd), the frame
// decompressed. It returns ErrCorrupt when the frame is corrupt or
// decompresses to more than 2 MiB.
func Decompress(payload []byte) ([]byte, error) {
	if !IsCompressed(payload) {
		return payload, nil
	}
	_, dec, err := codec()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	out, err := dec.DecodeAll(payload, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}
