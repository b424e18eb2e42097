package audit

import (
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestParseQuery: a page of the log is asked for by before and limit,
// and filtered by user, action and time, each checked.
func TestParseQuery(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		query string
		want  Query
		ok    bool
	}{
		{"", Query{Limit: 100}, true},
		{"limit=2&before=1764480000000-3", Query{Before: "1764480000000-3", Limit: 2}, true},
		{"user=op&action=bulk_rerun", Query{Limit: 100, User: "op", Action: BulkRerun}, true},
		{"from=2026-11-28T10:00&to=" + strconv.FormatInt(at.Add(time.Hour).Unix(), 10), Query{Limit: 100, From: at, To: at.Add(time.Hour)}, true},
		{"from=2026-11-28T10:00:00Z", Query{Limit: 100, From: at}, true},
		{"limit=0", Query{}, false},
		{"limit=501", Query{}, false},
		{"before=yesterday", Query{}, false},
		{"before=1764480000000", Query{}, false},
		{"action=reboot", Query{}, false},
		{"from=yesterday", Query{}, false},
		{"from=2026-11-28T11:00&to=2026-11-28T10:00", Query{}, false},
		{"colour=red", Query{}, false},
	} {
		v, _ := url.ParseQuery(tt.query)
		got, err := ParseQuery(v)
		if (err == nil) != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseQuery(%q) = %+v, %v; want %+v, ok %v", tt.query, got, err, tt.want, tt.ok)
		}
	}
}

// TestChips: an entry's target reads as chips, each linked to its page:
// a bulk re-run's filter by parameter (times in UTC), the executions or
// deliveries acted on (past maxChips, counted), a re-run's copy, a
// recovery.
func TestChips(t *testing.T) {
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	many := make([]string, maxChips+3)
	for i := range many {
		many[i] = fmt.Sprintf("evt_%02d", i)
	}
	for _, tt := range []struct {
		e    Entry
		want string
	}{
		{Entry{Action: BulkRerun, Target: "type=invoice.%2A&state=failed&from=" + strconv.FormatInt(from.Unix(), 10)},
			"state: failed </?state=failed> | type: invoice.* </?type=invoice.%2A> | from: 2026-11-28 10:00:00 UTC </?from=" + strconv.FormatInt(from.Unix(), 10) + ">"},
		{Entry{Action: BulkRerun}, "filter: none: every execution"},
		{Entry{Action: Rerun, Target: "evt_1", Detail: "evt_1:rerun:2"}, "evt_1 </executions/evt_1> | copy: evt_1:rerun:2 </executions/evt_1:rerun:2>"},
		{Entry{Action: Rerun, Target: "evt_1", Detail: "run now"}, "evt_1 </executions/evt_1>"},
		{Entry{Action: Discard, Target: "evt_x#y"}, "evt_x#y </executions/evt_x%23y>"},
		{Entry{Action: RerunSelected, Target: strings.Join(many, ",")}, "evt_00 </executions/evt_00> | " + "… and 3 more"},
		{Entry{Action: DeliveryRerunSelected, Target: "evt_1:dest:crm"}, "evt_1:dest:crm </deliveries/evt_1:dest:crm>"},
		{Entry{Action: DeliveryBulkRerun, Target: "destination=crm"}, "destination: crm </deliveries?destination=crm>"},
		{Entry{Action: Recovery, Target: "2026-11-28T10:00:00Z to 2026-11-28T11:00:00Z", Detail: "recovery r1"}, "window: 2026-11-28T10:00:00Z to 2026-11-28T11:00:00Z | recovery: r1 </recoveries#recovery-r1>"},
		{Entry{Action: Recovery, Target: "w", Detail: "recovery r2 of the 3 events previewed by r1"}, "window: w | recovery: r2 </recoveries#recovery-r2> | preview: r1 </recoveries#recovery-r1>"},
		{Entry{Action: Asynqmon, Target: "POST queues/stripe/archived_tasks/evt_1:run"}, ""},
	} {
		var parts []string
		for _, c := range chipsOf(tt.e) {
			s := c.Value
			if c.Label != "" {
				s = c.Label + ": " + s
			}
			if c.URL != "" {
				s += " <" + c.URL + ">"
			}
			parts = append(parts, s)
		}
		got := strings.Join(parts, " | ")
		if tt.e.Action == RerunSelected {
			got = parts[0] + " | … " + parts[len(parts)-1]
		}
		if got != tt.want {
			t.Errorf("%s %q:\n got %s\nwant %s", tt.e.Action, tt.e.Target, got, tt.want)
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
