package stripetask

import (
	"bytes"
	"reflect"
	"slices"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// UnmarshalNew is [Unmarshal] into v, a pointer to a zero value, with the
// same result and the same error, for less CPU on an event with large
// objects: Unmarshal's check of duplicate names keeps, for an object of
// more than 64 names (an invoice, a subscription), a map of every name,
// about 13 KB an invoice.paid. UnmarshalNew first looks for a duplicate
// name with a scan of data that allocates nothing (uniqueNames); when it
// finds none, it decodes without that check, which then cannot fail. When
// the scan is unsure (a name with an escape, JSON it cannot follow) or the
// decode fails, v is zeroed and decoded by Unmarshal, whose error is
// returned.
func UnmarshalNew(data []byte, v any) error {
	if uniqueNames(data) && jsonv2.Unmarshal(data, v, uniqueJSONOptions) == nil {
		return nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
	return Unmarshal(data, v)
}

// uniqueJSONOptions are jsonOptions without the check of duplicate names,
// for JSON that uniqueNames found free of them.
var uniqueJSONOptions = jsonv2.JoinOptions(jsonOptions, jsontext.AllowDuplicateNames(true))

// maxScanDepth is the deepest nesting uniqueNames follows; deeper JSON
// is left to Unmarshal.
const maxScanDepth = 10000

// smallObject is the most names an object's names are compared pairwise;
// a larger object's are sorted.
const smallObject = 12

// uniqueNames reports whether data, when it is valid JSON, has no object
// with a member name twice. It never reports true for valid JSON with a
// duplicate name; it reports false when unsure: for a name with an escape
// (the decoder compares names unescaped), and for JSON it cannot follow,
// which Unmarshal then judges. Names are compared as bytes.
func uniqueNames(data []byte) bool {
	s := scanPool.Get().(*nameScan)
	ok := s.unique(data)
	if cap(s.frames) <= maxPooled && cap(s.names) <= maxPooled && cap(s.sorted) <= maxPooled {
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
	sorted [][2]int32
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

// distinct reports whether the names of one object differ.
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
	s.sorted = append(s.sorted[:0], names...)
	slices.SortFunc(s.sorted, func(a, b [2]int32) int { return bytes.Compare(name(a), name(b)) })
	for i := 1; i < len(s.sorted); i++ {
		if bytes.Equal(name(s.sorted[i]), name(s.sorted[i-1])) {
			return false
		}
	}
	return true
}
