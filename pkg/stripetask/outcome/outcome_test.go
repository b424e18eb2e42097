package outcome

import "testing"

// TestLine: each notice as it happened; one emailed by an earlier
// execution reads "not sent again", never "emailed to".
func TestLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Outcome
		want string
	}{
		{"emailed", Outcome{Notices: []Notice{{Kind: "payment_failed", Email: "a@b.c", Status: NoticeEmailed}}}, "payment_failed emailed to a@b.c"},
		{"emailed before", Outcome{Notices: []Notice{{Kind: "payment_failed", Email: "a@b.c", Status: NoticeEmailed, Reason: "by an earlier execution"}}},
			"payment_failed not sent again (already emailed by an earlier execution)"},
		{"skipped", Outcome{Notices: []Notice{{Kind: "payment_failed", Status: NoticeSkipped, Reason: "a newer payment settled it"}}, Records: []RecordChange{{Key: "k", Changed: true}}},
			"payment_failed skipped: a newer payment settled it; 1 record updated"},
		{"summary", Outcome{Summary: "custom"}, "custom"},
		{"nothing", Outcome{}, "nothing noted"},
	} {
		if got := tt.o.Line(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
