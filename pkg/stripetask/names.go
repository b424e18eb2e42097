package stripetask

import (
	"bytes"
	"hash/maphash"
	"reflect"
	"slices"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// UnmarshalNew is [Unmarshal] into v, a pointer to a zero value, with the
// same result and the same error, for less CPU on an event with large
// objects: Unmarshal's check of duplicate names keeps, for an object of
// more than 64 names or 1 KB of them (an invoice), a map of every name,
// about 13 KB and 28 µs an invoice.paid. From scanFrom bytes, UnmarshalNew
// first looks for a duplicate name with a scan of data that allocates
// nothing (uniqueNames); when it finds none, it decodes without that
// check, which then cannot fail. When the scan is unsure (a name with an
// escape, JSON it cannot follow) or the decode fails, v is zeroed and
// decoded by Unmarshal, whose error is returned.
func UnmarshalNew(data []byte, v any) error {
	if len(data) >= scanFrom && uniqueNames(data) && jsonv2.Unmarshal(data, v, uniqueJSONOptions) == nil {
		return nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
	return Unmarshal(data, v)
}

// scanFrom is the shortest JSON UnmarshalNew scans. The scan costs about
// 0.3 µs a KB, and the events of Stripe's fixtures under 4 KB (a charge,
// a payment intent, a subscription, a checkout session) have no object
// large enough for Unmarshal's map.
const scanFrom = 4 << 10

// uniqueJSONOptions are jsonOptions without the check of duplicate names,
// for JSON that uniqueNames found free of them.
var uniqueJSONOptions = jsonv2.JoinOptions(jsonOptions, jsontext.AllowDuplicateNames(true))

// maxScanDepth is the deepest nesting uniqueNames follows; deeper JSON
// is left to Unmarshal.
const maxScanDepth = 10000

// smallObject is the most names an object's names are compared pairwise;
// a larger object's go through a table by hash.
const smallObject = 12

// uniqueNames reports whether data, when it is valid JSON, has no object
// with a member name twice. It never reports true for valid JSON with a
// duplicate name; it reports false when unsure: for a name with an escape
// (the decoder compares names unescaped), and for JSON it cannot follow,
// which Unmarshal then judges. Names are compared as bytes.
func uniqueNames(data []byte) bool {
	s := scanPool.Get().(*nameScan)
	ok := s.unique(data)
	if cap(s.frames) <= maxPooled && cap(s.names) <= maxPooled && cap(s.table) <= 2*maxPooled {
		s.frames, s.names = s.frames[:0], s.names[:0]
		scanPool.Put(s)
	}
	return ok
}

// maxPooled is the most frames or names a pooled nameScan keeps room for.
const maxPooled = 4096

var scanPool = sync.Pool{New: func() any { return new(nameScan) }}

// nameScan is uniqueNames's state: the open objects and arrays, and the
// names of the open objects, each a [start, end) of data.
type nameScan struct {
	frames []scanFrame
	names  [][2]int32
	table  []int32 // distinct's, of 1 + an index in names; 0 empty
}

type scanFrame struct {
	object    bool
	expectKey bool
	names     int // where this object's names start in names
}

func (s *nameScan) unique(data []byte) bool {
	if len(data) > 1<<30 {
		return false
	}
	for i := 0; i < len(data); i++ {
		for i < len(data) && !special[data[i]] {
			i++
		}
		if i == len(data) {
			break
		}
		switch data[i] {
		case '"':
			start := i + 1
			end := bytes.IndexByte(data[start:], '"')
			if end < 0 {
				return false
			}
			end += start
			escaped := bytes.IndexByte(data[start:end], '\\') >= 0
			if escaped { // find the closing quote past escaped ones
				end = start
				for end < len(data) && data[end] != '"' {
					if data[end] == '\\' {
						end++
					}
					end++
				}
				if end >= len(data) {
					return false
				}
			}
			i = end
			n := len(s.frames)
			if n == 0 || !s.frames[n-1].object || !s.frames[n-1].expectKey {
				continue // a value
			}
			if escaped {
				return false
			}
			s.frames[n-1].expectKey = false
			s.names = append(s.names, [2]int32{int32(start), int32(end)})
		case '{', '[':
			if len(s.frames) >= maxScanDepth {
				return false
			}
			s.frames = append(s.frames, scanFrame{object: data[i] == '{', expectKey: true, names: len(s.names)})
		case '}', ']':
			n := len(s.frames)
			if n == 0 || s.frames[n-1].object != (data[i] == '}') {
				return false
			}
			f := s.frames[n-1]
			s.frames = s.frames[:n-1]
			if f.object {
				if !s.distinct(data, s.names[f.names:]) {
					return false
				}
				s.names = s.names[:f.names]
			}
		case ',':
			if n := len(s.frames); n > 0 && s.frames[n-1].object {
				s.frames[n-1].expectKey = true
			}
		}
	}
	return len(s.frames) == 0
}

// distinct reports whether the names of one object differ: pairwise for
// a few, else through a table of them by hash.
func (s *nameScan) distinct(data []byte, names [][2]int32) bool {
	name := func(n [2]int32) []byte { return data[n[0]:n[1]] }
	if len(names) <= smallObject {
		for i, a := range names {
			for _, b := range names[:i] {
				if bytes.Equal(name(a), name(b)) {
					return false
				}
			}
		}
		return true
	}
	size := 1
	for size < 2*len(names) {
		size *= 2
	}
	s.table = slices.Grow(s.table[:0], size)[:size]
	clear(s.table)
	mask := uint64(size - 1)
	for i, n := range names {
		for slot := maphash.Bytes(scanSeed, name(n)) & mask; ; slot = (slot + 1) & mask {
			j := s.table[slot]
			if j == 0 {
				s.table[slot] = int32(i + 1)
				break
			}
			if bytes.Equal(name(names[j-1]), name(n)) {
				return false
			}
		}
	}
	return true
}

var scanSeed = maphash.MakeSeed()

// special are the bytes uniqueNames stops at; it steps over the others.
var special = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true, ',': true}
