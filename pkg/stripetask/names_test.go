package stripetask

import (
	"strings"
	"testing"
)

// TestUniqueNames: the scan never calls JSON with a duplicate name unique,
// and is unsure of names with escapes and of JSON it cannot follow.
func TestUniqueNames(t *testing.T) {
	many := func(dup bool) string { // an object past smallObject, sorted
		var b strings.Builder
		b.WriteString(`{"data":{"object":{`)
		for i := range 3 * smallObject {
			b.WriteString(`"field_` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":[1,{"x":"y"}],`)
		}
		if dup {
			b.WriteString(`"field_ab":2,`)
		}
		b.WriteString(`"last":null}}}`)
		return b.String()
	}
	tests := []struct {
		name, json string
		want       bool
	}{
		{"empty object", `{}`, true},
		{"flat", `{"a":1,"b":"a","c":true}`, true},
		{"the same name in sibling objects", `{"a":{"x":1},"b":{"x":2},"x":[{"x":1},{"x":2}]}`, true},
		{"a value equal to a name", `{"a":"a","b":["a","b"]}`, true},
		{"escapes in values", `{"a":"q\"b\\","b":"\\","c":"\u0041"}`, true},
		{"a large object", many(false), true},
		{"a name twice", `{"a":1,"a":2}`, false},
		{"a name twice after an object", `{"a":{"b":1},"a":2}`, false},
		{"a name twice deep", `{"x":{"y":[{"k":1,"k":2}]}}`, false},
		{"a name twice in a large object", many(true), false},
		{"an escaped name", `{"\u0061":1,"a":2}`, false},
		{"an escaped quote in a name", `{"a\"":1}`, false},
		{"unclosed", `{"a":1`, false},
		{"unclosed string", `{"a`, false},
		{"mismatched", `{"a":[1}`, false},
		{"too many closes", `{}}`, false},
		{"too deep", strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := uniqueNames([]byte(tt.json)); got != tt.want {
				t.Errorf("uniqueNames(%.60s) = %v, want %v", tt.json, got, tt.want)
			}
		})
	}
}
