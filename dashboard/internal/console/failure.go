package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// failureView is a failing execution's last failure as data: what
// failed, for whom, why, and what comes next (the next attempt's time,
// or that no retry is left and what to do).
type failureView struct {
	What   string     `json:"what"`
	To     string     `json:"to,omitempty"`
	Why    string     `json:"why"`
	NextAt *time.Time `json:"next_at,omitempty"`
	Next   string     `json:"next"`
}

// failureOf describes d's last failure, or nil when d is not failing (in
// retry, or archived).
func failureOf(d detail) *failureView {
	if d.State != "retry" && d.State != "archived" {
		return nil
	}
	f := &failureView{What: "the " + d.Type + " handler", Why: d.LastError}
	if n := len(d.Attempts); n > 0 {
		last := d.Attempts[n-1]
		if last.Error != "" {
			f.Why = last.Error
		}
		var failed []string
		for _, h := range last.Handlers {
			if h.Status == "failed" {
				failed = append(failed, h.Name)
			}
		}
		if len(failed) > 0 {
			f.What = "the handler" + map[bool]string{true: "s ", false: " "}[len(failed) > 1] + strings.Join(failed, ", ") + " of " + d.Type
		}
	}
	f.To = recipient(d)
	switch {
	case d.State == "retry":
		f.NextAt = d.NextProcessAt
		f.Next = fmt.Sprintf("retry %d of %d", d.Retried+1, d.MaxRetry)
	case d.Permanent:
		f.Next = "none: a permanent failure is not retried. Fix its cause, then Run now runs it again, or Discard it."
	default:
		f.Next = fmt.Sprintf("none: no retries left (%d of %d used). Fix the cause, then Run now runs it again, or Discard it.", d.Retried, d.MaxRetry)
	}
	return f
}

// recipient is who the execution acts for: its customer, with the email
// address the event names (its refs), and its connected account.
func recipient(d detail) string {
	var parts []string
	if d.Customer != "" {
		parts = append(parts, "customer "+d.Customer)
	}
	for ref := range strings.SplitSeq(d.Headers[stripetask.HeaderRefs], ",") {
		if strings.Contains(ref, "@") {
			parts = append(parts, ref)
		}
	}
	if d.Account != "" {
		parts = append(parts, "account "+d.Account)
	}
	return strings.Join(parts, ", ")
}
