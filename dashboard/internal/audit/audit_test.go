package audit

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestNamedIDs: an audit entry names every ID acted on, sorted, or past
// MaxIDs only how many: never a cut list.
func TestNamedIDs(t *testing.T) {
	many := make([]string, MaxIDs+1)
	for i := range many {
		many[i] = fmt.Sprintf("evt_%04d", i)
	}
	for _, tt := range []struct {
		ids  []string
		want string
	}{
		{nil, ""},
		{[]string{"evt_2", "evt_1"}, "evt_1,evt_2"},
		{many[:MaxIDs], strings.Join(many[:MaxIDs], ",")},
		{many, fmt.Sprintf("%d IDs, too many to name", MaxIDs+1)},
	} {
		if got := NamedIDs(tt.ids); got != tt.want {
			t.Errorf("NamedIDs of %d IDs = %.80q, want %.80q", len(tt.ids), got, tt.want)
		}
	}
}

// TestParseQuery: a page of the log is asked for by before and limit
// alone, each checked.
func TestParseQuery(t *testing.T) {
	for _, tt := range []struct {
		query  string
		before string
		limit  int
		ok     bool
	}{
		{"", "", 100, true},
		{"limit=2&before=1764480000000-3", "1764480000000-3", 2, true},
		{"limit=0", "", 0, false},
		{"limit=501", "", 0, false},
		{"before=yesterday", "", 0, false},
		{"before=1764480000000", "", 0, false},
		{"user=op", "", 0, false},
	} {
		v, _ := url.ParseQuery(tt.query)
		before, limit, err := ParseQuery(v)
		if (err == nil) != tt.ok || before != tt.before || limit != tt.limit {
			t.Errorf("ParseQuery(%q) = %q, %d, %v; want %q, %d, ok %v", tt.query, before, limit, err, tt.before, tt.limit, tt.ok)
		}
	}
}

// TestCleanReason: control characters become spaces and a long reason is
// cut at MaxReason characters, marked.
func TestCleanReason(t *testing.T) {
	long := strings.Repeat("é", MaxReason+1)
	for _, tt := range []struct{ in, want string }{
		{" incident 42\n", "incident 42"},
		{"a\x00b\tc", "a b c"},
		{long, long[:2*MaxReason] + "…"},
	} {
		if got := CleanReason(tt.in); got != tt.want {
			t.Errorf("CleanReason(%.40q) = %.40q, want %.40q", tt.in, got, tt.want)
		}
	}
}
